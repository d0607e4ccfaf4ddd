"""GET /api/v1/events/trace/<trace_id>: the events of one of one's traces, in time order."""

from datetime import UTC, datetime, timedelta

import pytest

from conftest import client_with_key, make_key
from events.models import Event

T0 = datetime(2021, 8, 15, 23, 45, 41, 507000, tzinfo=UTC)


def add(owner, seconds=0, trace_id="03775690", **fields):
    values = {"name": "click", "client_id": 1, "data": {}}
    return Event.objects.create(
        owner=owner, trace_id=trace_id, date=T0 + timedelta(seconds=seconds), **{**values, **fields}
    )


def test_it_follows_a_trace_in_time_order(api_client, alice, charlie):
    last = add(alice, 9, name="last")
    first = add(alice, 0, name="first")
    add(alice, 5, trace_id="other", name="elsewhere")
    add(charlie, 3, name="charlie's")
    r = api_client.get("/api/v1/events/trace/03775690")
    assert r.status_code == 200
    assert r.json() == {
        "count": 2,
        "events": [
            {
                "id": 1,
                "name": "first",
                "trace_id": "03775690",
                "date": "2021-08-15T23:45:41.507Z",
                "data": {},
                "url": f"http://testserver/api/events/{first.uid}.json",
            },
            {
                "id": 1,
                "name": "last",
                "trace_id": "03775690",
                "date": "2021-08-15T23:45:50.507Z",
                "data": {},
                "url": f"http://testserver/api/events/{last.uid}.json",
            },
        ],
    }
    assert Event.objects.filter(trace_id="03775690").count() == 3


def test_it_hides_other_users_trace_events(charlie_client, alice, charlie):
    add(alice, 0)
    add(alice, 1)
    r = charlie_client.get("/api/v1/events/trace/03775690")
    assert r.status_code == 200
    assert r.json() == {"count": 0, "events": []}
    assert Event.objects.owned_by(alice).count() == 2


def test_it_answers_an_unknown_trace_with_no_events(api_client, alice):
    add(alice)
    r = api_client.get("/api/v1/events/trace/nope")
    assert r.status_code == 200
    assert r.json() == {"count": 0, "events": []}
    assert Event.objects.count() == 1


def test_it_follows_a_trace_posted_as_a_batch(api_client, alice):
    body = [
        {"id": 1, "name": "click", "trace_id": "t-42", "date": "2021-08-15T23:45:45.507Z", "data": {"n": 2}},
        {"id": 1, "name": "click", "trace_id": "t-42", "date": "2021-08-15T23:45:41.507Z", "data": {"n": 1}},
        {"id": 2, "name": "view", "trace_id": "t-43"},
    ]
    assert api_client.post("/api/v1/events", body, format="json").status_code == 201
    r = api_client.get("/api/v1/events/trace/t-42")
    assert [e["data"] for e in r.json()["events"]] == [{"n": 1}, {"n": 2}]
    assert Event.objects.owned_by(alice).filter(trace_id="t-42").count() == 2


def test_it_pages_a_long_trace(api_client, alice):
    for i in range(5):
        add(alice, i, name=f"e{i}")
    r = api_client.get("/api/v1/events/trace/03775690", {"limit": 2, "offset": 1})
    assert r.json()["count"] == 5
    assert [e["name"] for e in r.json()["events"]] == ["e1", "e2"]


@pytest.mark.parametrize("limit", ["x", "1001", "-1"])
def test_it_rejects_a_bad_limit(api_client, alice, limit):
    add(alice)
    r = api_client.get("/api/v1/events/trace/03775690", {"limit": limit})
    assert r.status_code == 400
    assert r.json()["error"] == "validation error"
    assert list(r.json()["details"]) == ["limit"]
    assert Event.objects.count() == 1


def test_it_rejects_a_missing_key(anon_client, alice):
    add(alice)
    r = anon_client.get("/api/v1/events/trace/03775690")
    assert r.status_code == 401
    assert set(r.json()) == {"error"}
    assert Event.objects.count() == 1


def test_it_rejects_a_key_without_the_events_read_scope(alice):
    add(alice)
    r = client_with_key(make_key(alice, "events:write")).get("/api/v1/events/trace/03775690")
    assert r.status_code == 403
    assert "events:read" in r.json()["error"]
    assert "events" not in r.json()
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("trace_id", "path"),
    [
        ("checkout/42", "checkout/42"),
        ("checkout/42", "checkout%2F42"),
        ("a b?c#d", "a%20b%3Fc%23d"),
        ("ünï", "%C3%BCn%C3%AF"),
    ],
)
def test_it_follows_any_trace_id_that_can_be_posted(api_client, alice, trace_id, path):
    assert api_client.post("/api/v1/events", {"name": "step", "trace_id": trace_id}, format="json").status_code == 201
    r = api_client.get(f"/api/v1/events/trace/{path}")
    assert r.status_code == 200
    assert r.json()["count"] == 1
    assert r.json()["events"][0]["trace_id"] == trace_id == Event.objects.get().trace_id
