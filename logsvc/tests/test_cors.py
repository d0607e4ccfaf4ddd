"""CORS: the public APIs answer any origin, never with credentials; preflights work; other pages are left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from events.models import Event

ORIGIN = "https://someone-elses-site.example"


def test_it_allows_any_origin_on_a_loggator_read(client, alice):
    event = Event.objects.create(owner=alice, name="click")
    r = client.get(f"/api/events/{event.uid}.json", HTTP_ORIGIN=ORIGIN)
    assert r.status_code == 200
    assert r["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r


def test_it_allows_any_origin_on_an_authenticated_post(api_client, alice):
    r = api_client.post("/api/v1/events", {"name": "click"}, format="json", HTTP_ORIGIN=ORIGIN)
    assert r.status_code == 201
    assert r["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r
    assert alice.events.count() == 1


def test_it_exposes_the_rate_limit_headers(api_client):
    r = api_client.get("/api/Log", HTTP_ORIGIN=ORIGIN)
    assert r.status_code == 200
    exposed = {h.strip().lower() for h in r["Access-Control-Expose-Headers"].split(",")}
    assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset", "retry-after"} <= exposed


@pytest.mark.parametrize("path", ["/api/nothing", "/api/v1/events"])
def test_it_allows_any_origin_on_errors(client, db, path):
    r = client.get(path, HTTP_ORIGIN=ORIGIN)
    assert r.status_code in (401, 404)
    assert r["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", ["/api/Log", "/api/v1/events"])
def test_it_answers_a_preflight(client, db, path):
    r = client.options(
        path,
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="apikey, idempotency-key, content-type, content-encoding, authorization",
    )
    assert r.status_code == 200
    assert r["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r
    allowed = {h.strip().lower() for h in r["Access-Control-Allow-Headers"].split(",")}
    assert {"apikey", "idempotency-key", "content-type", "content-encoding", "authorization"} <= allowed
    assert "POST" in r["Access-Control-Allow-Methods"]


def test_it_answers_a_preflight_without_a_key(client, db):
    # A browser never sends credentials on a preflight: it must not be a 401.
    r = client.options(
        "/api/v1/events",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/admin/login/", "/api.json", "/nothing"])
def test_it_sends_no_cors_headers_outside_the_api(client, db, path):
    r = client.get(path, HTTP_ORIGIN=ORIGIN)
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]


def test_it_answers_no_preflight_outside_the_api(client, db):
    r = client.options("/admin/login/", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in r


def test_it_allows_any_origin_on_a_413_so_the_page_can_read_why(api_client, settings):
    settings.BODY_MAX_BYTES = 10
    r = api_client.post("/api/v1/events", {"name": "x" * 100}, format="json", HTTP_ORIGIN=ORIGIN)
    assert r.status_code == 413
    assert r["Access-Control-Allow-Origin"] == "*"
    assert not Event.objects.exists()


def test_it_allows_any_origin_on_a_429(api_client, settings):
    settings.RATE_LIMITS = {"logster": "1/60", "bytelog": "1/60", "loggator": ""}
    with time_machine.travel(datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC), tick=False):
        api_client.get("/api/v1/events", HTTP_ORIGIN=ORIGIN)
        r = api_client.get("/api/v1/events", HTTP_ORIGIN=ORIGIN)
    assert r.status_code == 429
    assert r["Access-Control-Allow-Origin"] == "*"
    assert "retry-after" in r["Access-Control-Expose-Headers"].lower()
