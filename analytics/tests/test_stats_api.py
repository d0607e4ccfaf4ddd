"""GoatCounter's stats API: /api/v0/paths and /api/v0/stats/..., answered from the rollups."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from analytics import sites, stats
from analytics.models import Domain, Hit, Path, PathDay, PathMonth, Site, StatDay
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits
from conftest import client_with_key, count_queries, make_key

HOST = "stats.alice.example"
DAY = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)  # a Monday


@pytest.fixture(autouse=True)
def _any_host(settings):
    settings.ALLOWED_HOSTS = ["*"]
    sites.forget_pixel_sites()


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice, timezone="Europe/Berlin")
    Domain.objects.create(site=site, domain=HOST)
    return site


@pytest.fixture
def client(alice, site):
    return client_with_key(make_key(alice, "stats"))


def get(client, url: str, **params):
    return client.get(url, params, HTTP_HOST=HOST)


def visitor() -> uuid.UUID:
    return uuid.uuid4()


def store(site: Site, *hits: CleanHit) -> None:
    with transaction.atomic():
        record_hits(site, list(hits))
    roll_up()


def hit(path: str = "/", at: datetime = DAY, who: uuid.UUID | None = None, **fields) -> CleanHit:
    return CleanHit(path=path, created_at=at, visitor=who or visitor(), **fields)


def path_id(site: Site, path: str) -> int:
    return Path.objects.get(site=site, path=path).pk


# --- /api/v0/paths --------------------------------------------------------------------------------------


def test_paths_are_listed_by_id_with_a_cursor(client, site):
    store(site, *[hit(f"/p{n}", title=f"Page {n}") for n in range(5)], hit("signup", event=True))
    ids = list(Path.objects.filter(site=site).order_by("id").values_list("id", flat=True))
    r = get(client, "/api/v0/paths", limit=4)
    assert r.status_code == 200
    assert r.json()["more"] is True
    assert r.json()["paths"][0] == {"id": ids[0], "path": "/p0", "title": "Page 0", "event": False}
    assert [p["id"] for p in r.json()["paths"]] == ids[:4]
    r = get(client, "/api/v0/paths", limit=4, after=ids[3])
    assert r.json() == {
        "paths": [
            {"id": ids[4], "path": "/p4", "title": "Page 4", "event": False},
            {"id": ids[5], "path": "signup", "title": "", "event": True},
        ],
        "more": False,
    }
    assert len(get(client, "/api/v0/paths").json()["paths"]) == 6  # default limit 20


def test_paths_are_found_by_path_and_by_id(client, site):
    store(site, hit("/blog/x", title="X"), hit("/blog/xy"), hit("/blog/y"))
    x = path_id(site, "/blog/x")
    r = get(client, "/api/v0/paths", path="/blog/x")
    assert r.json() == {"paths": [{"id": x, "path": "/blog/x", "title": "X", "event": False}], "more": False}
    assert get(client, "/api/v0/paths", path="/nope").json() == {"paths": [], "more": False}
    both = client.get("/api/v0/paths?path=/blog/x&path=/blog/y", HTTP_HOST=HOST).json()["paths"]
    assert [p["path"] for p in both] == ["/blog/x", "/blog/y"]
    assert [p["path"] for p in get(client, "/api/v0/paths", id=f"{x}").json()["paths"]] == ["/blog/x"]


def test_paths_limit_is_checked(client, site):
    assert get(client, "/api/v0/paths", limit=200).status_code == 200
    for bad in ("0", "201", "x", "-1"):
        r = get(client, "/api/v0/paths", limit=bad)
        assert r.status_code == 400
        assert set(r.json()) == {"errors"} and list(r.json()["errors"]) == ["limit"]
    assert get(client, "/api/v0/paths", after="x").json()["errors"]["after"]


# --- /api/v0/stats/total --------------------------------------------------------------------------------


def test_total_counts_visitors_and_pageviews(client, site):
    same = visitor()
    store(
        site,
        hit("/a", who=same),
        hit("/a", who=same, at=DAY + timedelta(minutes=5)),  # a second pageview, not a second visitor
        hit("/a"),
        hit("/b", at=DAY + timedelta(days=1)),
        hit("click", event=True, at=DAY + timedelta(days=1)),
    )
    r = get(client, "/api/v0/stats/total", start="2030-03-03", end="2030-03-06")
    assert r.status_code == 200
    body = r.json()
    assert (body["total"], body["total_pageviews"]) == (4, 5)
    assert (body["total_events"], body["total_events_pageviews"]) == (1, 1)
    assert body["total_utc"] == 4
    assert [{k: v for k, v in day.items() if not k.startswith("hourly")} for day in body["stats"]] == [
        {"day": "2030-03-03", "daily": 0, "daily_pageviews": 0},
        {"day": "2030-03-04", "daily": 2, "daily_pageviews": 3},
        {"day": "2030-03-05", "daily": 2, "daily_pageviews": 2},
        {"day": "2030-03-06", "daily": 0, "daily_pageviews": 0},
    ]
    # GoatCounter sends the hours of every day whatever the group
    assert [sum(day["hourly"]) for day in body["stats"]] == [0, 2, 2, 0]
    assert all(len(day["hourly"]) == len(day["hourly_pageviews"]) == 24 for day in body["stats"])


def test_total_of_some_paths(client, site):
    store(site, hit("/a"), hit("/a"), hit("/b"), hit("click", event=True))
    a, click = path_id(site, "/a"), path_id(site, "click")
    r = get(client, "/api/v0/stats/total", start="2030-03-04", end="2030-03-04", include_paths=f"{a},{click}")
    assert (r.json()["total"], r.json()["total_events"], r.json()["total_utc"]) == (3, 1, 3)
    r = get(
        client, "/api/v0/stats/total", start="2030-03-04", end="2030-03-04", include_paths="/b", path_by_name="true"
    )
    assert (r.json()["total"], r.json()["total_events"]) == (1, 0)


def test_total_by_hour(client, site):
    store(
        site,
        hit("/a", at=datetime(2030, 3, 4, 9, 15, tzinfo=UTC)),
        hit("/b", at=datetime(2030, 3, 4, 9, 45, tzinfo=UTC)),
    )
    r = get(client, "/api/v0/stats/total", start="2030-03-04", end="2030-03-04", group="hour")
    (day,) = r.json()["stats"]
    assert day["hourly"][10] == 2 and sum(day["hourly"]) == 2  # 09:xx UTC is 10:xx in Berlin
    assert day["hourly_pageviews"][10] == 2 and len(day["hourly"]) == 24


def test_hits_hours_on_the_days_the_clocks_change(client, site):
    """Berlin's clocks go back on 27 October 2030 (02:xx twice: both in hour 2) and forward on 31 March (no 02:xx)."""
    store(
        site,
        hit("/a", at=datetime(2030, 10, 27, 0, 30, tzinfo=UTC)),  # 02:30 summer time
        hit("/a", at=datetime(2030, 10, 27, 1, 30, tzinfo=UTC)),  # 02:30 winter time
        hit("/a", at=datetime(2030, 10, 27, 22, 59, tzinfo=UTC)),  # 23:59
        hit("/a", at=datetime(2030, 3, 31, 1, 30, tzinfo=UTC)),  # 03:30 summer time, an hour after 01:30
    )
    autumn = get(client, "/api/v0/stats/hits", start="2030-10-27", end="2030-10-27").json()
    (day,) = autumn["hits"][0]["stats"]
    assert (day["daily"], day["hourly"][2], day["hourly"][23], sum(day["hourly"])) == (3, 2, 1, 3)
    assert day["hourly_pageviews"][2] == 2 and len(day["hourly"]) == 24
    spring = get(client, "/api/v0/stats/hits", start="2030-03-31", end="2030-03-31").json()
    (day,) = spring["hits"][0]["stats"]
    assert (day["hourly"][2], day["hourly"][3], sum(day["hourly"])) == (0, 1, 1)
    # A zone half an hour off: the hour counted from 22:00 UTC starts at 03:30 the next day in Kolkata, so 22:59
    # UTC (04:29 there) shows in hour 3, the hour that it starts in (hours are counted in UTC)
    kolkata = get(client, "/api/v0/stats/hits", start="2030-10-28", end="2030-10-28", tz="Asia/Kolkata").json()
    (day,) = kolkata["hits"][0]["stats"]
    assert (day["hourly"][3], sum(day["hourly"])) == (1, 1)


