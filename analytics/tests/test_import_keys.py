"""What the importer keeps of what it imported (ImportedKeys, ImportedVisits) and the guarantees that rest on it:
a line is stored once whatever imports it again (another file, in another order, at the same time), a visitor's
first visit of a past day is counted once across imports, and a site's deletion and the prune remove it all."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection
from django.test import Client
from django.utils import timezone

from analytics import importer, sites
from analytics.deletion import delete_site
from analytics.importer import Importer, RowKeys
from analytics.models import Domain, Hit, ImportedKeys, ImportedRow, ImportedVisits, Site, VisitorPath
from analytics.tasks import delete_old_visitor_data

HOST = "blog.example.com"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture(autouse=True)
def _any_host(settings):
    settings.ALLOWED_HOSTS = ["*"]
    sites.forget_pixel_sites()


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain=HOST)
    return site


def line(when: datetime, path: str = "/", ip: str = "203.0.113.5", agent: str = FIREFOX) -> str:
    return f'{ip} - - [{when:%d/%b/%Y:%H:%M:%S} +0000] "GET {path} HTTP/1.1" 200 10 "-" "{agent}"\n'


def import_text(site: Site, text: str) -> importer.Summary:
    return Importer(site, "combined").import_file(io.BytesIO(text.encode()))


def firsts(site: Site) -> list[tuple[str, datetime, bool]]:
    return list(
        Hit.objects.filter(site=site)
        .order_by("created_at", "id")
        .values_list("path__path", "created_at", "first_visit")
    )


DAY = datetime(2026, 10, 10, 12, tzinfo=UTC)


def test_lines_far_apart_in_time_and_out_of_order_are_stored_once(site):
    """A row of ImportedKeys holds one hour: a file whose times jump back and forth is looked up hour by hour."""
    times = [DAY + timedelta(days=n % 7 * 40, minutes=n * 7 % 60, seconds=n) for n in range(5000)]
    text = "".join(line(when, f"/p{n % 50}", ip=f"198.51.100.{n % 200}") for n, when in enumerate(times))
    first = import_text(site, text)
    assert (first.imported, first.duplicates) == (5000, 0)
    reordered = "".join(reversed(text.splitlines(keepends=True)))  # other batches, other neighbours: same lines
    again = import_text(site, reordered + line(DAY - timedelta(days=400)))
    assert (again.imported, again.duplicates) == (1, 5000)
    assert Hit.objects.filter(site=site).count() == 5001
    rows = list(ImportedKeys.objects.filter(site=site))
    assert all(row.last_at - row.first_at < timedelta(hours=1) for row in rows)
    assert sum(len(row.keys) // 8 for row in rows) == 5001


def test_keys_of_imports_before_imported_keys_are_still_imported_before(site):
    """ImportedRow (a row a line, as imports kept their keys before ImportedKeys) is read, never written."""
    text = "".join(line(DAY + timedelta(minutes=n), f"/p{n}") for n in range(6))
    keys = RowKeys()
    ImportedRow.objects.bulk_create(
        [ImportedRow(site=site, key=keys.key(text_line.rstrip("\n"))) for text_line in text.splitlines()[:4]]
    )
    summary = import_text(site, text)
    assert (summary.imported, summary.duplicates) == (2, 4)
    assert sorted(Hit.objects.filter(site=site).values_list("path__path", flat=True)) == ["/p4", "/p5"]


def test_a_visitors_first_visit_of_a_past_day_is_counted_once_across_imports(site):
    """Two servers' logs of the same day: the visitor seen in the first is no first visitor in the second."""
    one = line(DAY, "/") + line(DAY + timedelta(minutes=1), "/about")
    two = line(DAY + timedelta(hours=2), "/") + line(DAY + timedelta(hours=2, minutes=1), "/pricing", ip="192.0.2.1")
    next_day = line(DAY + timedelta(days=1), "/")
    import_text(site, one)
    import_text(site, two + next_day)
    assert firsts(site) == [
        ("/", DAY, True),
        ("/about", DAY + timedelta(minutes=1), True),
        ("/", DAY + timedelta(hours=2), False),  # seen by the first import
        ("/pricing", DAY + timedelta(hours=2, minutes=1), True),  # someone else
        ("/", DAY + timedelta(days=1), True),  # another day
    ]
    assert not VisitorPath.objects.exists()  # past days' visits are the importer's own
    assert ImportedVisits.objects.filter(site=site).count() == 3  # a row a batch and day


