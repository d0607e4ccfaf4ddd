"""Deleting a site, and a site's hits before a day: DELETE /api/v0/sites/<id>, DELETE /api/v0/sites/<id>/hits and the
dashboard's page /sites/<code>/delete/; done by the real db_worker, in batches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from analytics import sites
from analytics.models import (
    ROLLUP_MODELS,
    BotHit,
    Domain,
    Export,
    Hit,
    ImportedRow,
    PathDay,
    PathHour,
    PathMonth,
    RollupState,
    Site,
    StatDay,
)
from analytics.models import (
    Path as SitePath,
)
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits
from conftest import client_with_key, make_key
from logsvc.models import Deletion

HOST = "blog.example.org"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture(autouse=True)
def _setup(monkeypatch, settings, tmp_path):
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)  # the worker runs in the test's transaction
    settings.ALLOWED_HOSTS = ["*"]
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.DELETION_BATCH = 7
    sites.forget_pixel_sites()


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)


def add(site: Site, start: datetime, hours: int, per_hour: int = 2, bots: int = 0) -> None:
    hits = [
        CleanHit(
            path=f"/page/{i % 3}",
            title="Page",
            browser="Firefox 133",
            ref="https://news.example.com/a" if i % 2 else "",
            ref_scheme="h" if i % 2 else "",
            created_at=start + timedelta(hours=h, minutes=i * 37),
        )
        for h in range(hours)
        for i in range(per_hour)
    ]
    hits += [CleanHit(path="/", bot=3, user_agent="bot", created_at=start) for _ in range(bots)]
    with transaction.atomic():
        record_hits(site, hits)


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice, timezone="Asia/Kolkata")  # midnight at :30 UTC
    Domain.objects.create(site=site, domain=HOST)
    add(site, datetime(2026, 1, 25, tzinfo=UTC), hours=24 * 20, bots=5)  # 25 January to 14 February
    return site


@pytest.fixture
def others(alice, charlie) -> list[Site]:
    """Another site of alice's and one of charlie's, with hits on the same days."""
    result = []
    for code, owner in (("alice-other", alice), ("charlie-site", charlie)):
        other = Site.objects.create(code=code, owner=owner)
        add(other, datetime(2026, 1, 25, tzinfo=UTC), hours=24 * 20, per_hour=1, bots=2)
        result.append(other)
    return result


def rollups(site_id: int) -> dict[str, list[tuple]]:
    rows = {}
    for model in ROLLUP_MODELS:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows[model.__name__] = sorted(model.objects.filter(site_id=site_id).values_list(*fields))
    return rows


def rebuilt_rollups(site_ids: list[int]) -> dict[int, dict[str, list[tuple]]]:
    """Every rollup rebuilt from the hits there are: what the rollups must equal after hits are deleted."""
    for model in ROLLUP_MODELS:
        model.objects.all().delete()
    RollupState.objects.update(last_hit_id=0)
    roll_up()
    return {site_id: rollups(site_id) for site_id in site_ids}


def test_the_owner_deletes_a_site_with_everything_of_it(site, others, alice):
    roll_up()
    exports = storages["exports"]
    export_file = exports.save(f"goatcounter-export-{site.code}-20260201T000000Z-9.csv.gz", ContentFile(b"2Path\n"))
    # and one its row no longer names (its name carries the site's code)
    orphan = exports.save(f"goatcounter-export-{site.code}-20260101T000000Z-3.csv.gz", ContentFile(b"2Path\n"))
    kept_export = exports.save("goatcounter-export-alice-blogger-20260101T000000Z-4.csv.gz", ContentFile(b"x"))
    Export.objects.create(site=site, file=export_file, finished_at=datetime.now(UTC))
    ImportedRow.objects.create(site=site, key=42)
    kept = {other.pk: (Hit.objects.filter(site=other).count(), rollups(other.pk)) for other in others}
    client = client_with_key(make_key(alice, "sites", "count"))
    url = f"/api/v0/sites/{site.pk}"

    r = client.delete(url, {"confirm": "alice-other"}, format="json")
    assert r.status_code == 400 and r.json() == {
        "errors": {"confirm": ["Send the site's code to confirm that the site should go."]}
    }
    assert not Deletion.objects.exists() and not DBTaskResult.objects.exists()

    r = client.delete(url, {"confirm": site.code}, format="json")
    assert r.status_code == 202
    assert r.json() | {"requested_at": None} == {
        "status": "deleting",
        "kind": "site",
        "id": site.pk,
        "before": None,
        "requested_at": None,
        "started_at": None,
        "deleted_rows": 0,
    }
    # It stops counting and answering at once, before the worker has begun.
    before = Hit.objects.filter(site=site).count()
    r = Client().get("/count?p=/x", HTTP_HOST=HOST, HTTP_USER_AGENT=UA, REMOTE_ADDR="198.51.100.7")
    assert r.status_code == 404
    r = Client().get(f"/count/{site.code}?p=/x", HTTP_HOST="x.example", HTTP_USER_AGENT=UA, REMOTE_ADDR="198.51.100.7")
    assert r.status_code == 404 and Hit.objects.filter(site=site).count() == before
    assert client.get(url).status_code == 404
    assert [s["code"] for s in client.get("/api/v0/sites").json()["sites"]] == ["alice-other"]
    owner = Client()
    owner.force_login(alice)
    assert owner.get(f"/sites/{site.code}/").status_code == 404

    # Asked again: the same answer, no second job (with the query's confirm, as a client that sends no body).
    r = client.delete(f"{url}?confirm={site.code}")
    assert r.status_code == 202 and r.json()["kind"] == "site" and DBTaskResult.objects.count() == 1

    run_worker()

    assert not Site.objects.filter(pk=site.pk).exists()
    assert not Hit.objects.filter(site_id=site.pk).exists() and not BotHit.objects.filter(site_id=site.pk).exists()
    assert not SitePath.objects.filter(site_id=site.pk).exists() and not ImportedRow.objects.exists()
    assert all(not rows for rows in rollups(site.pk).values())
    assert not Export.objects.exists() and not exports.exists(export_file) and not exports.exists(orphan)
    assert exports.exists(kept_export)
    assert not Deletion.objects.exists()
    assert DBTaskResult.objects.get().return_value > before + 5  # rows: hits, bot hits, rollups, paths, the site
    for other in others:
        assert (Hit.objects.filter(site=other).count(), rollups(other.pk)) == kept[other.pk]
    assert client.delete(url, {"confirm": site.code}, format="json").status_code == 404


def test_only_the_owners_key_with_sites_may_delete(site, charlie, alice):
    url = f"/api/v0/sites/{site.pk}"
    assert (
        client_with_key(make_key(charlie, "sites")).delete(url, {"confirm": site.code}, format="json").status_code
        == 404
    )
    r = client_with_key(make_key(alice, "count", "stats")).delete(url, {"confirm": site.code}, format="json")
    assert r.status_code == 403 and "error" in r.json()
    assert Client().delete(url).status_code == 401
    assert not Deletion.objects.exists() and Site.objects.filter(pk=site.pk).exists()


def test_hits_before_a_day_go_with_their_stats(site, others, alice):
    roll_up()
    old_export = storages["exports"].save("old.csv.gz", ContentFile(b"x"))
    Export.objects.create(site=site, file=old_export, finished_at=datetime.now(UTC))
    client = client_with_key(make_key(alice, "sites"))
    url = f"/api/v0/sites/{site.pk}/hits"
    assert client.delete(url, {"before": "yesterday"}, format="json").status_code == 400
    assert client.delete(url, {}, format="json").status_code == 400
    assert client.delete(url, {"before": "2999-01-01"}, format="json").status_code == 400
    assert not Deletion.objects.exists()

    cutoff = datetime(2026, 2, 4, 18, 30, tzinfo=UTC)  # midnight of 5 February in Kolkata
    staying = Hit.objects.filter(site=site, created_at__gte=cutoff).count()
    assert 0 < staying < Hit.objects.filter(site=site).count()
    r = client.delete(url, {"before": "2026-02-05"}, format="json")  # a month's middle
    assert r.status_code == 202 and r.json()["before"] == "2026-02-05" and r.json()["kind"] == "hits"
    r = client.delete(f"{url}?before=2026-02-01")
    assert r.status_code == 202 and r.json()["before"] == "2026-02-05" and DBTaskResult.objects.count() == 1
    # The site keeps counting meanwhile.
    r = Client().get("/count?p=/new", HTTP_HOST=HOST, HTTP_USER_AGENT=UA, REMOTE_ADDR="198.51.100.7")
    assert r.status_code == 200

    run_worker()

    assert not Hit.objects.filter(site=site, created_at__lt=cutoff).exists()
    assert Hit.objects.filter(site=site).count() == staying + 1  # and the pixel's
    assert not BotHit.objects.filter(site=site).exists()  # all were before
    assert not PathDay.objects.filter(site=site, day__lt=date(2026, 2, 5)).exists()
    assert PathDay.objects.filter(site=site, day=date(2026, 2, 5)).exists()
    assert not Export.objects.filter(site=site).exists() and not storages["exports"].exists(old_export)
    assert not Deletion.objects.exists()
    # The stats are what a rollup of the hits left would be, to the hour and the month's days; other sites' unchanged.
    roll_up()  # the pixel's hit of now
    after = {s: rollups(s) for s in [site.pk, *(o.pk for o in others)]}
    assert after == rebuilt_rollups([site.pk, *(o.pk for o in others)])
    month = PathMonth.objects.filter(site=site, month=date(2026, 2, 1)).first()
    assert month is not None and month.daily_pageviews[:4] == [0, 0, 0, 0]
    # The hour the cutoff splits keeps its hit at 18:37, not the one at 18:00.
    assert [h.pageviews for h in PathHour.objects.filter(site=site, hour=datetime(2026, 2, 4, 18, tzinfo=UTC))] == [1]
    assert StatDay.objects.filter(site=site).order_by("day").values_list("day", flat=True).first() == date(2026, 2, 5)


def test_the_dashboard_page_deletes_for_the_owner_alone(site, alice, charlie):
    url = f"/sites/{site.code}/delete/"
    assert Client().get(url).status_code == 302  # the sign-in page
    outsider = Client()
    outsider.force_login(charlie)
    assert outsider.get(url).status_code == 404
    assert outsider.post(url, {"what": "site", "confirm": site.code}).status_code == 404
    owner = Client()
    owner.force_login(alice)
    assert owner.get(url).status_code == 200
    assert b'href="/sites/alice-blog/delete/"' in owner.get(f"/sites/{site.code}/").content

    r = owner.post(url, {"what": "hits", "before": "not a day"})
    assert r.status_code == 400 and not Deletion.objects.exists()
    r = owner.post(url, {"what": "hits", "before": "2026-02-01"}, follow=True)
    assert r.status_code == 200 and b'id="hits-deletion"' in r.content and b"2026-02-01" in r.content
    run_worker()
    assert not Hit.objects.filter(site=site, created_at__lt=datetime(2026, 1, 31, 18, 30, tzinfo=UTC)).exists()
    assert Hit.objects.filter(site=site).exists()
    assert b'id="hits-deletion"' not in owner.get(url).content

    r = owner.post(url, {"what": "site", "confirm": "ALICE-BLOG"})
    assert r.status_code == 400 and b"not the site" in r.content and not Deletion.objects.exists()
    r = owner.post(url, {"what": "site", "confirm": site.code})
    assert r.status_code == 200 and b"is being deleted" in r.content
    assert owner.get(url).status_code == 404
    run_worker()
    assert not Site.objects.filter(pk=site.pk).exists() and not Hit.objects.exists()