def test_days_are_the_sites_or_the_tz_parameters(client, site):
    store(site, hit("/late", at=datetime(2030, 3, 4, 23, 30, tzinfo=UTC)))
    berlin = get(client, "/api/v0/stats/total", start="2030-03-04", end="2030-03-05").json()
    assert [(d["day"], d["daily"]) for d in berlin["stats"]] == [("2030-03-04", 0), ("2030-03-05", 1)]
    utc = get(client, "/api/v0/stats/total", start="2030-03-04", end="2030-03-05", tz="UTC").json()
    assert [(d["day"], d["daily"]) for d in utc["stats"]] == [("2030-03-04", 1), ("2030-03-05", 0)]
    # the 5th in Berlin holds the hit; the 5th as a UTC day does not
    fifth = get(client, "/api/v0/stats/total", start="2030-03-05", end="2030-03-05").json()
    assert (fifth["total"], fifth["total_utc"]) == (1, 0)
    fifth_utc = get(client, "/api/v0/stats/total", start="2030-03-05", end="2030-03-05", tz="UTC").json()
    assert (fifth_utc["total"], fifth_utc["total_utc"]) == (0, 0)
    hours = get(client, "/api/v0/stats/hits", start="2030-03-05", end="2030-03-05", group="hour").json()
    assert hours["hits"][0]["stats"][0]["hourly"][0] == 1  # 00:30 in Berlin
    hours = get(client, "/api/v0/stats/hits", start="2030-03-04", end="2030-03-04", group="hour", tz="UTC").json()
    assert hours["hits"][0]["stats"][0]["hourly"][23] == 1


