"""Every operation logsvc shares with GoatCounter, answered (success and error) as GoatCounter's own API document
says: each answer's body is validated against goatcounter-api.json (its tpl/api.json, Swagger 2.0, a copy of
shared/peers/goatcounter-api.json) with jsonschema. What logsvc adds (pageviews, `tz`, `expires_at`, ...) are
extra fields, which the document allows. Requests that GoatCounter takes are taken here too."""

from __future__ import annotations

import copy
import gzip
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django_tasks_db.management.commands import db_worker
from jsonschema import Draft4Validator, FormatChecker
from rest_framework.test import APIClient

from analytics import sites
from analytics.models import Domain, Export, Hit, Site
from analytics.models import Path as HitPath
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits
from conftest import client_with_key, make_key
from logsvc.models import ApiKey

DOCUMENT = json.loads((Path(__file__).parent / "goatcounter-api.json").read_text())
HOST = "stats.alice.example"
NOW = datetime(2030, 3, 6, 12, 0, tzinfo=UTC)

# Where GoatCounter's server answers otherwise than its document (shared/peers/README.md), its clients follow the
# server, and so does logsvc: the document's definitions, corrected to what the server sends, and nothing more.
SERVER_DIFFERENCES = {
    # `sites` is a list of site ids ([]int in Go, [-1] for all); the generator wrote "integer" for it.
    ("goatcounter.APIToken", "sites"): {"type": "array", "items": {"type": "integer"}},
    # finished_at is a *time.Time without omitempty: null while the export runs, and clients poll for that null.
    ("v2.Export", "finished_at"): {"type": ["string", "null"], "format": "date-time"},
}
# UserAccess is a Go string type ("a": admin), a map's values in User.access; the generator made it an object.
USER_ACCESS = {"title": "UserAccess", "type": "string"}


def definitions() -> dict[str, Any]:
    fixed = copy.deepcopy(DOCUMENT["definitions"])
    for (name, field), schema in SERVER_DIFFERENCES.items():
        fixed[name]["properties"][field] = schema
    fixed["goatcounter.UserAccess"] = USER_ACCESS
    return fixed


FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # RFC 3339 with a zone, as GoatCounter writes times
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


def assert_as_documented(r, path: str, method: str) -> None:
    """r's body is what the document says `method path` answers with r's status. A status the document doesn't
    list (404, 405, 409, 410, 429) is an error, answered with its generic apiError."""
    responses = DOCUMENT["paths"][path][method.lower()]["responses"]
    assert str(r.status_code) in responses or r.status_code >= 400, (method, path, r.status_code)
    response = responses.get(str(r.status_code), {"schema": {"$ref": "#/definitions/handlers.apiError"}})
    if r.status_code >= 400:
        # apiError's "either error or errors, never both", and the server's lower-case `error` for 401/403
        body = r.json()
        assert len({"error", "errors"} & set(body)) == 1, body
        assert isinstance(body.get("error", ""), str) and isinstance(body.get("errors", {}), dict)
    if "schema" not in response:
        return
    validator = Draft4Validator({**response["schema"], "definitions": definitions()}, format_checker=FORMATS)
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in validator.iter_errors(r.json())]
    assert not errors, f"{method} {path} {r.status_code}:\n" + "\n".join(errors)


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path, monkeypatch):
    settings.ALLOWED_HOSTS = ["*"]
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-export": "100/3600", "goatcounter": "600/60"}
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    sites.forget_pixel_sites()


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain=HOST)
    hits = [
        CleanHit(
            path=f"/page-{n % 3}",
            title=f"Page {n % 3}",
            created_at=NOW - timedelta(days=n % 4, hours=n),
            visitor=uuid.uuid4(),
            browser="Firefox 133",
            system="Linux",
            size=1920,
            location="NL-NH",
            language="nl",
            ref="https://news.example.com/item" if n % 2 else "",
            ref_scheme="h" if n % 2 else "",
        )
        for n in range(12)
    ]
    hits.append(CleanHit(path="signup", event=True, created_at=NOW, visitor=uuid.uuid4(), campaign="spring"))
    with transaction.atomic():
        record_hits(site, hits)
    roll_up()
    return site


@pytest.fixture
def client(alice, site) -> APIClient:
    client = client_with_key(make_key(alice))
    client.defaults["HTTP_HOST"] = HOST
    return client


@pytest.fixture
def weak(alice, site) -> APIClient:
    """A key of alice's without GoatCounter's permissions: 403 everywhere."""
    client = client_with_key(make_key(alice, "logs:read"))
    client.defaults["HTTP_HOST"] = HOST
    return client


