"""Contract fuzzing: schemathesis sends every operation of /api.json to a real gunicorn, as alice with each
family's own credentials (contract_hooks.py), and checks every answer against the document with every check it
has: no 500, status codes, bodies, content types and headers as declared, auth enforced, a deleted object stays
gone, charlie never gets alice's objects, and the document says exactly what the server accepts: what it allows
is taken (positive_data_acceptance), what it forbids is refused (negative_data_rejection). The rules no OpenAPI
document can state (one parameter against another, an opaque cursor) are kept in contract_hooks.py.

The run is reproducible (deterministic generation) and bounded (MAX_EXAMPLES per operation). On a failure,
pytest prints schemathesis' report: each finding with a curl line that replays it against `make run`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from django.conf import settings
from django.db import transaction
from django.urls import Resolver404, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.models import Domain, Export, Site
from analytics.models import Path as HitPath
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits
from analytics.tasks import run_export
from analytics.tests.test_ratelimit_processes import server_env, start_servers
from conftest import ALL_SCOPES, make_key
from events.models import Event, LogMessage
from logsvc.models import ApiKey, User
from logsvc.ratelimit import ScopedKeyThrottle
from social import services as social
from social.models import Comment, Log
from social.tests.conftest import access_token

ST = Path(sys.executable).with_name("st")
HOOKS = Path(__file__).with_name("contract_hooks.py")
MAX_EXAMPLES = 20
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "411", "413", "415", "422", "428", "429"]
UNLIMITED = "1000000/60"  # counted (the X-Rate-Limit-* headers are sent) but never reached
# Operations that delete alice's account or site for good: fuzzed, they would leave the rest of the run nothing to
# read (and their confirmation, the username or the site's code, is what no generator guesses). They are tested in
# logsvc/tests/test_delete_account.py and analytics/tests/test_site_deletion.py.
DESTRUCTIVE = ["DELETE /api/1/users/$self/", "DELETE /api/v0/sites/{site_id}", "DELETE /api/v0/sites/{site_id}/hits"]
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",  # what the document forbids is refused (4xx)
    "positive_data_acceptance",  # what the document allows is taken (2xx, or a declared 404/409/410)
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
)


# --- alice, charlie and their things -------------------------------------------------------------------------


def seed_user(user: User) -> dict[str, Any]:
    """Some of everything of user's, through the services the API itself uses; their credentials and ids."""
    name, now = user.username, timezone.now()
    messages = [
        LogMessage.objects.create(owner=user, message=f"{name}: disk {n}0% full", severity=n, application="shop")
        for n in range(1, 4)
    ]
    trace = f"{name}-checkout"
    for n, step in enumerate(["cart", "pay", "ship"]):
        Event.objects.create(owner=user, client_id=n, name=step, trace_id=trace, data={"step": n}, date=now)
    site = Site.objects.create(code=f"{name}-blog", owner=user, timezone="Europe/Berlin")
    Domain.objects.create(site=site, domain=f"{name}.example")
    visit: dict[str, Any] = {
        "browser": "Firefox 133",
        "system": "Linux",
        "size": 1920,
        "location": "NL-NH",
        "language": "nl",
    }
    referred: dict[str, Any] = {"ref": "https://news.example.com/item", "ref_scheme": "h"}
    hits = [
        CleanHit(path=path, title=path, visitor=uuid.uuid4(), created_at=now - timedelta(hours=n), **visit, **referred)
        for n, path in enumerate(["/", "/about", "/", "/essay"])
    ]
    hits += [
        CleanHit(path="/", campaign="spring", ref="spring", ref_scheme="c", created_at=now),
        CleanHit(path="signup", event=True, created_at=now),
    ]
    with transaction.atomic():
        record_hits(site, hits)
    export = Export.objects.create(site=site)
    run_export.call(export.pk)
    logs = [
        social.create_log(user=user, markdown=f"Shipped the #contract tests #{name}"),
        social.create_log(user=user, markdown="Wrote **docs** #writing"),
    ]
    key, raw = ApiKey.create(user=user, name="fuzzing", scopes=ALL_SCOPES)
    site.api_keys.add(key)  # GoatCounter: the key acts for this site, whatever sites the fuzzing creates
    return {
        # contract_hooks.py sends them: the key as each family expects it, the token to littlelogs
        "credentials": {"key": raw, "sites_key": make_key(user, "sites"), "token": access_token(user)},
        "message_id": [m.pk for m in messages],
        "trace_id": [trace],
        "uid": list(Event.objects.filter(owner=user).values_list("uid", flat=True)),
        "site_id": [site.pk],
        "export_id": [export.pk],
        "path_id": list(HitPath.objects.filter(site=site).values_list("pk", flat=True)),
        "log_id": [log.pk for log in logs],
    }