def test_start_and_end_may_be_rfc3339_times(client, site):
    store(site, hit("/a", at=datetime(2030, 3, 4, 23, 30, tzinfo=UTC)))
    # 2030-03-04T23:00Z is the 5th in Berlin
    r = get(client, "/api/v0/stats/total", start="2030-03-04T23:00:00Z", end="2030-03-05T10:00:00+01:00")
    assert [d["day"] for d in r.json()["stats"]] == ["2030-03-05"]
    assert r.json()["total"] == 1
    # a "+" sent without URL-encoding arrives as a space
    r = client.get("/api/v0/stats/total?start=2030-03-05T01:00:00+01:00&end=2030-03-05", HTTP_HOST=HOST)
    assert [d["day"] for d in r.json()["stats"]] == ["2030-03-05"]


def test_every_bad_parameter_is_named_at_once(client, site):
    r = get(client, "/api/v0/stats/hits", start="x", tz="Nowhere", limit="0", group="year")
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"start", "tz", "limit", "group"}


@time_machine.travel(datetime(2030, 3, 10, 22, 30, tzinfo=UTC), tick=False)  # the 10th, 23:30 in Berlin
def test_the_default_range_is_the_last_7_days_of_the_sites_zone(client, site):
    store(
        site,
        hit("/a", at=datetime(2030, 3, 10, 22, 0, tzinfo=UTC)),
        hit("/old", at=datetime(2030, 3, 3, 12, tzinfo=UTC)),
    )
    r = get(client, "/api/v0/stats/total")
    assert [d["day"] for d in r.json()["stats"]] == [f"2030-03-{n:02}" for n in range(4, 11)]
    assert r.json()["total"] == 1
    assert get(client, "/api/v0/stats/total", tz="Asia/Tokyo").json()["stats"][-1]["day"] == "2030-03-11"


# --- /api/v0/stats/hits ---------------------------------------------------------------------------------


