"""One site's hits that can't be rolled up hold back no other site's: the rest are counted, the failure is
recorded (log, admin, /healthz) and retried, and once it goes in every hit is counted exactly once."""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.test import Client

from analytics.models import Hit, Path, RollupFailure, RollupState, Site, StatDay
from analytics.rollups import rebuild_days, retry_failures, roll_up
from analytics.services import CleanHit, record_hits

DAY = datetime(2030, 3, 4, 12, tzinfo=UTC)


def hit(path: str = "/", **fields) -> CleanHit:
    return CleanHit(path=path, created_at=DAY, visitor=uuid.uuid4(), **fields)


def store(site: Site, *hits: CleanHit) -> None:
    with transaction.atomic():
        record_hits(site, list(hits))


def poison(site: Site) -> Hit:
    """A hit stored as it could be before intake had limits: a campaign and a referrer that together overflow
    the StatDay index's 2,704-byte rows (random text, so PostgreSQL can't compress it under)."""
    path, _ = Path.objects.get_or_create(site=site, event=False, path="/landing")
    return Hit.objects.create(
        site=site,
        path=path,
        created_at=DAY,
        campaign=secrets.token_hex(950),
        ref=secrets.token_hex(950),
        ref_scheme="h",
    )


def pageviews(site: Site) -> int:
    return sum(StatDay.objects.filter(site=site, kind="totals").values_list("pageviews", flat=True))


@pytest.fixture
def sites(alice, charlie) -> tuple[Site, Site]:
    return Site.objects.create(code="alice-blog", owner=alice), Site.objects.create(code="charlie-shop", owner=charlie)


@pytest.fixture
def admin_browser(django_user_model) -> Client:
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "root-password")
    client = Client()
    client.force_login(admin)
    return client


def test_a_hit_that_fails_holds_back_no_other_site_and_no_other_hit(sites, client, caplog):
    alice_site, charlie_site = sites
    store(alice_site, hit("/a"), hit("/b"))
    bad = poison(alice_site)
    store(charlie_site, hit("/x"), hit("/y"), hit("/z"))
    store(alice_site, hit("/c"))

    with caplog.at_level(logging.ERROR, logger="analytics.rollups"):
        roll_up()

    assert pageviews(charlie_site) == 3
    assert pageviews(alice_site) == 3  # every hit of hers but the one that failed
    failure = RollupFailure.objects.get()
    assert (failure.site, failure.from_hit_id, failure.to_hit_id) == (alice_site, bad.pk - 1, bad.pk)
    assert "index row size" in failure.error
    assert f"Hits {bad.pk}-{bad.pk} of site {alice_site.pk} can't be rolled up" in caplog.text
    assert RollupState.objects.get().last_hit_id == Hit.objects.latest("id").pk

    health = client.get("/healthz").json()
    assert health["status"] == "degraded"
    assert health["rollups"].startswith("1 range(s) of hits of 1 site(s) could not be rolled up")

    # Later hits of both sites reach the stats as usual.
    store(alice_site, hit("/d"))
    store(charlie_site, hit("/x"))
    roll_up()
    assert (pageviews(alice_site), pageviews(charlie_site)) == (4, 4)
    assert RollupFailure.objects.count() == 1


def test_the_operator_sees_fixes_and_retries_a_failure_in_the_admin(sites, admin_browser, client):
    alice_site, _ = sites
    store(alice_site, hit("/a"))
    bad = poison(alice_site)
    roll_up()
    failure = RollupFailure.objects.get()

    page = admin_browser.get("/admin/analytics/rollupfailure/")
    assert page.status_code == 200
    assert b"alice-blog" in page.content and f">{bad.pk}<".encode() in page.content
    assert b"index row size" in page.content

    # Retrying without a fix fails again, and says so.
    r = admin_browser.post(
        "/admin/analytics/rollupfailure/",
        {"action": "retry", "_selected_action": [failure.pk]},
        follow=True,
    )
    assert b"0 range(s) rolled up; 1 still failing." in r.content
    assert RollupFailure.objects.get().attempts == 2

    Hit.objects.filter(pk=bad.pk).update(campaign="spring-sale")
    r = admin_browser.post(
        "/admin/analytics/rollupfailure/",
        {"action": "retry", "_selected_action": [RollupFailure.objects.get().pk]},
        follow=True,
    )
    assert b"1 range(s) rolled up; 0 still failing." in r.content
    assert not RollupFailure.objects.exists()
    assert pageviews(alice_site) == 2  # counted once, not again by the next rollup
    roll_up()
    assert pageviews(alice_site) == 2
    assert StatDay.objects.get(site=alice_site, kind="campaigns").name == "spring-sale"
    assert client.get("/healthz").json() == {
        "status": "ok",
        "database": "ok",
        "partitions": "ok",
        "rollups": "ok",
        "geoip": "ok",
    }


def test_the_worker_retries_a_failure_every_rollup_retry_seconds(sites, settings):
    settings.ROLLUP_RETRY_SECONDS = 600
    alice_site, _ = sites
    with time_machine.travel(DAY, tick=False) as clock:
        bad = poison(alice_site)
        roll_up()
        Hit.objects.filter(pk=bad.pk).update(campaign="fixed", ref="")
        clock.shift(timedelta(seconds=599))
        roll_up()
        assert RollupFailure.objects.get().attempts == 1  # not yet due
        clock.shift(timedelta(seconds=2))
        roll_up()
    assert not RollupFailure.objects.exists()
    assert pageviews(alice_site) == 1


def test_a_new_time_zone_recounts_days_without_the_failed_hits_until_their_retry(sites):
    alice_site, _ = sites
    store(alice_site, hit("/a"), hit("/b"))
    bad = poison(alice_site)
    roll_up()
    alice_site.timezone = "Asia/Tokyo"
    alice_site.save()
    rebuild_days(alice_site)
    assert pageviews(alice_site) == 2
    Hit.objects.filter(pk=bad.pk).update(campaign="fixed")
    assert retry_failures() == (1, 0)
    assert pageviews(alice_site) == 3
