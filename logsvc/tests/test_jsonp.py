"""JSON-P: `?callback=name` wraps an API GET as `/**/name(...);`, with a checked name and no credentials."""

from __future__ import annotations

import json

import pytest

from events.models import Event

TEST_URLS = "logsvc.tests.urls"


@pytest.fixture
def event(alice) -> Event:
    return Event.objects.create(owner=alice, name="click", trace_id="t1", data={"on": "signup"})


def unwrap(content: bytes, callback: str) -> object:
    text = content.decode()
    prefix, suffix = f"/**/{callback}(", ");"
    assert text.startswith(prefix) and text.endswith(suffix)
    return json.loads(text[len(prefix) : -len(suffix)])


def test_it_wraps_a_loggator_read(client, event):
    plain = client.get(f"/api/events/{event.uid}.json")
    r = client.get(f"/api/events/{event.uid}.json?callback=cb")
    assert r.status_code == 200
    assert r["Content-Type"] == "application/javascript; charset=utf-8"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Content-Length"] == str(len(r.content))
    assert unwrap(r.content, "cb") == plain.json()
    assert unwrap(r.content, "cb")["data"] == {"on": "signup"}


def test_it_accepts_a_dotted_callback(client, event):
    r = client.get(f"/api/events/{event.uid}.json?callback=jQuery.handlers.on_event_1")
    assert r.status_code == 200
    assert unwrap(r.content, "jQuery.handlers.on_event_1")["id"] == event.uid


def test_it_wraps_errors_too(client, db):
    r = client.get("/api/events/AAAAAAAAAAAAAAAA.json?callback=cb")
    assert r.status_code == 404
    assert unwrap(r.content, "cb") == {"message": "Not Found"}


def test_it_escapes_line_separators_that_break_javascript(client, alice):
    event = Event.objects.create(owner=alice, name="click", data={"text": "a\u2028b\u2029c"})
    r = client.get(f"/api/events/{event.uid}.json?callback=cb")
    assert "\u2028".encode() not in r.content and "\u2029".encode() not in r.content
    assert unwrap(r.content, "cb")["data"] == {"text": "a\u2028b\u2029c"}


@pytest.mark.parametrize(
    "callback",
    ["alert(1)//", "<script>", "cb;alert(1)", "1cb", "a..b", "", "x" * 65, "a.b.c.d.e", "cb\n"],
)
def test_it_refuses_a_bad_callback_name(client, event, callback):
    r = client.get(f"/api/events/{event.uid}.json", {"callback": callback})
    assert r.status_code == 400
    assert r["Content-Type"] == "application/json"
    assert r.json() == {"message": "The callback parameter must be a JavaScript function name, such as handleEvent."}
    if callback:
        assert callback.encode() not in r.content
    assert event.uid.encode() not in r.content


def test_it_refuses_a_bad_callback_in_the_bytelog_envelope(api_client):
    r = api_client.get("/api/v1/events", {"callback": "<script>"})
    assert r.status_code == 400
    assert r.json() == {
        "error": "validation error",
        "details": {"callback": ["The callback parameter must be a JavaScript function name, such as handleEvent."]},
    }
    assert b"<script>" not in r.content


def test_it_ignores_a_bearer_key_on_a_jsonp_request(api_client, alice):
    Event.objects.create(owner=alice, name="private")
    assert api_client.get("/api/v1/events").status_code == 200
    r = api_client.get("/api/v1/events?callback=cb")
    assert r.status_code == 401
    assert r["Content-Type"] == "application/javascript; charset=utf-8"
    assert r["Content-Length"] == str(len(r.content))
    assert unwrap(r.content, "cb") == {"error": "Authentication credentials were not provided."}
    assert b"private" not in r.content


def test_it_ignores_an_apikey_header_on_a_jsonp_request(client, alice, alice_key):
    r = client.get("/api/Log?callback=cb", HTTP_APIKEY=alice_key)
    assert r.status_code == 401
    assert unwrap(r.content, "cb") == {"Message": "Authorization has been denied for this request."}


@pytest.mark.urls(TEST_URLS)
def test_it_ignores_the_session_cookie_on_a_jsonp_request(client, alice):
    client.force_login(alice)
    assert client.get("/api/1/whoami").json() == {"authenticated": True}
    r = client.get("/api/1/whoami?callback=cb")
    assert r.status_code == 200
    assert unwrap(r.content, "cb") == {"authenticated": False}


def test_it_does_not_wrap_a_post(api_client, alice):
    r = api_client.post("/api/v1/events?callback=cb", {"name": "click"}, format="json")
    assert r.status_code == 201
    assert r.content == b""
    assert alice.events.get().name == "click"


def test_it_does_not_wrap_pages_outside_the_api(client, db):
    r = client.get("/healthz?callback=cb")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