def test_hits_lists_paths_with_every_day(client, site):
    same = visitor()
    store(
        site,
        hit("/a", title="A", who=same),
        hit("/a", title="A", who=same),
        hit("/a", at=DAY + timedelta(days=2)),
        hit("/a", at=DAY + timedelta(days=2)),
        hit("/b", title="B"),
    )
    r = get(client, "/api/v0/stats/hits", start="2030-03-04", end="2030-03-07")
    assert r.status_code == 200
    body = r.json()
    assert (body["total"], body["total_pageviews"], body["more"]) == (4, 5, False)
    a, b = body["hits"]
    assert {k: a[k] for k in ("count", "count_pageviews", "path", "title", "event", "max")} == {
        "count": 3,
        "count_pageviews": 4,
        "path": "/a",
        "title": "A",
        "event": False,
        "max": 2,
    }
    assert a["path_id"] == path_id(site, "/a")
    assert [{k: v for k, v in day.items() if not k.startswith("hourly")} for day in a["stats"]] == [
        {"day": "2030-03-04", "daily": 1, "daily_pageviews": 2},
        {"day": "2030-03-05", "daily": 0, "daily_pageviews": 0},
        {"day": "2030-03-06", "daily": 2, "daily_pageviews": 2},
        {"day": "2030-03-07", "daily": 0, "daily_pageviews": 0},
    ]
    assert [sum(day["hourly"]) for day in a["stats"]] == [1, 0, 2, 0]
    assert (b["path"], b["count"], b["max"]) == ("/b", 1, 1)
    assert [d["daily"] for d in b["stats"]] == [1, 0, 0, 0]


def test_hits_include_and_exclude_paths(client, site):
    store(site, hit("/a"), hit("/a"), hit("/b"), hit("/c"))
    a, b, c = path_id(site, "/a"), path_id(site, "/b"), path_id(site, "/c")
    day = {"start": "2030-03-04", "end": "2030-03-04"}

    def paths(**params):
        body = get(client, "/api/v0/stats/hits", **day, **params).json()
        return [h["path"] for h in body["hits"]], body["total"]

    assert paths() == (["/a", "/b", "/c"], 4)
    assert paths(include_paths=f"{b},{c}") == (["/b", "/c"], 2)
    assert paths(exclude_paths=f"{a}") == (["/b", "/c"], 2)
    assert paths(include_paths=f"{a},{b}", exclude_paths=f"{b}") == (["/a"], 2)
    assert paths(include_paths="/a,/c", path_by_name="true") == (["/a", "/c"], 3)
    assert paths(exclude_paths="/a", path_by_name="true") == (["/b", "/c"], 2)
    assert paths(include_paths="/nothing", path_by_name="true") == ([], 0)
    r = get(client, "/api/v0/stats/hits", **day, include_paths="/a")
    assert r.status_code == 400 and list(r.json()["errors"]) == ["include_paths"]


@pytest.mark.parametrize(
    "start, end",
    [
        ("2030-02-03", "2030-04-02"),  # most of February, all of March, a little of April
        ("2030-02-26", "2030-04-28"),  # a little of February, all of March, most of April
        ("2030-03-03", "2030-03-29"),  # most of one month
        ("2030-03-10", "2030-03-12"),  # a little of one month
        ("2030-03-01", "2030-04-30"),  # whole months
    ],
)
def test_top_paths_of_ranges_across_months_count_only_their_days(client, site, start, end):
    # A range is read as whole months less (or plus) days; the counts must be exactly those of its days.
    days = [date(2030, 2, 1) + timedelta(days=n) for n in range(0, 89, 3)]  # Feb 1 .. Apr 30, every 3rd day
    edges = [date(2030, 3, 1), date(2030, 3, 31), date(2030, 4, 30), date(2030, 2, 1)]
    plan = {"/a": days, "/b": days[::2] + edges, "/edge": edges}
    store(
        site,
        *[
            hit(path, at=datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12))
            for path, dates in plan.items()
            for day in dates
        ],
    )
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    expected = {path: sum(first <= day <= last for day in dates) for path, dates in plan.items()}
    body = get(client, "/api/v0/stats/hits", start=start, end=end).json()
    assert {h["path"]: (h["count"], h["count_pageviews"]) for h in body["hits"]} == {
        path: (n, n) for path, n in expected.items() if n
    }
    assert body["total"] == sum(expected.values())