@pytest.fixture
def cast(transactional_db, alice, charlie, settings, tmp_path) -> dict[str, dict[str, Any]]:
    """alice and charlie with messages, events, a site with hits and a finished export, littlelogs logs;
    they comment on, like and follow each other. Committed, so the server sees it all."""
    settings.EXPORT_DIR = tmp_path / "exports"
    things = {user.username: seed_user(user) for user in (alice, charlie)}
    roll_up()
    alices_log, charlies_log = (Log.objects.get(pk=things[name]["log_id"][0]) for name in ("alice", "charlie"))
    things["charlie"]["comment_id"] = [
        social.add_comment(log=charlies_log, user=charlie, markdown="Also: #writing").pk,
        social.add_comment(log=alices_log, user=charlie, markdown="Nice, @alice!").pk,  # alice may delete this one
    ]
    things["alice"]["comment_id"] = [
        social.add_comment(log=alices_log, user=alice, markdown="Thanks #contract").pk,
        social.add_comment(log=charlies_log, user=alice, markdown="Same here").pk,
    ]
    social.like_log(log=charlies_log, user=alice)
    social.like_log(log=alices_log, user=charlie)
    social.follow(follower=charlie, followee=alice)
    return things


def serve(request, tmp_path: Path) -> str:
    """gunicorn serving logsvc (DEBUG off) on a free loopback port, every rate limit out of reach; its base URL.
    Its access log (method, path, status) is tmp_path/access.log, what it prints (tracebacks) tmp_path/server.log."""
    limits = {f"RATE_LIMIT_{scope.upper().replace('-', '_')}": UNLIMITED for scope in settings.RATE_LIMITS}
    env = server_env(
        **limits,
        CONN_MAX_AGE="60",
        REDIS_URL="",
        EXPORT_DIR=str(tmp_path / "exports"),  # for FILE_STORAGE=local; PostgreSQL is the default
        MEDIA_ROOT=str(tmp_path / "media"),
    )
    access_log = ("--access-logfile", str(tmp_path / "access.log"), "--access-logformat", "%(m)s %(U)s %(s)s")
    return start_servers(request, 1, env, workers=2, args=access_log, log_path=tmp_path / "server.log")[0]


# --- schemathesis --------------------------------------------------------------------------------------------


def config(cast: dict[str, dict[str, Any]]) -> str:
    """schemathesis.toml: the checks, the budget, and ids of alice's (and some of charlie's) to draw path
    parameters from, so reads and writes reach real objects as well as made-up ones."""
    alice, charlie = cast["alice"], cast["charlie"]
    ids = {name: alice[name] + charlie[name][:1] for name in alice if name != "credentials"}
    ids |= {
        "username": ["alice", "charlie"],
        "tag": ["contract", "writing", "alice"],
        "id": ["Firefox", "Linux", "NL", "1920", "spring", "https://news.example.com/item"],  # /stats/{page}/{id}
    }
    lines = [
        "workers = 2",
        "request-timeout = 30",
        'suppress-health-check = ["all"]',  # a slow busy machine must not fail the run
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "deterministic = true",  # the same requests on every run (it makes the seed irrelevant)
        'database = "none"',
        "[checks]",
        "enabled = false",
        *(f"{check}.enabled = true" for check in CHECKS),
        # A refusal is a refusal: also by the body middleware (no length, too large) before any view.
        f"negative_data_rejection.expected-statuses = {json.dumps(REFUSALS)}",
        "[dictionaries]",
        *(f"{name} = {{ values = {json.dumps(values)} }}" for name, values in ids.items()),
        "[parameters]",
        *(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.7 }}' for name in ids),
        *(line for name in DESTRUCTIVE for line in ("[[operations]]", f'include-name = "{name}"', "enabled = false")),
    ]
    return "\n".join(lines) + "\n"