@pytest.fixture
def nobody() -> APIClient:
    return APIClient(HTTP_HOST=HOST)


def call(client: APIClient, method: str, url: str, body: Any = None):
    return (
        getattr(client, method.lower())(url, body, format="json")
        if body is not None
        else (getattr(client, method.lower())(url))
    )


def first_path(site: Site) -> int:
    path = HitPath.objects.filter(site=site, event=False).order_by("id").first()
    assert path is not None
    return path.pk


STATS = ["/api/v0/stats/total", "/api/v0/stats/hits", "/api/v0/stats/browsers", "/api/v0/stats/toprefs"]
STATS += ["/api/v0/stats/systems", "/api/v0/stats/sizes", "/api/v0/stats/locations", "/api/v0/stats/languages"]
STATS += ["/api/v0/stats/campaigns"]
DETAILS = ["browsers/Firefox", "systems/Linux", "sizes/phone", "locations/NL", "toprefs/news.example.com"]


def template(url: str) -> str:
    """The document's path for a URL of ours."""
    parts = url.split("?")[0].split("/")
    if url.startswith("/api/v0/stats/hits/"):
        return "/api/v0/stats/hits/{path_id}"
    if url.startswith("/api/v0/stats/") and not url.startswith(("/api/v0/stats/total", "/api/v0/stats/hits")):
        return "/api/v0/stats/{page}" if len(parts) == 5 else "/api/v0/stats/{page}/{id}"
    if url.startswith("/api/v0/export/"):
        return "/api/v0/export/{id}/download" if url.endswith("/download") else "/api/v0/export/{id}"
    if url.startswith("/api/v0/sites/"):
        return "/api/v0/sites/{id}"
    return url.split("?")[0]


# --- reads ------------------------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_stats_answers_are_as_documented(client, weak, nobody, site):
    start = "start=2030-03-01&end=2030-03-06"
    path_id = first_path(site)
    urls = [f"{url}?{start}" for url in STATS]
    urls += [f"/api/v0/stats/{detail}?{start}" for detail in DETAILS]
    urls += [f"/api/v0/stats/hits/{path_id}?{start}", f"/api/v0/stats/hits?{start}&group=hour"]
    urls += [f"/api/v0/stats/hits?{start}&daily=true", f"/api/v0/stats/total?{start}&include_paths={path_id}"]
    urls += ["/api/v0/paths", "/api/v0/paths?limit=2&after=0", "/api/v0/me"]
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, (url, r.content)
        assert_as_documented(r, template(url), "GET")
        if url != "/api/v0/me":  # /me needs no permission
            assert_as_documented(weak.get(url), template(url), "GET")
            assert weak.get(url).status_code == 403
        r = nobody.get(url)
        assert r.status_code == 401
        assert_as_documented(r, template(url), "GET")
    for url in ["/api/v0/stats/total?start=yesterday", "/api/v0/stats/hits?group=year", "/api/v0/paths?nope=1"]:
        r = client.get(url)
        assert r.status_code == 400
        assert_as_documented(r, template(url), "GET")


@time_machine.travel(NOW, tick=False)
def test_the_stats_have_goatcounters_fields(client, site):
    total = client.get("/api/v0/stats/total?start=2030-03-01&end=2030-03-06").json()
    assert all(len(day["hourly"]) == 24 for day in total["stats"])  # every day, without group=hour
    hits = client.get("/api/v0/stats/hits?start=2030-03-01&end=2030-03-06").json()
    assert all(len(day["hourly"]) == 24 for hit in hits["hits"] for day in hit["stats"])
    refs = client.get(f"/api/v0/stats/hits/{first_path(site)}?start=2030-03-01&end=2030-03-06").json()["refs"]
    assert refs and all(ref["ref_scheme"] in ("h", "g", "c", "o") for ref in refs)


def test_paths_take_goatcounters_go_names_and_the_first_of_a_repeated_parameter(client, site):
    """GoatCounter matches Limit and After as well as limit and after (an MCP server sends Limit), and takes the
    first value of a parameter given twice."""
    ids = list(HitPath.objects.filter(site=site).order_by("id").values_list("id", flat=True))
    r = client.get("/api/v0/paths?Limit=2")
    assert r.status_code == 200
    assert [p["id"] for p in r.json()["paths"]] == ids[:2] and r.json()["more"] is True
    r = client.get(f"/api/v0/paths?Limit=2&After={ids[1]}")
    assert [p["id"] for p in r.json()["paths"]] == ids[2:4]
    r = client.get("/api/v0/paths?limit=1&limit=3")
    assert len(r.json()["paths"]) == 1
    r = client.get(f"/api/v0/stats/total?start=2030-03-01&end=2030-03-06&IncludePaths={ids[0]}&PathByName=false")
    assert r.status_code == 200
    r = client.get(f"/api/v0/stats/total?start=2030-03-01&end=2030-03-06&include_paths={ids[0]}&include_paths=x")
    assert r.status_code == 200  # the first value counts; the second, no path id, is not read
    assert_as_documented(r, "/api/v0/stats/total", "GET")