def test_a_months_days_are_kept_with_it_as_hits_come_in(site):
    # PathMonth's day arrays, summed over rollups that each bring some days, equal the days' own rollup.
    for batch in ([3, 1], [1, 17, 30], [2, 31, 3]):
        store(site, *[hit("/a", at=datetime(2030, 3, day, 12, tzinfo=UTC)) for day in batch])
    month = PathMonth.objects.get(site=site, path__path="/a")
    days = {row.day.day: row for row in PathDay.objects.filter(site=site, path__path="/a")}
    assert len(month.daily_pageviews) == 31
    assert month.daily_pageviews == [days[n].pageviews if n in days else 0 for n in range(1, 32)]
    assert month.daily_visitors == [days[n].visitors if n in days else 0 for n in range(1, 32)]
    assert month.daily_pageviews[0] == 2 and sum(month.daily_pageviews) == month.pageviews == 8


def test_hits_are_paged(client, site):
    store(site, *[hit(f"/p{n}") for n in range(5) for _ in range(5 - n)])  # /p0 5 visitors ... /p4 1
    day = {"start": "2030-03-04", "end": "2030-03-04"}
    first = get(client, "/api/v0/stats/hits", **day, limit=2).json()
    assert ([h["path"] for h in first["hits"]], first["more"], first["total"]) == (["/p0", "/p1"], True, 15)
    last = get(client, "/api/v0/stats/hits", **day, limit=2, offset=4).json()
    assert ([h["path"] for h in last["hits"]], last["more"]) == (["/p4"], False)
    assert get(client, "/api/v0/stats/hits", **day, limit=100).status_code == 200


def test_hits_by_hour(client, site):
    store(
        site,
        hit("/a", at=datetime(2030, 3, 4, 7, 10, tzinfo=UTC)),
        hit("/a", at=datetime(2030, 3, 4, 7, 20, tzinfo=UTC)),
        hit("/a", at=datetime(2030, 3, 4, 15, 0, tzinfo=UTC)),
    )
    r = get(client, "/api/v0/stats/hits", start="2030-03-04", end="2030-03-05", group="hour")
    (a,) = r.json()["hits"]
    assert a["max"] == 2  # the busiest hour, not the day's 3
    first, second = a["stats"]
    assert (first["daily"], first["hourly"][8], first["hourly"][16], sum(first["hourly"])) == (3, 2, 1, 3)
    assert first["hourly_pageviews"][8] == 2
    assert second["hourly"] == [0] * 24 and second["daily"] == 0
    plain = get(client, "/api/v0/stats/hits", start="2030-03-04", end="2030-03-05").json()["hits"][0]
    assert plain["stats"][0]["hourly"] == first["hourly"] and plain["max"] == 3  # hours by day too; max of days


def test_ranges_longer_than_a_month_have_empty_hours(client, site):
    store(site, hit("/a", at=datetime(2030, 3, 4, 7, 10, tzinfo=UTC)))
    for url in ("/api/v0/stats/total", "/api/v0/stats/hits"):
        body = get(client, url, start="2030-01-01", end="2030-12-31").json()
        days = body["stats"] if "stats" in body else body["hits"][0]["stats"]
        assert len(days) == 365 and all(day["hourly"] == [] and "hourly_pageviews" not in day for day in days)


def test_hits_by_week_and_month(client, site):
    store(
        site,
        hit("/a", at=datetime(2030, 3, 4, 12, tzinfo=UTC)),  # Monday
        hit("/a", at=datetime(2030, 3, 10, 12, tzinfo=UTC)),  # Sunday, same week
        hit("/a", at=datetime(2030, 3, 11, 12, tzinfo=UTC)),  # next Monday
        hit("/a", at=datetime(2030, 4, 2, 12, tzinfo=UTC)),
    )
    weeks = get(client, "/api/v0/stats/hits", start="2030-03-01", end="2030-04-05", group="week").json()
    stats_ = weeks["hits"][0]["stats"]
    assert len(stats_) == 36
    weekly = {d["day"]: d["weekly"] for d in stats_ if "weekly" in d}
    assert weekly == {
        "2030-03-04": 2,
        "2030-03-11": 1,
        "2030-03-18": 0,
        "2030-03-25": 0,
        "2030-04-01": 1,
    }
    assert all(date.fromisoformat(day).weekday() == 0 for day in weekly)
    months = get(client, "/api/v0/stats/hits", start="2030-03-01", end="2030-04-05", group="month").json()
    monthly = {d["day"]: (d["monthly"], d["monthly_pageviews"]) for d in months["hits"][0]["stats"] if "monthly" in d}
    assert monthly == {"2030-03-01": (3, 3), "2030-04-01": (1, 1)}
    assert "weekly" not in months["hits"][0]["stats"][3]


