"""One request, bounded cost: the largest answers the stats API gives on a site with a hundred paths that all
had hits every hour for three years, and what it refuses instead of building."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from analytics.models import Domain, Path, Site
from analytics.stats_views import HOURLY_MAX_DAYS
from conftest import client_with_key, make_key

HOST = "big.example"
THREE_YEARS = {"start": "2023-01-01", "end": "2025-12-31"}


@pytest.fixture
def busy_site(alice, settings) -> Site:
    settings.ALLOWED_HOSTS = ["*"]
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter": "1000/1"}
    site = Site.objects.create(code="big", owner=alice)
    Domain.objects.create(site=site, domain=HOST)
    Path.objects.bulk_create([Path(site=site, path=f"/page-{i}") for i in range(100)])
    with connection.cursor() as cursor:
        # Days for three years, and hours for the last month: what the answers below read.
        cursor.execute(
            """INSERT INTO analytics_pathday (site_id, path_id, day, pageviews, visitors)
               SELECT p.site_id, p.id, d, 48, 24 FROM analytics_path p,
                   generate_series('2023-01-01'::date, '2025-12-31'::date, '1 day') d WHERE p.site_id = %s""",
            [site.pk],
        )
        cursor.execute(
            """INSERT INTO analytics_pathmonth (site_id, path_id, month, pageviews, visitors, daily_pageviews,
                   daily_visitors)
               SELECT p.site_id, p.id, m, 48 * n, 24 * n, array_fill(48, ARRAY[n]), array_fill(24, ARRAY[n])
               FROM analytics_path p, generate_series('2023-01-01'::date, '2025-12-01'::date, '1 month') m,
                   LATERAL (SELECT extract(day FROM m + interval '1 month' - interval '1 day')::int n) last
               WHERE p.site_id = %s""",
            [site.pk],
        )
        cursor.execute(
            """INSERT INTO analytics_pathhour (site_id, path_id, hour, pageviews, visitors)
               SELECT p.site_id, p.id, h, 2, 1 FROM analytics_path p,
                   generate_series('2025-12-01'::timestamptz, '2025-12-31 23:00'::timestamptz, '1 hour') h
               WHERE p.site_id = %s""",
            [site.pk],
        )
    return site


def get(client: Client, url: str, **params):
    return client.get(url, params, HTTP_HOST=HOST)


@pytest.mark.parametrize("url", ["/api/v0/stats/hits", "/api/v0/stats/total"])
def test_hourly_stats_cover_at_most_a_month(busy_site, alice, url):
    client = client_with_key(make_key(alice, "stats"))
    extra = {"limit": 100} if url == "/api/v0/stats/hits" else {}
    r = get(client, url, group="hour", start="2025-12-01", end="2025-12-31", **extra)
    assert r.status_code == 200
    r = get(client, url, group="hour", start="2025-11-30", end="2025-12-31", **extra)
    assert r.status_code == 400
    assert r.json() == {
        "errors": {"group": [f"group=hour covers at most {HOURLY_MAX_DAYS} days; ask for fewer days, or group=day."]}
    }
    assert get(client, url, group="day", **THREE_YEARS, **extra).status_code == 200


def test_the_largest_answers_stay_bounded(busy_site, alice):
    client = client_with_key(make_key(alice, "stats"))
    biggest = get(client, "/api/v0/stats/hits", **THREE_YEARS, limit=100)
    assert biggest.status_code == 200
    hits = biggest.json()["hits"]
    assert len(hits) == 100 and all(len(hit["stats"]) == 1096 for hit in hits)
    assert len(biggest.content) < 8_000_000  # the README's bound: 100 paths x 3 years of days
    hourly = get(client, "/api/v0/stats/hits", group="hour", start="2025-12-01", end="2025-12-31", limit=100)
    assert sum(hit["max"] for hit in hourly.json()["hits"]) == 100  # one visitor an hour
    assert len(hourly.content) < 1_000_000