# --- sites ------------------------------------------------------------------------------------------------------


def test_the_site_answers_are_as_documented(client, weak, nobody, site):
    r = client.get("/api/v0/sites")
    assert r.status_code == 200
    assert_as_documented(r, "/api/v0/sites", "GET")
    shown = r.json()["sites"][0]
    assert (shown["cname"], shown["state"], shown["received_data"]) == (HOST, "a", True)
    assert shown["setttings"]["public"] == "private"
    first = Hit.objects.filter(site=site).order_by("id").first()  # the first hit recorded
    assert shown["first_hit_at"] == first.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    url = f"/api/v0/sites/{site.pk}"
    assert_as_documented(client.get(url), "/api/v0/sites/{id}", "GET")
    for method in ("PATCH", "POST"):  # GoatCounter updates with either
        r = call(
            client, method, url, {"link_domain": f"www.{method.lower()}.example", "settings": {"public": "public"}}
        )
        assert r.status_code == 200, r.content
        assert_as_documented(r, "/api/v0/sites/{id}", method)
        site.refresh_from_db()
        assert (site.link_domain, site.public) == (f"www.{method.lower()}.example", True)
        assert r.json()["link_domain"] == site.link_domain and r.json()["setttings"]["public"] == "public"
        for bad in ({"settings": {"public": "secret"}}, {"link_domain": 5}):
            r = call(client, method, url, bad)
            assert r.status_code == 400
            assert_as_documented(r, "/api/v0/sites/{id}", method)
        for other in (weak, nobody):
            assert_as_documented(call(other, method, url, {"link_domain": "x"}), "/api/v0/sites/{id}", method)
    r = client.put("/api/v0/sites", {"code": "alice-shop", "cname": "Shop.Alice.Example"}, format="json")
    assert r.status_code == 200
    assert_as_documented(r, "/api/v0/sites", "PUT")
    assert r.json()["cname"] == "shop.alice.example" and r.json()["received_data"] is False
    for body, client_ in (({"code": "Not a code"}, client), ({"code": "x-y"}, weak), ({"code": "x-y"}, nobody)):
        r = client_.put("/api/v0/sites", body, format="json")
        assert r.status_code in (400, 401, 403)
        assert_as_documented(r, "/api/v0/sites", "PUT")
    assert_as_documented(weak.get(url), "/api/v0/sites/{id}", "GET")
    assert_as_documented(nobody.get("/api/v0/sites"), "/api/v0/sites", "GET")


def test_a_site_created_with_a_cname_is_counted_by_the_pixel_at_that_host(client, alice, site):
    r = client.put("/api/v0/sites", {"code": "alice-shop", "cname": "shop.alice.example"}, format="json")
    assert r.status_code == 200
    pixel = APIClient().get("/count?p=/cart", HTTP_HOST="shop.alice.example", HTTP_USER_AGENT="Mozilla/5.0 Firefox")
    assert pixel.status_code == 200
    assert Hit.objects.filter(site__code="alice-shop", path__path="/cart").exists()
    # and the key that created it still answers for its own site
    assert client.get("/api/v0/paths", HTTP_HOST="elsewhere.example").status_code == 200
    assert ApiKey.objects.get(user=alice).created_sites.get().code == "alice-shop"


# --- count and export -------------------------------------------------------------------------------------------


def test_the_count_answers_are_as_documented(client, weak, nobody, site):
    r = client.post("/api/v0/count", {"no_sessions": True, "hits": [{"path": "/x"}]}, format="json")
    assert r.status_code == 202
    for body in ({"hits": []}, {"no_sessions": True, "hits": [{"path": ""}]}, {"hits": "x"}):
        r = client.post("/api/v0/count", body, format="json")
        assert r.status_code == 400
        assert_as_documented(r, "/api/v0/count", "POST")
    for other in (weak, nobody):
        r = other.post("/api/v0/count", {"no_sessions": True, "hits": [{"path": "/x"}]}, format="json")
        assert r.status_code in (401, 403)
        assert_as_documented(r, "/api/v0/count", "POST")


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)