# --- /api/v0/stats/hits/<path_id> -----------------------------------------------------------------------


def test_referrers_of_a_path(client, site, charlie):
    same = visitor()
    store(
        site,
        hit("/a", ref="news.example.com/item", ref_scheme="h", who=same),
        hit("/a", ref="news.example.com/item", ref_scheme="h", who=same),
        hit("/a", ref="Google", ref_scheme="g"),
        hit("/b", ref="Google", ref_scheme="g"),
        hit("/a"),
    )
    day = {"start": "2030-03-04", "end": "2030-03-04"}
    r = get(client, f"/api/v0/stats/hits/{path_id(site, '/a')}", **day)
    assert r.json() == {
        "refs": [  # most visitors first, then most pageviews
            {
                "id": "news.example.com/item",
                "name": "news.example.com/item",
                "count": 1,
                "count_pageviews": 2,
                "ref_scheme": "h",
            },
            {"id": "Google", "name": "Google", "count": 1, "count_pageviews": 1, "ref_scheme": "g"},
        ],
        "more": False,
    }
    paged = get(client, f"/api/v0/stats/hits/{path_id(site, '/a')}", **day, limit=1).json()
    assert (len(paged["refs"]), paged["more"]) == (1, True)
    other = Site.objects.create(code="charlies", owner=charlie)
    store(other, hit("/theirs", ref="Google", ref_scheme="g"))
    r = get(client, f"/api/v0/stats/hits/{path_id(other, '/theirs')}", **day)
    assert r.status_code == 404 and "error" in r.json()


# --- /api/v0/stats/<page> -------------------------------------------------------------------------------


@pytest.fixture
def variety(site):
    store(
        site,
        hit("/a", browser="Chrome 131", system="Linux", size=1920, location="US-CA", language="en"),
        hit("/a", browser="Chrome 130", system="Windows 11", size=390, location="US-TX", language="en"),
        hit("/b", browser="Firefox 131", system="Linux", size=1920, location="NL", language="nl"),
        hit("/b", browser="Chrome 131", ref="news.example.com/item", ref_scheme="h", campaign="spring"),
        hit("/a", ref="news.example.com/item", ref_scheme="h", campaign="spring"),
        hit("/a", ref="Google", ref_scheme="g"),
    )


def page(client, name: str, **params):
    r = get(client, f"/api/v0/stats/{name}", start="2030-03-04", end="2030-03-04", **params)
    assert r.status_code == 200, r.content
    return r.json()


def counts(body: dict, key: str = "stats") -> dict[str, int]:
    return {row["name"]: row["count"] for row in body[key]}


def test_browsers_systems_sizes_locations_languages_campaigns(client, site, variety):
    browsers = page(client, "browsers")
    assert browsers["stats"][0] == {"id": "Chrome", "name": "Chrome", "count": 3, "count_pageviews": 3}
    assert counts(browsers) == {"Chrome": 3, "Firefox": 1, "(unknown)": 2}
    assert counts(page(client, "browsers/Chrome")) == {"131": 2, "130": 1}
    assert counts(page(client, "systems")) == {"Linux": 2, "Windows": 1, "(unknown)": 3}
    assert counts(page(client, "systems/Windows")) == {"11": 1}
    assert counts(page(client, "sizes")) == {"Computer monitors": 2, "Phones": 1, "(unknown)": 3}
    assert counts(page(client, "sizes/Computer monitors")) == {"1920": 2}
    assert counts(page(client, "locations")) == {"US": 2, "NL": 1, "(unknown)": 3}
    assert counts(page(client, "locations/US")) == {"US-CA": 1, "US-TX": 1}
    assert counts(page(client, "languages")) == {"en": 2, "nl": 1, "(unknown)": 3}
    assert counts(page(client, "campaigns")) == {"spring": 2}
    assert counts(page(client, "campaigns/spring")) == {"news.example.com/item": 2}  # where the campaign came from
    paged = page(client, "browsers", limit=1, offset=1)
    assert (counts(paged), paged["more"]) == ({"(unknown)": 2}, True)


