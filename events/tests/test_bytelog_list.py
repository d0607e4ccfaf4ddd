"""GET /api/v1/events: one's own events in time order, by date range and name, paged by limit/offset."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from conftest import client_with_key, count_queries, make_key
from events.models import Event

URL = "/api/v1/events"
T0 = datetime(2021, 8, 15, 23, 41, 41, 507000, tzinfo=UTC)


def add(owner, date=T0, **fields):
    values = {"name": "click", "trace_id": "03775690", "client_id": 1, "data": {}}
    return Event.objects.create(owner=owner, date=date, **{**values, **fields})


def names(response):
    assert response.status_code == 200, response.content
    return [e["name"] for e in response.json()["events"]]


def test_it_lists_ones_events_in_the_seeds_shape(api_client, alice, charlie):
    click = add(alice, T0, client_id=1, data={"clicked_on": "sign up button"})
    paid = add(alice, T0 + timedelta(minutes=2), client_id=5, name="paypal_payment", trace_id="03758690")
    add(charlie, T0, name="charlie's")
    r = api_client.get(URL)
    assert r.status_code == 200
    assert r.json() == {
        "count": 2,
        "events": [
            {
                "id": 1,
                "name": "click",
                "trace_id": "03775690",
                "date": "2021-08-15T23:41:41.507Z",
                "data": {"clicked_on": "sign up button"},
                "url": f"http://testserver/api/events/{click.uid}.json",
            },
            {
                "id": 5,
                "name": "paypal_payment",
                "trace_id": "03758690",
                "date": "2021-08-15T23:43:41.507Z",
                "data": {},
                "url": f"http://testserver/api/events/{paid.uid}.json",
            },
        ],
    }
    assert Event.objects.count() == 3


def test_it_shows_an_outsider_none_of_alices_events(charlie_client, alice):
    add(alice)
    r = charlie_client.get(URL)
    assert r.status_code == 200
    assert r.json() == {"count": 0, "events": []}
    assert Event.objects.owned_by(alice).count() == 1


def test_it_rejects_a_missing_key(anon_client, alice):
    add(alice)
    r = anon_client.get(URL)
    assert r.status_code == 401
    assert set(r.json()) == {"error"}
    assert "events" not in r.json()
    assert Event.objects.count() == 1


def test_it_rejects_a_key_without_the_events_read_scope(alice):
    add(alice)
    r = client_with_key(make_key(alice, "events:write", "logs:read")).get(URL)
    assert r.status_code == 403
    assert "events:read" in r.json()["error"]
    assert "events" not in r.json()
    assert Event.objects.count() == 1


def test_it_lists_in_time_order_not_insertion_order(api_client, alice):
    add(alice, T0 + timedelta(hours=2), name="third")
    add(alice, T0, name="first")
    add(alice, T0 + timedelta(hours=1), name="second")
    add(alice, T0 + timedelta(hours=1), name="second-too")  # a tie keeps insertion order
    assert names(api_client.get(URL)) == ["first", "second", "second-too", "third"]


def test_it_gives_every_event_a_url_that_answers_with_it(api_client, anon_client, alice):
    add(alice, name="one", data={"n": 1})
    add(alice, T0 + timedelta(seconds=1), name="two", data=[2])
    for listed in api_client.get(URL).json()["events"]:
        assert listed["url"].startswith("http://testserver/api/events/")
        r = anon_client.get(listed["url"].removeprefix("http://testserver"))
        assert r.status_code == 200
        assert (r.json()["name"], r.json()["data"], r.json()["url"]) == (listed["name"], listed["data"], listed["url"])
        assert Event.objects.get(uid=r.json()["id"]).name == listed["name"]


def test_it_builds_urls_on_site_url_when_set(api_client, alice, settings):
    settings.SITE_URL = "https://logs.example.com"
    event = add(alice)
    assert api_client.get(URL).json()["events"][0]["url"] == f"https://logs.example.com/api/events/{event.uid}.json"
    assert Event.objects.count() == 1


# --- dates -----------------------------------------------------------------------------------------


@pytest.fixture
def around_the_15th(alice):
    for name, date in [
        ("14th-last", datetime(2021, 8, 14, 23, 59, 59, 999000, tzinfo=UTC)),
        ("15th-first", datetime(2021, 8, 15, 0, 0, 0, tzinfo=UTC)),
        ("15th-noon", datetime(2021, 8, 15, 12, 0, 0, tzinfo=UTC)),
        ("15th-last", datetime(2021, 8, 15, 23, 59, 59, tzinfo=UTC)),
        ("15th-very-last", datetime(2021, 8, 15, 23, 59, 59, 999999, tzinfo=UTC)),
        ("16th-first", datetime(2021, 8, 16, 0, 0, 0, tzinfo=UTC)),
    ]:
        add(alice, date, name=name)


def test_it_includes_the_whole_start_and_end_days(api_client, around_the_15th):
    r = api_client.get(URL, {"start": "2021-08-15", "end": "2021-08-15"})
    assert names(r) == ["15th-first", "15th-noon", "15th-last", "15th-very-last"]
    assert r.json()["count"] == 4


def test_it_filters_by_start_alone_and_end_alone(api_client, around_the_15th):
    assert names(api_client.get(URL, {"start": "2021-08-16"})) == ["16th-first"]
    assert names(api_client.get(URL, {"end": "2021-08-14"})) == ["14th-last"]
    assert names(api_client.get(URL, {"end": "20210814"})) == ["14th-last"]  # ISO 8601 basic form is a day too


def test_it_filters_by_exact_times(api_client, around_the_15th):
    r = api_client.get(URL, {"start": "2021-08-15T12:00:00Z", "end": "2021-08-15T23:59:59Z"})
    assert names(r) == ["15th-noon", "15th-last"]
    r = api_client.get(URL, {"start": "2021-08-15T14:00:00+02:00", "end": "2021-08-15 12:00:00"})
    assert names(r) == ["15th-noon"]


def test_it_accepts_the_last_day_there_is(api_client, around_the_15th):
    r = api_client.get(URL, {"start": "0001-01-01", "end": "9999-12-31"})
    assert r.json()["count"] == 6


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("start", "yesterday"),
        ("start", "2021-02-30"),
        ("end", "15/08/2021"),
        ("end", "2021-08-15T25:00:00"),
        ("start", "0001-01-01T00:00:00+01:00"),
    ],
)
def test_it_rejects_a_bad_date(api_client, around_the_15th, param, value):
    r = api_client.get(URL, {param: value})
    assert r.status_code == 400
    assert r.json()["error"] == "validation error"
    assert list(r.json()["details"]) == [param]
    assert Event.objects.count() == 6


# --- name, paging ----------------------------------------------------------------------------------


def test_it_filters_by_name(api_client, alice, charlie):
    add(alice, name="click")
    add(alice, T0 + timedelta(seconds=1), name="paypal_payment")
    add(alice, T0 + timedelta(seconds=2), name="click")
    add(charlie, name="click")
    r = api_client.get(URL, {"name": "click"})
    assert names(r) == ["click", "click"]
    assert r.json()["count"] == 2


def test_it_pages_by_limit_and_offset_with_the_total_count(api_client, alice):
    for i in range(7):
        add(alice, T0 + timedelta(seconds=i), name=f"e{i}")
    add(alice, T0, name="other")
    r = api_client.get(URL, {"limit": 3, "offset": 2, "start": "2021-08-15"})
    assert r.json()["count"] == 8
    assert names(r) == ["e1", "e2", "e3"]
    walked = []
    for offset in range(0, 10, 3):
        r = api_client.get(URL, {"limit": 3, "offset": offset})
        assert r.json()["count"] == 8
        walked += names(r)
    assert walked == ["e0", "other", "e1", "e2", "e3", "e4", "e5", "e6"]
    r = api_client.get(URL, {"limit": 0})
    assert r.json() == {"count": 8, "events": []}
    r = api_client.get(URL, {"offset": 100})
    assert r.json() == {"count": 8, "events": []}


def test_it_pages_100_by_default(api_client, alice):
    Event.objects.bulk_create(Event(owner=alice, name="e", date=T0 + timedelta(seconds=i)) for i in range(130))
    r = api_client.get(URL)
    assert r.json()["count"] == 130
    assert len(r.json()["events"]) == 100


@pytest.mark.parametrize(("param", "value"), [("limit", "abc"), ("limit", "-1"), ("limit", "1001"), ("offset", "-5")])
def test_it_rejects_a_bad_limit_or_offset(api_client, alice, param, value):
    add(alice)
    r = api_client.get(URL, {param: value})
    assert r.status_code == 400
    assert r.json()["error"] == "validation error"
    assert list(r.json()["details"]) == [param]
    assert Event.objects.count() == 1


# --- cost --------------------------------------------------------------------------------------


@time_machine.travel(T0 + timedelta(days=1), tick=False)
def test_it_runs_the_same_queries_for_5_or_200_events(api_client, alice, django_assert_max_num_queries):
    def bulk(start, n):
        Event.objects.bulk_create(
            Event(owner=alice, name="e", date=T0 + timedelta(seconds=s), data={"s": s}) for s in range(start, start + n)
        )

    bulk(0, 5)
    api_client.get(URL)  # the first request of a key also records its use
    small = count_queries(api_client, f"{URL}?limit=1000")
    bulk(5, 195)
    with django_assert_max_num_queries(small):
        r = api_client.get(f"{URL}?limit=1000")
    assert len(r.json()["events"]) == 200
    assert r.json()["count"] == 200
