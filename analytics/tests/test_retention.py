"""A site's data_retention: the real worker deletes its old hits in batches, the stats keep their counts, and the
site settings API sets it as GoatCounter does (0 or at least 31 days)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from analytics import sites
from analytics.models import Domain, Hit, PathDay, PathMonth, RollupFailure, Site, StatDay
from analytics.rollups import rebuild_days, roll_up
from analytics.services import CleanHit, record_hits
from conftest import client_with_key, make_key
from logsvc import retention
from logsvc.models import RetentionRun

HOST = "stats.alice.example"
NOW = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=100)  # 2030-03-07
RECENT = NOW - timedelta(days=10)


@pytest.fixture(autouse=True)
def _setup(settings, monkeypatch):
    settings.ALLOWED_HOSTS = ["*"]
    settings.RETENTION_BATCH = 3  # several batches from a handful of hits
    # The worker drops connections not in autocommit between tasks, which would end the test's transaction.
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    sites.forget_pixel_sites()


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice, data_retention=90)
    Domain.objects.create(site=site, domain=HOST)
    return site


@pytest.fixture
def stats(alice, site):
    return client_with_key(make_key(alice, "stats", "sites"))


def store(site: Site, at: datetime, count: int, path: str = "/", **fields) -> None:
    hits = [CleanHit(path=path, created_at=at, visitor=uuid.uuid4(), **fields) for _ in range(count)]
    with transaction.atomic():
        record_hits(site, hits)


def run_worker() -> None:
    """Queue a pass for now and let the real worker run what is due (the pass queues its successor, not due)."""
    DBTaskResult.objects.filter(task_path=retention.run_retention.module_path, status="READY").delete()
    assert retention.schedule(delay=0)
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)


def total(client, start: str, end: str) -> tuple[int, int]:
    r = client.get("/api/v0/stats/total", {"start": start, "end": end}, HTTP_HOST=HOST)
    assert r.status_code == 200
    return r.json()["total"], r.json()["total_pageviews"]


def test_it_deletes_old_hits_and_the_stats_keep_their_counts(site, stats, alice):
    store(site, OLD, 7, path="/old", browser="Firefox 131", ref="https://news.example/")
    store(site, RECENT, 2, path="/new")
    roll_up()
    with time_machine.travel(NOW, tick=False):
        before = total(stats, "2030-03-01", "2030-06-15")
        old_day = total(stats, "2030-03-07", "2030-03-07")
        browsers = stats.get("/api/v0/stats/browsers", {"start": "2030-03-07", "end": "2030-03-07"}, HTTP_HOST=HOST)
        run_worker()
        assert Hit.objects.filter(site=site).count() == 2
        assert set(Hit.objects.values_list("created_at", flat=True)) == {RECENT}
        # The dashboard's and the API's totals are the rollups', which keep the deleted hits' counts
        assert total(stats, "2030-03-01", "2030-06-15") == before == (9, 9)
        assert total(stats, "2030-03-07", "2030-03-07") == old_day == (7, 7)
        again = stats.get("/api/v0/stats/browsers", {"start": "2030-03-07", "end": "2030-03-07"}, HTTP_HOST=HOST)
        assert again.json() == browsers.json()
    run = RetentionRun.objects.get(trigger="worker")
    assert run.deleted["hits"] == 7 and run.finished_at is not None and run.error == ""
    site.refresh_from_db()
    assert site.hits_deleted_before == NOW - timedelta(days=90)
    # ... and the pass queued the next one, once
    waiting = DBTaskResult.objects.filter(task_path=retention.run_retention.module_path, status="READY")
    assert waiting.count() == 1


def test_it_keeps_the_hits_of_sites_without_retention_and_those_not_yet_rolled_up(site, charlie):
    forever = Site.objects.create(code="charlie-site", owner=charlie)  # data_retention 0: for ever
    store(forever, OLD, 4)
    store(site, OLD, 2)
    roll_up()
    store(site, OLD, 3)  # not in the rollups yet: deleting it would lose it from the stats
    failed = Hit.objects.filter(site=site).order_by("id").first()
    assert failed is not None
    RollupFailure.objects.create(site=site, from_hit_id=failed.pk - 1, to_hit_id=failed.pk, error="boom")
    with time_machine.travel(NOW, tick=False):
        run_worker()
    assert Hit.objects.filter(site=forever).count() == 4
    assert Hit.objects.filter(site=site).count() == 4  # the failed one and the three not rolled up
    assert Hit.objects.filter(pk=failed.pk).exists()


def test_an_import_of_old_hits_is_deleted_too(site):
    store(site, RECENT, 4)
    store(site, OLD, 2)  # newer ids, older times: as an import makes them
    roll_up()
    with time_machine.travel(NOW, tick=False):
        run_worker()
    assert Hit.objects.filter(site=site).count() == 4


def test_a_time_zone_change_after_retention_keeps_the_old_days(site, stats):
    store(site, OLD, 5, path="/old")
    store(site, RECENT, 2, path="/new")
    roll_up()
    with time_machine.travel(NOW, tick=False):
        run_worker()
        site.timezone = "Asia/Tokyo"
        site.save()
        rebuild_days(site)
        assert total(stats, "2030-03-01", "2030-06-15") == (7, 7)
    assert PathDay.objects.filter(site=site, day=OLD.date()).get().pageviews == 5
    month = PathMonth.objects.get(site=site, month=OLD.date().replace(day=1))
    assert month.pageviews == 5 and month.daily_pageviews[OLD.day - 1] == 5
    assert StatDay.objects.filter(site=site, kind="totals", day=RECENT.date()).get().pageviews == 2


# --- the site settings API ------------------------------------------------------------------------------


def site_url(site: Site) -> str:
    return f"/api/v0/sites/{site.pk}"


def test_the_site_settings_api_sets_and_shows_data_retention(stats, site):
    r = stats.patch(site_url(site), {"settings": {"data_retention": 31}}, format="json")
    assert r.status_code == 200
    assert r.json()["settings"]["data_retention"] == 31
    assert r.json()["setttings"]["data_retention"] == 31  # GoatCounter's own key and shape
    site.refresh_from_db()
    assert site.data_retention == 31
    r = stats.get(site_url(site))
    assert (r.json()["settings"]["data_retention"], r.json()["setttings"]["data_retention"]) == (31, 31)
    r = stats.patch(site_url(site), {"settings": {"data_retention": 0}}, format="json")  # for ever again
    assert r.status_code == 200 and r.json()["setttings"]["data_retention"] == 0
    site.refresh_from_db()
    assert site.data_retention == 0


def test_setting_a_retention_queues_the_workers_passes_once(stats, site):
    for days in (60, 90):
        assert stats.patch(site_url(site), {"settings": {"data_retention": days}}, format="json").status_code == 200
    waiting = DBTaskResult.objects.filter(task_path=retention.run_retention.module_path, status="READY")
    assert waiting.count() == 1


@pytest.mark.parametrize("bad", [7, 30, -1, 40_000, "90", True, 90.5, None, [90]])
def test_it_refuses_a_bad_data_retention(stats, site, bad):
    r = stats.patch(site_url(site), {"settings": {"data_retention": bad}}, format="json")
    assert r.status_code == 400
    assert list(r.json()) == ["errors"]  # GoatCounter's envelope, keys dotted
    assert list(r.json()["errors"]) == ["settings.data_retention"]
    site.refresh_from_db()
    assert site.data_retention == 90


def test_an_outsider_cannot_set_a_sites_retention(charlie, site):
    client = client_with_key(make_key(charlie, "sites"))
    r = client.patch(site_url(site), {"settings": {"data_retention": 31}}, format="json")
    assert r.status_code == 404
    site.refresh_from_db()
    assert site.data_retention == 90