def test_top_referrers_and_where_a_referrer_sent_people(client, site, variety):
    refs = page(client, "toprefs")
    assert refs["stats"][0] == {
        "id": "news.example.com/item",
        "name": "news.example.com/item",
        "count": 2,
        "count_pageviews": 2,
        "ref_scheme": "h",
    }
    assert counts(refs) == {"news.example.com/item": 2, "Google": 1}
    assert counts(page(client, "toprefs/news.example.com/item")) == {"/a": 1, "/b": 1}


def test_an_unknown_page_is_a_404(client, site):
    for url in ("/api/v0/stats/visitors", "/api/v0/stats/languages/en", "/api/v0/stats/nope/x"):
        r = get(client, url)
        assert r.status_code == 404
        assert set(r.json()) == {"error"}


# --- who may ask ----------------------------------------------------------------------------------------

URLS = [
    "/api/v0/paths",
    "/api/v0/stats/total",
    "/api/v0/stats/hits",
    "/api/v0/stats/browsers",
    "/api/v0/stats/browsers/Chrome",
    "/api/v0/stats/toprefs",
]


def test_a_key_is_needed_with_the_stats_scope(alice, site, anon_client):
    store(site, hit("/a", at=datetime.now(UTC)))
    for url in URLS:
        assert get(anon_client, url).status_code == 401
        r = get(client_with_key(make_key(alice, "count", "export", "sites")), url)
        assert r.status_code == 403 and "stats" in r.json()["error"]


def test_another_user_never_sees_alices_numbers(alice, charlie, site):
    store(site, hit("/a", at=datetime.now(UTC)))
    charlie_client = client_with_key(make_key(charlie, "stats"))
    for url in URLS:
        r = get(charlie_client, url)  # alice's domain, and no site of his own
        assert r.status_code == 400 and list(r.json()["errors"]) == ["site"]
        r = charlie_client.get(url)
        assert r.status_code == 400 and list(r.json()["errors"]) == ["site"]
    Site.objects.create(code="charlies", owner=charlie)
    assert charlie_client.get("/api/v0/stats/total").json()["total"] == 0
    assert charlie_client.get("/api/v0/paths").json()["paths"] == []
    assert get(client_with_key(make_key(alice, "stats")), "/api/v0/stats/total").json()["total"] == 1


# --- parameters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2030-13-01"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2030-03-04T12:00:00"}, "end"),  # RFC 3339 needs an offset
        ({"start": "2030-03-05", "end": "2030-03-04"}, "end"),
        ({"start": "2020-01-01", "end": "2030-01-01"}, "end"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "CET+1"}, "tz"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"group": "year"}, "group"),
        ({"path_by_name": "maybe"}, "path_by_name"),
        ({"exclude_paths": "1,x"}, "exclude_paths"),
    ],
)
def test_bad_parameters_are_400s_naming_them(client, site, params, field):
    r = get(client, "/api/v0/stats/hits", **params)
    assert r.status_code == 400
    assert r.json() == {"errors": {field: [r.json()["errors"][field][0]]}}


def test_the_longest_range_is_allowed(client, site):
    end = date(2030, 3, 4)
    start = end - timedelta(days=stats.MAX_RANGE_DAYS - 1)
    assert get(client, "/api/v0/stats/total", start=start.isoformat(), end=end.isoformat()).status_code == 200
    too_long = (start - timedelta(days=1)).isoformat()
    assert get(client, "/api/v0/stats/total", start=too_long, end=end.isoformat()).status_code == 400


@pytest.mark.parametrize("url", [*URLS, "/api/v0/stats/hits/1"])
def test_an_unknown_parameter_is_a_400(client, site, url):
    r = get(client, url, bogus="1")
    assert r.status_code == 400
    assert r.json() == {"error": 'unknown parameter: "bogus"'}


