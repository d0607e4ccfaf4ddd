"""Method override (`_method=DELETE` only) and redirects (missing slash: 301 / 308; Loggator's `.json`)."""

from __future__ import annotations

import json

import pytest

from events.models import Event

TEST_URLS = "logsvc.tests.urls"
pytestmark = pytest.mark.urls(TEST_URLS)


# --- method override ------------------------------------------------------------------------------


def test_it_turns_a_post_with_method_delete_in_the_query_into_a_delete(client, db):
    r = client.post("/api/1/echo?_method=DELETE")
    assert r.status_code == 200
    assert r.json()["method"] == "DELETE"


def test_it_reads_method_delete_from_a_form_field(client, db):
    r = client.post("/api/1/echo", {"_method": "DELETE"})
    assert r.json()["method"] == "DELETE"


def test_it_reads_method_delete_from_an_urlencoded_form_field(client, db):
    r = client.post("/api/1/echo", "_method=delete", content_type="application/x-www-form-urlencoded")
    assert r.json() == {"method": "DELETE", "body": "_method=delete"}


def test_it_reads_method_delete_from_the_override_header(client, db):
    r = client.post("/api/1/echo", HTTP_X_HTTP_METHOD_OVERRIDE="DELETE")
    assert r.json()["method"] == "DELETE"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "GET", "TRACE", "CONNECT", "nonsense"])
def test_it_honours_no_other_override(client, db, method):
    assert client.post(f"/api/1/echo?_method={method}").json()["method"] == "POST"
    assert client.post("/api/1/echo", HTTP_X_HTTP_METHOD_OVERRIDE=method).json()["method"] == "POST"
    assert client.post("/api/1/echo", {"_method": method}).json()["method"] == "POST"


def test_it_does_not_override_a_get(client, db):
    assert client.get("/api/1/echo?_method=DELETE").json()["method"] == "GET"


def test_it_reads_the_override_from_a_littlelogs_json_body(client, db):
    body = json.dumps({"_method": "DELETE"})
    r = client.post("/api/1/echo", body, content_type="application/json")
    assert r.json() == {"method": "DELETE", "body": body}


def test_it_leaves_the_json_bodies_of_the_ingestion_apis_alone(client, db):
    # an event may well carry a "_method" key of its own
    body = json.dumps({"_method": "DELETE"})
    r = client.post("/api/v1/echo", body, content_type="application/json")
    assert r.json() == {"method": "POST", "body": body}


def test_it_does_not_override_outside_the_api(client, db):
    assert client.post("/echo?_method=DELETE").json()["method"] == "POST"


# --- missing trailing slash -----------------------------------------------------------------------


def test_it_redirects_a_get_without_the_slash_with_301(client, db):
    r = client.get("/api/1/things?page=2")
    assert r.status_code == 301
    assert r["Location"] == "/api/1/things/?page=2"


def test_it_redirects_a_head_without_the_slash_with_301(client, db):
    r = client.head("/api/1/things")
    assert r.status_code == 301
    assert r["Location"] == "/api/1/things/"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_it_redirects_other_methods_without_the_slash_with_308(client, db, method):
    r = getattr(client, method)("/api/1/things?x=1", '{"a": 1}', content_type="application/json")
    assert r.status_code == 308
    assert r["Location"] == "/api/1/things/?x=1"


def test_it_keeps_the_post_body_through_the_308(client, db):
    r = client.post("/api/1/things", '{"a": 1}', content_type="application/json", follow=True)
    assert r.redirect_chain == [("/api/1/things/", 308)]
    assert r.status_code == 200
    assert r.json() == {"method": "POST", "body": '{"a": 1}'}


def test_it_does_not_redirect_a_path_that_exists(client, db):
    assert client.get("/api/1/echo").status_code == 200
    r = client.get("/api/1/echo/")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_it_does_not_redirect_to_a_path_that_does_not_exist(client, db):
    r = client.post("/api/1/nothing", "{}", content_type="application/json")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


# --- Loggator ------------------------------------------------------------------------------------


def test_it_redirects_an_event_without_json_to_json(client, alice):
    event = Event.objects.create(owner=alice, name="click")
    r = client.get(f"/api/events/{event.uid}")
    assert r.status_code == 301
    assert r["Location"] == f"/api/events/{event.uid}.json"
    assert client.get(r["Location"]).json()["id"] == event.uid


def test_it_keeps_the_query_string_on_the_json_redirect(client, alice):
    event = Event.objects.create(owner=alice, name="click")
    r = client.get(f"/api/events/{event.uid}?pretty=1&x=a%20b")
    assert r.status_code == 301
    assert r["Location"] == f"/api/events/{event.uid}.json?pretty=1&x=a%20b"