def run_schemathesis(base: str, cast: dict[str, dict[str, Any]], workdir: Path) -> subprocess.CompletedProcess:
    (workdir / "schemathesis.toml").write_text(config(cast))
    credentials = {name: things["credentials"] for name, things in cast.items()}  # alice first: she runs it all
    return subprocess.run(
        [ST, "--config-file=schemathesis.toml", "--no-color", "run", f"{base}/api.json", "--report=junit"],
        check=False,  # the test asserts its exit status, with its report
        cwd=workdir,  # its cache (.schemathesis/) and report go there, not into the checkout
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "CONTRACT_CREDENTIALS": json.dumps(credentials)},
        capture_output=True,
        text=True,
        timeout=20 * 60,
    )


def answered(access_log: Path, schema: dict[str, Any]) -> dict[str, set[int]]:
    """The statuses the server answered per operation ("GET /api/Log/{message_id}"), from its access log."""
    templates = sorted(schema["paths"], key=lambda path: path.count("{"))  # /logs/create/ before /logs/{log_id}/
    patterns = [(re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"), path) for path in templates]
    seen: dict[str, set[int]] = defaultdict(set)
    for line in access_log.read_text().splitlines():
        # uvicorn's workers write their own format, whatever --access-logformat says: 'ip:port - "GET /p?q HTTP/1.1" 200'
        if uvicorn := re.search(r'"(\w+) ([^"?]*)(?:\?[^"]*)? HTTP/[\d.]+" (\d{3})$', line):
            method, path, status = uvicorn.groups()
            path = unquote(path)  # it logs the path %-encoded: /users/%24self/
        elif entry := re.fullmatch(r"(\w+) (.*) (\d{3})", line):
            method, path, status = entry.groups()
        else:
            continue  # a path with a newline in it (fuzzed) is logged over two lines
        template = next((template for pattern, template in patterns if pattern.match(path)), None)
        if template is not None and method.lower() in schema["paths"][template]:
            seen[f"{method} {template}"].add(int(status))
    return seen


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in schema["paths"].items() for method, op in item.items()]


def test_the_api_keeps_its_contract_under_fuzzing(request, cast, tmp_path):
    base = serve(request, tmp_path)
    schema = requests.get(f"{base}/api.json", timeout=30).json()
    charlies_before = charlies_things()

    started = time.monotonic()
    result = run_schemathesis(base, cast, tmp_path)
    print(result.stdout, result.stderr, f"schemathesis ran {time.monotonic() - started:.0f} s", sep="\n")
    # the server's tracebacks too: a 500's cause can take a state the fuzzing made that a replay lacks
    server_log = (tmp_path / "server.log").read_text(errors="replace")
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-3000:] + server_log[-10000:]

    # Really exercised: every operation succeeded for alice at least once, not only refused her.
    seen = answered(tmp_path / "access.log", schema)
    never = [f"{m} {path}" for m, path, _ in operations(schema) if not {*range(200, 300)} & seen[f"{m} {path}"]]
    never = [operation for operation in never if operation not in DESTRUCTIVE]
    assert never == []
    # Fuzzing with alice's credentials changed nothing of charlie's.
    assert charlies_things() == charlies_before
    # What ignored_auth could not check: littlelogs refuses a request without a valid token.
    for method, path, _ in oauth_operations(schema):
        url = base + re.sub(r"\{[^}]+\}", "1", path)
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            r = requests.request(method, url, headers=headers, timeout=30)
            assert (r.status_code, list(r.json())) == (401, ["detail"]), f"{method} {path} {headers}"


