"""New hits reach the stats through rollups the real worker runs: the last hits of a burst too, not only the first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from analytics import rollups, sites
from analytics.models import Domain, Hit, Site
from conftest import client_with_key, make_key

HOST = "stats.alice.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
NOW = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)
INTERVAL = 60


@pytest.fixture(autouse=True)
def _setup(settings, monkeypatch):
    settings.ALLOWED_HOSTS = ["*"]
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-pixel": ""}
    settings.ROLLUP_INTERVAL_SECONDS = INTERVAL  # long, so nothing here depends on how fast the host is
    monkeypatch.setattr(rollups.schedule_roll_up, "next_slot", 0.0)  # this process has asked for no rollup yet
    # The worker drops connections not in autocommit between tasks, which would end the test's transaction.
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    sites.forget_pixel_sites()


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain=HOST)
    return site


def pixel(path: str) -> None:
    r = Client().get(f"/count?p={path}", HTTP_HOST=HOST, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.7")
    assert r.status_code == 200


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)


def pageviews(alice) -> int:
    r = client_with_key(make_key(alice, "stats")).get(
        "/api/v0/stats/total", {"start": "2030-03-04", "end": "2030-03-04"}, HTTP_HOST=HOST
    )
    assert r.status_code == 200
    return r.json()["total_pageviews"]


def test_the_last_hits_of_a_burst_reach_the_stats_without_waiting_for_another_hit(site, alice):
    with time_machine.travel(NOW, tick=False) as clock:
        pixel("/first")
        run_worker()
        assert pageviews(alice) == 1
        # Two more within the interval, after the rollup the first asked for has run: one deferred rollup
        # for both (a queue row per interval, not per hit), not none.
        pixel("/second")
        pixel("/third")
        assert DBTaskResult.objects.filter(status="READY").count() == 1
        assert not DBTaskResult.objects.ready().exists()  # not before its time
        run_worker()
        assert pageviews(alice) == 1
        clock.shift(INTERVAL)
        run_worker()
        assert pageviews(alice) == 3 == Hit.objects.count()
