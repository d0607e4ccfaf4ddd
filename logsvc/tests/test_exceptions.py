"""Error envelopes: every error under /api/ is JSON in its family's shape, a 500 included."""

from __future__ import annotations

import pytest
from django.test import Client

from events.models import Event

TEST_URLS = "logsvc.tests.urls"


@pytest.fixture
def crashing_client() -> Client:
    """A client that gets the 500 page instead of the view's exception."""
    return Client(raise_request_exception=False)


# --- 404 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/nothing", {"message": "Not Found"}),
        ("/api/events/nothing/here", {"message": "Not Found"}),
        ("/api/v1/nothing", {"error": "Not Found"}),
        ("/api/Log/not-a-number", {"Message": "No HTTP resource was found that matches the request URI."}),
        ("/api/1/nothing", {"detail": "Not Found"}),
        ("/api/v0/nothing", {"error": "Not Found"}),
    ],
)
def test_it_answers_unknown_api_paths_with_json_404(client, db, path, body):
    r = client.get(path)
    assert r.status_code == 404
    assert r["Content-Type"] == "application/json"
    assert r.json() == body


def test_it_answers_json_404_with_debug_on(client, db, settings):
    settings.DEBUG = True
    r = client.get("/api/nothing")
    assert r.status_code == 404
    assert r.json() == {"message": "Not Found"}


def test_it_answers_an_unknown_event_id_with_loggator_404(client, db):
    r = client.get("/api/events/AAAAAAAAAAAAAAAA.json")
    assert r.status_code == 404
    assert r.json() == {"message": "Not Found"}


def test_it_answers_a_head_to_an_unknown_path_with_404(client, db):
    r = client.head("/api/nothing")
    assert r.status_code == 404
    assert r["Content-Type"] == "application/json"


# --- 405 ------------------------------------------------------------------------------------------


def test_it_answers_a_wrong_method_on_a_drf_view_with_json_405(client, alice):
    event = Event.objects.create(owner=alice, name="click")
    r = client.post(f"/api/events/{event.uid}.json", {}, content_type="application/json")
    assert r.status_code == 405
    assert r.json() == {"message": 'Method "POST" not allowed.'}
    assert r["Allow"] == "GET, HEAD, OPTIONS"
    assert Event.objects.count() == 1


def test_it_answers_a_wrong_method_on_logster_with_its_envelope(api_client):
    r = api_client.put("/api/Log", {"Message": "x", "Severity": 1}, format="json")
    assert r.status_code == 405
    assert r.json() == {"Message": 'Method "PUT" not allowed.'}


@pytest.mark.urls(TEST_URLS)
def test_it_turns_djangos_html_405_into_json_and_keeps_allow(client, db):
    r = client.post("/api/1/only-get")
    assert r.status_code == 405
    assert r["Content-Type"] == "application/json"
    assert r.json() == {"detail": "Method Not Allowed"}
    assert r["Allow"] == "GET"


# --- 500 ------------------------------------------------------------------------------------------


@pytest.mark.urls(TEST_URLS)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/boom", {"message": "Server Error"}),
        ("/api/drf-boom", {"message": "Server Error"}),
        ("/api/v1/boom", {"error": "Internal Server Error"}),
        ("/api/Log/boom", {"Message": "An error has occurred."}),
    ],
)
def test_it_answers_a_bug_with_json_500(crashing_client, db, path, body):
    r = crashing_client.get(path)
    assert r.status_code == 500
    assert r["Content-Type"] == "application/json"
    assert r.json() == body
    assert b"RuntimeError" not in r.content


@pytest.mark.urls(TEST_URLS)
@pytest.mark.parametrize("path", ["/api/boom", "/api/drf-boom", "/api/Log/boom"])
def test_it_answers_json_500_even_with_debug_on(crashing_client, db, settings, path):
    settings.DEBUG = True
    r = crashing_client.get(path, HTTP_ACCEPT="text/html,application/json;q=0.9,*/*;q=0.8")
    assert r.status_code == 500
    assert r["Content-Type"] == "application/json"
    assert not r.content.lstrip().startswith(b"<")
    assert b"Traceback" not in r.content


@pytest.mark.urls(TEST_URLS)
def test_it_keeps_cors_headers_on_a_500(crashing_client, db):
    r = crashing_client.get("/api/boom", HTTP_ORIGIN="https://app.example")
    assert r.status_code == 500
    assert r["Access-Control-Allow-Origin"] == "*"


@pytest.mark.urls(TEST_URLS)
def test_it_answers_a_database_out_of_reach_with_503_and_retry_after(crashing_client, db):
    """pgbouncer or PostgreSQL refusing a connection for a moment (a restart): try again, in the family's envelope."""
    r = crashing_client.get("/api/v1/db-down")
    assert r.status_code == 503
    assert r["Retry-After"] == "1"
    assert r.json() == {"error": "The service is unavailable for a moment; try again."}
    assert b"10.0.0.1" not in r.content


# --- pages outside the API ------------------------------------------------------------------------


def test_it_keeps_djangos_html_404_outside_the_api(client, db):
    r = client.get("/nothing/here")  # (one segment, /nothing, is a littlelogs user's page: social/web.py)
    assert r.status_code == 404
    assert r["Content-Type"].startswith("text/html")
    assert b"<h1>Not Found</h1>" in r.content


def test_it_does_not_treat_lookalike_paths_as_api(client, db):
    r = client.get("/apinothing")
    assert r.status_code == 404
    assert r["Content-Type"].startswith("text/html")


@pytest.mark.urls(TEST_URLS)
def test_it_keeps_djangos_html_500_outside_the_api(crashing_client, db):
    r = crashing_client.get("/boom")
    assert r.status_code == 500
    assert r["Content-Type"].startswith("text/html")
    assert b"Server Error" in r.content