def oauth_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The operations that need a littlelogs token (or session)."""
    return [(m, path, op) for m, path, op in operations(schema) if "oauth2" in json.dumps(op.get("security", []))]


# What charlie gets for each read of one of alice's objects by its id (GoatCounter keys act for their own site).
NOT_CHARLIES = {
    "/api/Log/{message_id}": 404,
    "/api/v1/events/trace/{trace_id}": 200,  # his events of that trace: none
    "/api/v0/sites/{site_id}": 404,
    "/api/v0/export/{export_id}": 404,
    "/api/v0/export/{export_id}/download": 404,
    "/api/v0/stats/hits/{path_id}": 404,
}


def test_charlie_cannot_read_alices_objects(request, cast, tmp_path):
    """object_level_authorization judges only the ids alice's requests in the run turned up; this asks for each
    of her seeded objects by id, with charlie's key."""
    base = serve(request, tmp_path)
    schema = requests.get(f"{base}/api.json", timeout=30).json()
    by_id = [
        path
        for m, path, op in operations(schema)
        if m == "GET" and re.search(r"\{\w+_id\}", path) and "BearerKey" in json.dumps(op.get("security", []))
    ]
    assert sorted(by_id) == sorted(NOT_CHARLIES)  # a new read by id belongs in NOT_CHARLIES
    for path, status in NOT_CHARLIES.items():
        url = base + re.sub(r"\{(\w+)\}", lambda m: str(cast["alice"][m[1]][0]), path)
        answers = {name: requests.get(url, headers=key_headers(cast, name), timeout=30) for name in cast}
        assert answers["alice"].status_code == 200, path
        assert answers["charlie"].status_code == status, path
        if status == 200:
            assert answers["charlie"].json() == {"count": 0, "events": []}