def test_first_visits_in_memory_are_those_visitor_path_would_give(site):
    """PastVisits against the way of the pixel and the API (record_hits with VisitorPath), on the same hits."""
    text = "".join(line(DAY + timedelta(seconds=n * 37), f"/p{n % 13}", ip=f"198.51.100.{n % 17}") for n in range(4500))
    import_text(site, text)
    other = Site.objects.create(code="alice-other", owner=site.owner)
    job = Importer(other, "combined")
    read = job.reader.hit

    def through_visitor_path(text_line: str):
        hit = read(text_line)
        hit.visitor_day = None  # as if it were today's: VisitorPath decides
        return hit

    job.reader.hit = through_visitor_path
    job.import_file(io.BytesIO(text.encode()))
    assert VisitorPath.objects.count() > 0
    assert firsts(site) == firsts(other)
    assert {first for _, _, first in firsts(site)} == {True, False}


def test_todays_lines_share_first_visits_with_the_pixel(site):
    """A line of today has the pixel's visitor hash: one first visit between the log and the pixel."""
    now = timezone.now().replace(microsecond=0)  # today's, however close to midnight
    import_text(site, line(now, "/"))
    r = Client().get("/count?p=/", HTTP_HOST=HOST, HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="203.0.113.5")
    assert r.status_code == 200
    assert list(Hit.objects.filter(site=site).order_by("id").values_list("first_visit", flat=True)) == [True, False]


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_the_same_log_at_once_store_it_once(site):
    """Each import writes from a thread with its own connection; the site's import lock puts their batches one
    after the other, so each sees the keys and visits the other committed."""
    text = "".join(
        line(DAY + timedelta(seconds=n * 7), f"/p{n % 30}", ip=f"198.51.100.{n % 60}")
        for n in range(3 * importer.BATCH)
    )
    summaries: list[importer.Summary] = []
    start = threading.Barrier(2)

    def one() -> None:
        try:
            start.wait()
            summaries.append(import_text(site, text))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = 3 * importer.BATCH
    assert len(summaries) == 2
    assert sum(s.imported for s in summaries) == lines and sum(s.duplicates for s in summaries) == lines
    assert Hit.objects.filter(site=site).count() == lines
    visits = {(path, when.date()) for path, when, _ in firsts(site)}
    alone = Site.objects.create(code="alice-alone", owner=site.owner)
    import_text(alone, text)
    assert firsts(site) == firsts(alone)  # each (visitor, page, day) once a first visit
    assert len(visits) > 1


def test_a_sites_deletion_takes_its_imported_keys_and_visits(site, alice):
    other = Site.objects.create(code="alice-other", owner=alice)
    text = line(DAY) + line(DAY + timedelta(minutes=3), "/about")
    for target in (site, other):
        import_text(target, text)
        ImportedRow.objects.create(site=target, key=42)
    assert ImportedKeys.objects.filter(site=site).exists() and ImportedVisits.objects.filter(site=site).exists()
    list(delete_site(site.pk))  # the worker's deletion
    assert not Site.objects.filter(pk=site.pk).exists()
    for model in (ImportedKeys, ImportedVisits, ImportedRow):
        assert not model.objects.filter(site_id=site.pk).exists()
        assert model.objects.filter(site=other).exists()
    other.delete()  # the ORM's (the admin's): its pre_delete signal
    for model in (ImportedKeys, ImportedVisits, ImportedRow):
        assert not model.objects.exists()


def test_the_prune_deletes_imported_visits_a_day_old(site):
    import_text(site, line(DAY) + line(DAY + timedelta(days=1)))
    old, recent = ImportedVisits.objects.order_by("day")
    ImportedVisits.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1, seconds=1))
    counts = delete_old_visitor_data()
    assert counts["visitor paths"] == 1
    assert list(ImportedVisits.objects.values_list("pk", flat=True)) == [recent.pk]