def test_the_export_answers_are_as_documented(client, weak, nobody, site):
    for body in (None, {"format": "csv", "start_from_hit_id": 1}, {"format": "json"}):
        r = client.post("/api/v0/export", body, format="json")
        assert r.status_code == 202, r.content
        assert_as_documented(r, "/api/v0/export", "POST")
        assert "error" not in r.json() and r.json()["finished_at"] is None
        url = f"/api/v0/export/{r.json()['id']}"
        assert_as_documented(client.get(url), "/api/v0/export/{id}", "GET")
        r = client.get(f"{url}/download")
        assert r.status_code == 202
        assert_as_documented(r, "/api/v0/export/{id}/download", "GET")
    run_worker()
    for export in Export.objects.all():
        url = f"/api/v0/export/{export.pk}"
        r = client.get(url)
        assert r.json()["format"] == export.format and r.json()["num_rows"] == export.num_rows > 0
        assert_as_documented(r, "/api/v0/export/{id}", "GET")
        r = client.get(f"{url}/download")
        assert r.status_code == 200
        content = gzip.decompress(b"".join(r.streaming_content))
        assert content.startswith(b"2Path," if export.format == "csv" else b"[")
        for other in (weak, nobody):
            for path in (url, f"{url}/download"):
                assert_as_documented(other.get(path), template(path), "GET")
    failed = Export.objects.create(site=site, finished_at=NOW, error="The export failed (OSError); start a new one.")
    r = client.get(f"/api/v0/export/{failed.pk}")
    assert_as_documented(r, "/api/v0/export/{id}", "GET")
    assert r.json()["error"] == failed.error
    assert_as_documented(client.get(f"/api/v0/export/{failed.pk}/download"), "/api/v0/export/{id}/download", "GET")
    assert_as_documented(client.get("/api/v0/export/999999"), "/api/v0/export/{id}", "GET")
    bad_days = ({"start_from_day": "soon"}, {"start_from_day": "0001-01-01T00:00:00+05:00"})
    for body in ({"format": "xml"}, {"format": {}}, {"start_from_hit_id": "x"}, {"nope": 1}, *bad_days):
        r = client.post("/api/v0/export", body, format="json")
        assert r.status_code == 400
        assert_as_documented(r, "/api/v0/export", "POST")
    for other in (weak, nobody):
        assert_as_documented(other.post("/api/v0/export"), "/api/v0/export", "POST")


def test_every_shared_operation_is_checked_here():
    """A new operation in GoatCounter's document (a new copy of it) needs its answers checked above."""
    operations = {(method.upper(), path) for path, ops in DOCUMENT["paths"].items() for method in ops}
    checked = {("GET", template(url.split("?")[0])) for url in [*STATS, "/api/v0/stats/x/y", "/api/v0/stats/hits/1"]}
    checked |= {("GET", "/api/v0/paths"), ("GET", "/api/v0/me"), ("GET", "/api/v0/sites"), ("PUT", "/api/v0/sites")}
    checked |= {(method, "/api/v0/sites/{id}") for method in ("GET", "PATCH", "POST")}
    checked |= {("POST", "/api/v0/count"), ("POST", "/api/v0/export"), ("GET", "/api/v0/export/{id}")}
    checked |= {("GET", "/api/v0/export/{id}/download")}
    assert operations == checked


# --- requests GoatCounter takes ---------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_it_takes_every_field_of_goatcounters_count_request(client, site):
    hit = {
        "path": "/docs",
        "title": "Docs",
        "event": False,
        "ref": "https://news.example.com/item",
        "query": "utm_campaign=autumn",
        "size": [1920, 1080, 2],
        "bot": 0,
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "location": "NL",
        "language": "nl-NL",
        "ip": "192.0.2.7",
        "created_at": "2030-03-06T11:00:00Z",
        "session": "visitor-42",
    }
    r = client.post("/api/v0/count", {"no_sessions": False, "filter": ["ip"], "hits": [hit]}, format="json")
    assert r.status_code == 202, r.content
    stored = Hit.objects.get(path__path="/docs")
    assert (stored.size, stored.location, stored.campaign) == (1920, "NL", "autumn")


def test_it_takes_goatcounters_whole_site_settings_on_update(client, site):
    settings_ = {
        "public": "public",
        "secret": "",
        "allow_counter": False,
        "allow_bosmang": False,
        "data_retention": 0,
        "ignore_ips": ["192.0.2.1"],
        "collect": 254,
        "collect_regions": ["US"],
        "allow_embed": [],
    }
    r = client.patch(f"/api/v0/sites/{site.pk}", {"settings": settings_, "cname": HOST}, format="json")
    assert r.status_code == 200, r.content
    site.refresh_from_db()
    assert (site.public, site.ignore_ips) == (True, ["192.0.2.1"])
    assert r.json()["setttings"]["ignore_ips"] == ["192.0.2.1"]