def key_headers(cast: dict[str, dict[str, Any]], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {cast[name]['credentials']['key']}"}


def charlies_things() -> dict[str, Any]:
    charlie = User.objects.get(username="charlie")
    return {
        "profile": User.objects.filter(pk=charlie.pk).values().get(),
        "messages": list(LogMessage.objects.filter(owner=charlie).order_by("pk").values()),
        "events": list(Event.objects.filter(owner=charlie).order_by("pk").values()),
        "sites": list(Site.objects.filter(owner=charlie).order_by("pk").values()),
        "domains": list(Domain.objects.filter(site__owner=charlie).values_list("domain", flat=True)),
        "exports": list(Export.objects.filter(site__owner=charlie).order_by("pk").values()),
        "logs": list(Log.objects.filter(user=charlie).order_by("pk").values()),
        "comments": list(Comment.objects.filter(user=charlie, log__user=charlie).order_by("pk").values()),
    }


# --- 429 is declared wherever a limit can answer it ----------------------------------------------------------


def test_every_rate_limited_operation_declares_429(client, db):
    schema = client.get("/api.json").json()
    limited = [(m, path, op) for m, path, op in operations(schema) if is_rate_limited(m, path)]
    assert len(limited) >= 20  # Logster, Bytelog and GoatCounter's /api/v0 at least
    assert [f"{m} {path}" for m, path, op in limited if "429" not in op["responses"]] == []


def is_rate_limited(method: str, path: str) -> bool:
    """Whether the view behind an OpenAPI operation counts it against a limit of settings.RATE_LIMITS."""
    for value in ("1", "a" * 16):  # a path parameter that fits its converter: an int, or Loggator's uid
        try:
            # as_view() gives its function a view_class, which the stubs' ResolverMatch.func does not know
            view = resolve(re.sub(r"\{[^}]+\}", value, path)).func.view_class()  # type: ignore[attr-defined]
            break
        except Resolver404:
            continue
    else:
        raise AssertionError(f"no view serves {path}")
    view.request = SimpleNamespace(method=method)
    scope = getattr(view, "throttle_scope", None)
    throttles = view.get_throttles()
    return bool(scope and settings.RATE_LIMITS.get(scope) and any(isinstance(t, ScopedKeyThrottle) for t in throttles))


# --- what the fuzzing found, pinned (a fuzzing run takes minutes; these take a second) -----------------------


@pytest.fixture
def blog(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain="testserver")
    return site


def test_count_refuses_a_filter_that_is_not_a_list_of_names(api_client, blog):
    r = api_client.post("/api/v0/count", {"filter": [{}], "hits": [{"path": "/"}]}, format="json")
    assert (r.status_code, r.json()) == (400, {"errors": {"filter": ['Must be a list: ["ip"] (the default) or [].']}})
    assert not HitPath.objects.exists()


def test_a_page_past_postgresqls_largest_offset_is_refused(anon_client, alice):
    social.create_log(user=alice, markdown="One log")
    for url in ("/api/1/tags/", "/api/1/timelines/public/"):
        r = anon_client.get(url, {"offset": 10**28, "limit": 5})
        assert (r.status_code, list(r.json())) == (400, ["offset"]), url


@pytest.mark.parametrize("query", [{"offset": "null"}, {"offset": "-1"}, {"limit": "true"}, {"limit": "0"}])
def test_littlelogs_paging_refuses_what_it_cannot_read(anon_client, db, query):
    r = anon_client.get("/api/1/timelines/public/", query)
    assert (r.status_code, list(r.json())) == (400, list(query))


def test_stats_refuse_a_nul_in_a_parameter(api_client, blog):
    r = api_client.get("/api/v0/stats/hits", {"path_by_name": "true", "exclude_paths": "/a\x00b"})
    assert (r.status_code, r.json()) == (
        400,
        {"errors": {"exclude_paths": ["Must not contain NUL (U+0000) characters."]}},
    )


def test_trending_tags_are_a_list_in_the_document_as_in_the_answer(client, anon_client, db):
    schema = client.get("/api.json").json()["paths"]["/api/1/tags/trending/"]["get"]["responses"]["200"]
    assert schema["content"]["application/json"]["schema"]["type"] == "array"
    assert anon_client.get("/api/1/tags/trending/").json() == []


def test_count_reads_a_created_at_whose_offset_postgresql_would_refuse(api_client, blog):
    # RFC 3339 allows -23:14; PostgreSQL takes offsets up to 15:59: the hit is stored in UTC.
    hit = {"path": "/", "created_at": "2026-01-27T04:47:51-23:14"}
    r = api_client.post("/api/v0/count", {"no_sessions": True, "hits": [hit]}, format="json")
    assert r.status_code == 202, r.content


@pytest.mark.parametrize(
    ("size", "status"), [([1920, 1080, 2], 202), ([1920, -5], 400), ("1920,1080", 202), ([1, 2**31], 400)]
)
def test_count_checks_every_number_of_a_size_as_the_document_says(api_client, blog, size, status):
    r = api_client.post("/api/v0/count", {"no_sessions": True, "hits": [{"path": "/", "size": size}]}, format="json")
    assert r.status_code == status, r.content


def test_an_export_body_of_null_is_refused(api_client, blog):
    r = api_client.post("/api/v0/export", "null", content_type="application/json")
    assert (r.status_code, list(r.json())) == (400, ["error"])
    assert not Export.objects.exists()


@pytest.mark.parametrize("settings_", [{"public": 0}, {"timezone": "0"}, {"ignore_ips": ["x"]}])
def test_site_settings_take_only_what_the_document_says(alice, settings_):
    site = Site.objects.create(code="alice-blog", owner=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(alice, 'sites')}")
    r = client.patch(f"/api/v0/sites/{site.pk}", {"settings": settings_}, format="json")
    assert (r.status_code, list(r.json())) == (400, ["errors"]), r.content


@pytest.mark.parametrize("url", ["/api/1/logs/create/", "/api/1/logs/preview/"])
def test_littlelogs_content_must_be_a_string(alice, url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(alice)}")
    r = client.post(url, {"content": 0}, format="json")
    assert (r.status_code, r.json()) == (400, {"content": ["Must be a string."]})
    assert not Log.objects.exists()


def test_an_empty_time_zone_in_a_profile_form_is_refused(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(alice)}")
    r = client.patch("/api/1/users/$self/", {"timezone": ""}, format="multipart")
    assert (r.status_code, list(r.json())) == (400, ["timezone"])
