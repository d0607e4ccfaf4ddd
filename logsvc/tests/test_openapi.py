"""OpenAPI 3 at /api.json, its offline reference at /api.html, and /healthz."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.contrib.staticfiles import finders
from django.db import DatabaseError

ENDPOINTS: dict[str, dict[str, set[str]]] = {
    # path -> method -> the 4xx answers it must document
    "/api/Log": {"get": {"400", "401", "403", "429"}, "post": {"400", "401", "403", "411", "413", "415", "429"}},
    "/api/Log/{message_id}": {"get": {"401", "403", "404", "429"}},
    "/api/v1/events": {"get": {"400", "401", "403", "429"}, "post": {"400", "401", "403", "429"}},
    "/api/v1/events/trace/{trace_id}": {"get": {"400", "401", "403", "429"}},
    "/api/events/{uid}.json": {"get": {"400", "404"}},
    # littlelogs (social/views.py)
    "/api/1/": {"get": set()},  # the API root: its endpoints, as links
    "/api/1/timelines/home/": {"get": {"401", "403"}},
    "/api/1/timelines/activity/": {"get": {"401", "403"}},
    "/api/1/timelines/public/": {"get": set()},
    "/api/1/users/$self/": {"get": {"401", "403"}, "patch": {"400", "401", "403"}, "delete": {"400", "401", "403"}},
    "/api/1/users/{username}/": {"get": {"404"}},
    "/api/1/users/followed-by/{username}/": {"get": {"404"}},
    "/api/1/users/following/{username}/": {"get": {"404"}},
    "/api/1/users/{username}/follow/": {"post": {"400", "401", "403", "404"}},
    "/api/1/users/{username}/unfollow/": {"delete": {"401", "403", "404"}},
    "/api/1/logs/": {"get": set()},
    "/api/1/logs/create/": {"post": {"400", "401", "403"}},
    "/api/1/logs/preview/": {"post": {"400", "401", "403"}},
    "/api/1/logs/tag/{tag}/": {"get": {"404"}},
    "/api/1/logs/user/{username}/": {"get": {"404"}},
    "/api/1/logs/{log_id}/": {"get": {"404"}},
    "/api/1/logs/{log_id}/delete/": {"delete": {"401", "403", "404"}},
    "/api/1/logs/{log_id}/comment/": {"post": {"400", "401", "403", "404"}},
    "/api/1/logs/{log_id}/comments/": {"get": {"404"}},  # beyond the seed: a log carries its latest few inline
    "/api/1/logs/{log_id}/likes/": {"get": {"404"}},
    "/api/1/logs/{log_id}/like/": {"post": {"401", "403", "404"}},
    "/api/1/logs/{log_id}/unlike/": {"delete": {"401", "403", "404"}},
    "/api/1/comment/{comment_id}/delete/": {"delete": {"401", "403", "404"}},
    "/api/1/tags/": {"get": set()},
    "/api/1/tags/user/{username}/": {"get": {"404"}},
    "/api/1/tags/trending/": {"get": set()},
    # GoatCounter (analytics/views.py)
    "/api/v0/me": {"get": {"401", "429"}},
    "/api/v0/sites": {"get": {"401", "403", "429"}, "put": {"400", "401", "403", "429"}},
    "/api/v0/sites/{site_id}/hits": {"delete": {"400", "401", "403", "404", "429"}},
    "/api/v0/sites/{site_id}": {
        "get": {"401", "403", "404", "429"},
        "delete": {"400", "401", "403", "404", "429"},
        "patch": {"400", "401", "403", "404", "429"},
        "post": {"400", "401", "403", "404", "429"},  # GoatCounter updates with POST too
    },
    "/api/v0/count": {"post": {"400", "401", "403", "413", "429"}},
    "/api/v0/export": {"post": {"400", "401", "403", "429"}},
    "/api/v0/export/{export_id}": {"get": {"401", "403", "404", "429"}},
    "/api/v0/export/{export_id}/download": {"get": {"401", "403", "404", "409", "410", "429"}},
    # GoatCounter's stats (analytics/stats_views.py)
    "/api/v0/paths": {"get": {"400", "401", "403", "429"}},
    "/api/v0/stats/total": {"get": {"400", "401", "403", "429"}},
    "/api/v0/stats/hits": {"get": {"400", "401", "403", "429"}},
    "/api/v0/stats/hits/{path_id}": {"get": {"400", "401", "403", "404", "429"}},
    "/api/v0/stats/{page}": {"get": {"400", "401", "403", "404", "429"}},
    "/api/v0/stats/{page}/{id}": {"get": {"400", "401", "403", "404", "429"}},
}


@pytest.fixture
def schema(client, db) -> dict:
    r = client.get("/api.json")
    assert r.status_code == 200
    return r.json()


def test_it_serves_openapi_3_as_json(client, db):
    r = client.get("/api.json")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert r.json()["openapi"].startswith("3.")
    assert r.json()["info"]["title"] == "logsvc API"


def test_it_serves_the_schema_as_application_json_when_asked(client, db):
    r = client.get("/api.json", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/json")
    assert r.json()["openapi"].startswith("3.")


def test_it_lists_every_endpoint_at_its_seed_path(schema):
    assert set(schema["paths"]) == set(ENDPOINTS)
    for path, methods in ENDPOINTS.items():
        assert set(schema["paths"][path]) == set(methods), path


@pytest.mark.parametrize(("path", "method"), [(p, m) for p, methods in ENDPOINTS.items() for m in methods])
def test_it_describes_each_endpoints_errors(schema, path, method):
    responses = schema["paths"][path][method]["responses"]
    documented = {status for status in responses if status.startswith("4")}
    assert ENDPOINTS[path][method] <= documented
    for status in documented:
        assert responses[status]["description"]
        assert responses[status]["content"]["application/json"]["schema"]


def test_it_describes_the_body_errors_of_a_bytelog_post(schema):
    responses = schema["paths"]["/api/v1/events"]["post"]["responses"]
    assert {"411", "413", "415"} <= set(responses)


def test_it_describes_the_error_envelope_of_each_family(schema):
    def envelope(path: str, method: str, status: str) -> str:
        return schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]

    assert envelope("/api/Log", "post", "400").endswith("/LogsterError")
    assert envelope("/api/v1/events", "post", "400").endswith("/BytelogError")
    assert envelope("/api/events/{uid}.json", "get", "404").endswith("/LoggatorError")
    assert envelope("/api/v0/count", "post", "400").endswith("/GoatCounterError")
    components = schema["components"]["schemas"]
    assert set(components["LogsterError"]["properties"]) == {"Message", "ModelState"}
    assert set(components["LoggatorError"]["properties"]) == {"message"}


def test_it_describes_the_three_ways_to_send_a_key(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "ApiKey",
        "description": "Logster style",
    }
    assert schemes["BearerKey"]["scheme"] == "bearer"
    assert schemes["BasicKey"]["scheme"] == "basic"
    assert schema["paths"]["/api/v1/events"]["post"]["security"] == [
        {"ApiKeyHeader": []},
        {"BearerKey": []},
        {"BasicKey": []},
    ]
    assert not schema["paths"]["/api/events/{uid}.json"]["get"].get("security")
    assert "security" not in schema


def test_it_needs_no_key_for_the_schema(client, db):
    assert client.get("/api.json", HTTP_AUTHORIZATION="Bearer lsk_not-a-real-key-at-all").status_code == 200


# --- /api.html ------------------------------------------------------------------------------------


def test_it_renders_the_reference_offline(client, db):
    r = client.get("/api.html")
    assert r.status_code == 200
    assert r["Content-Type"] == "text/html; charset=utf-8"
    html = r.content.decode()
    assert '<redoc spec-url="/api.json">' in html
    sources = re.findall(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["']([^"']+)""", html)
    assert "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in sources
    assert [s for s in sources if "//" in s] == []
    assert "https://" not in html and "http://" not in html


def test_it_ships_the_reference_script_with_the_service():
    # collectstatic copies it to STATIC_ROOT, where WhiteNoise serves it; no CDN involved
    assert finders.find("drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js")


def test_it_needs_no_key_for_the_reference(client, db):
    assert client.get("/api.html", HTTP_APIKEY="lsk_revoked-long-ago-0000000000").status_code == 200


# --- /healthz -------------------------------------------------------------------------------------


def test_it_reports_health(client, db):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json() == {"status": "ok", "database": "ok", "partitions": "ok", "rollups": "ok", "geoip": "ok"}
    assert "no-cache" in r["Cache-Control"]


def test_it_reports_a_database_outage_with_503(client, db):
    with mock.patch("logsvc.views.connection.cursor", side_effect=DatabaseError("connection refused")):
        r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "error", "database": "connection refused"}


def test_it_needs_no_key_for_health(client, db):
    assert client.get("/healthz", HTTP_AUTHORIZATION="Bearer nonsense").status_code == 200
