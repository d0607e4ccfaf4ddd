"""GET /api/events/<uid>.json: Loggator's public read of one event; the 16-character id is the capability."""

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.db.models import JSONField, Value
from rest_framework.test import APIClient

from conftest import client_with_key
from events.models import Event
from logsvc.models import RateLimitCounter

NOT_FOUND = {"message": "Not Found"}
CREATED = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


@pytest.fixture
def shared(alice):
    with time_machine.travel(CREATED, tick=False):
        return Event.objects.create(
            owner=alice,
            client_id=1,
            name="click",
            trace_id="03775690",
            date=datetime(2021, 8, 15, 23, 41, 41, 507000, tzinfo=UTC),
            data={"clicked_on": "sign up button"},
        )


def url(event):
    return f"/api/events/{event.uid}.json"


def test_it_reads_an_event_without_any_key(anon_client, shared):
    r = anon_client.get(url(shared))
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/json")
    assert r.json() == {
        "id": shared.uid,
        "url": f"http://testserver/api/events/{shared.uid}.json",
        "name": "click",
        "trace_id": "03775690",
        "date": "2021-08-15T23:41:41.507Z",
        "data": {"clicked_on": "sign up button"},
        "created_at": "2026-02-03T04:05:06.789Z",
    }
    assert len(shared.uid) == 16
    assert Event.objects.get(uid=shared.uid).owner.username == "alice"


def test_it_gives_timestamps_in_iso_8601(anon_client, shared):
    body = anon_client.get(url(shared)).json()
    for field in ("date", "created_at"):
        assert datetime.fromisoformat(body[field]).tzinfo is not None


def test_it_reads_any_json_data(anon_client, alice):
    for data in ([1, "two"], "text", 7, None):
        stored = Value(None, output_field=JSONField()) if data is None else data  # JSON null, as the API stores it
        event = Event.objects.create(owner=alice, name="e", data=stored)
        assert anon_client.get(url(event)).json()["data"] == data
        assert Event.objects.get(pk=event.pk).data == data


def test_it_lets_anyone_holding_the_id_read_it(charlie_client, shared):
    # the id is the capability: an outsider with the id reads it too, as the owner does
    r = charlie_client.get(url(shared))
    assert r.status_code == 200
    assert r.json()["id"] == shared.uid
    assert Event.objects.count() == 1


def test_it_ignores_a_bad_key(shared):
    r = client_with_key("lsk_not-a-real-key-at-all-000000").get(url(shared))
    assert r.status_code == 200
    assert r.json()["id"] == shared.uid
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/events/AAAAAAAAAAAAAAAA.json",
        "/api/events/short.json",
        "/api/events/AAAAAAAAAAAAAAAAA.json",
        "/api/events/",
        "/api/events",
        "/api/nothing-here",
    ],
)
def test_it_answers_an_unknown_id_with_githubs_404(anon_client, shared, path):
    r = anon_client.get(path)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert Event.objects.count() == 1


def test_it_forgets_a_deleted_event(anon_client, shared):
    path = url(shared)
    shared.delete()
    r = anon_client.get(path)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND


def test_it_redirects_the_address_without_json_permanently(anon_client, shared):
    r = anon_client.get(f"/api/events/{shared.uid}")
    assert r.status_code == 301
    assert r["Location"] == f"/api/events/{shared.uid}.json"
    r = anon_client.get(f"/api/events/{shared.uid}?callback=show")
    assert r.status_code == 301
    assert r["Location"] == f"/api/events/{shared.uid}.json?callback=show"
    followed = anon_client.get(f"/api/events/{shared.uid}", follow=True)
    assert followed.status_code == 200
    assert followed.json()["id"] == shared.uid


def test_it_wraps_json_p(anon_client, shared):
    r = anon_client.get(url(shared), {"callback": "handleEvent"})
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/javascript")
    body = r.content.decode()
    assert body.startswith("/**/handleEvent(") and body.endswith(");")
    assert json.loads(body.removeprefix("/**/handleEvent(").removesuffix(");"))["id"] == shared.uid


def test_it_wraps_a_json_p_404(anon_client, shared):
    r = anon_client.get("/api/events/AAAAAAAAAAAAAAAA.json", {"callback": "cb"})
    assert r.status_code == 404
    assert r.content == b'/**/cb({"message":"Not Found"});'
    assert Event.objects.count() == 1


def test_it_rejects_a_json_p_callback_that_is_not_a_name(anon_client, shared):
    r = anon_client.get(url(shared), {"callback": "alert(1)//"})
    assert r.status_code == 400
    assert set(r.json()) == {"message"}
    assert Event.objects.count() == 1


def test_it_answers_any_origin(anon_client, shared):
    r = anon_client.get(url(shared), HTTP_ORIGIN="http://example.com")
    assert r.status_code == 200
    assert r["Access-Control-Allow-Origin"] in ("*", "http://example.com")
    assert "Access-Control-Allow-Credentials" not in r
    preflight = anon_client.options(
        url(shared), HTTP_ORIGIN="http://example.com", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    assert preflight.status_code == 200
    assert "GET" in preflight["Access-Control-Allow-Methods"]
    assert Event.objects.count() == 1


def test_it_is_never_rate_limited(shared, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "loggator": "1/60"}
    client = APIClient()
    for _ in range(5):
        r = client.get(url(shared))
        assert r.status_code == 200
        assert "X-Rate-Limit-Limit" not in r
    assert not RateLimitCounter.objects.exists()


def test_it_is_read_only(api_client, shared):
    for method in (api_client.post, api_client.put, api_client.delete):
        r = method(url(shared), {"name": "changed"}, format="json")
        assert r.status_code == 405
        assert set(r.json()) == {"message"}
    assert Event.objects.get().name == "click"