@pytest.mark.parametrize("url", ["/api/v0/stats/browsers", "/api/v0/stats/toprefs/x", "/api/v0/stats/hits/1"])
def test_limit_of_lists_is_checked(client, site, url):
    assert get(client, url, limit="101").json()["errors"]["limit"]
    assert get(client, url, start="2030-02-30").json()["errors"]["start"]


# --- from the rollups, in a fixed number of queries -------------------------------------------------------


def many_paths(site: Site, n: int, days: int) -> None:
    store(site, *[hit(f"/p{n}-{i}", at=DAY + timedelta(days=d)) for i in range(n) for d in range(days)])


@pytest.mark.parametrize("group", ["day", "hour", "week"])
def test_queries_do_not_grow_with_paths_or_days(client, site, charlie, group):
    many_paths(site, 3, 2)
    urls = [
        f"/api/v0/stats/hits?start=2030-03-04&end=2030-03-05&group={group}",
        f"/api/v0/stats/total?start=2030-03-04&end=2030-03-05&group={group}",
        "/api/v0/paths?limit=200",
    ]
    client.defaults["HTTP_HOST"] = HOST
    count_queries(client, urls[0])  # the key's first use of the test writes its last_used
    few = [count_queries(client, url) for url in urls]
    many_paths(site, 30, 20)
    wider = [url.replace("end=2030-03-05", "end=2030-03-30") for url in urls]
    assert [count_queries(client, url) for url in wider] == few


def test_no_request_reads_the_hit_table(client, site, variety):
    assert Hit._meta.db_table == "analytics_hit"
    raw = re.compile(r"\banalytics_hit\b")  # not analytics_bothit, analytics_pathhour, ...
    assert not raw.search("analytics_pathhour analytics_bothit analytics_hit_site_id")
    a = path_id(site, "/a")
    urls = [
        "/api/v0/paths?path=/a",
        "/api/v0/stats/total?start=2030-03-01&end=2030-03-05&group=hour&include_paths=/a&path_by_name=true",
        "/api/v0/stats/total?start=2030-03-01&end=2030-03-05&tz=UTC",
        f"/api/v0/stats/hits?start=2030-03-01&end=2030-03-05&group=hour&exclude_paths={a}",
        "/api/v0/stats/hits?start=2030-03-01&end=2030-03-05&group=month&tz=Asia/Tokyo",
        f"/api/v0/stats/hits/{a}?start=2030-03-01&end=2030-03-05",
        *[f"/api/v0/stats/{p}?start=2030-03-04&end=2030-03-04" for p in (*StatDay.KINDS, "toprefs")],
        "/api/v0/stats/browsers/Chrome?tz=UTC",
        "/api/v0/stats/toprefs/news.example.com/item",
    ]
    with CaptureQueriesContext(connection) as queries:
        for url in urls:
            assert client.get(url, HTTP_HOST=HOST).status_code == 200, url
    assert queries.captured_queries
    assert [q["sql"] for q in queries.captured_queries if raw.search(q["sql"])] == []


def test_a_zone_whose_rules_postgresql_knows_otherwise_is_no_server_error(client, site, monkeypatch):
    # PostgreSQL's zone data may be newer than Python's (the embedded server's knows Alberta's 2026 change):
    # then the hours the range's bounds let in can fall, by PostgreSQL's reckoning, on days outside the range.
    # Simulated by bounds an hour wider than the range's days.
    store(
        site,
        hit("/a", at=datetime(2030, 3, 4, 23, 30, tzinfo=UTC)),
        hit("/a", at=datetime(2030, 3, 6, 0, 30, tzinfo=UTC)),
    )
    store(site, hit("/a", at=datetime(2030, 3, 5, 12, 0, tzinfo=UTC)))
    roll_up()
    bounds = stats.Range.utc_bounds
    monkeypatch.setattr(
        stats.Range,
        "utc_bounds",
        lambda rng: (bounds(rng)[0] - timedelta(hours=1), bounds(rng)[1] + timedelta(hours=1)),
    )
    r = get(client, "/api/v0/stats/hits", start="2030-03-05", end="2030-03-05", tz="UTC")
    assert r.status_code == 200
    [path] = r.json()["hits"]
    assert [(day["day"], day["daily"]) for day in path["stats"]] == [("2030-03-05", 1)]
