"""Abuse of keys and tokens: bad credentials of every kind in every scheme, hashed lookups, and no key in any log.

The basics (a wrong key, a revoked or expired one, a missing scope, Basic with a user) are in test_auth.py and
social/tests/test_auth.py for one scheme and family each; here every scheme meets every defect in every family,
through the write a client would try, and nothing may be stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from analytics.models import Hit, Site
from analytics.tests.test_ratelimit_processes import free_port, server_env
from conftest import make_key
from events.models import Event, LogMessage
from logsvc import models
from logsvc.models import User
from social.models import Log
from social.tests.conftest import token_client

ROOT = Path(__file__).resolve().parents[2]

# family -> (a write its clients send, the rows it would store, the envelope's one key, the scope it needs)
WRITES = {
    "logster": ("/api/Log", {"Message": "should not be stored", "Severity": 2}, LogMessage, "Message", "logs:write"),
    "bytelog": ("/api/v1/events", {"name": "should-not-be-stored"}, Event, "error", "events:write"),
    "goatcounter": ("/api/v0/count", {"no_sessions": True, "hits": [{"path": "/x"}]}, Hit, "error", "count"),
}


def basic(username: str, password: str | bytes) -> str:
    raw = password if isinstance(password, bytes) else password.encode()
    return "Basic " + base64.b64encode(username.encode() + b":" + raw).decode()


SCHEMES = {
    "apikey": lambda raw: {"HTTP_APIKEY": raw},
    "bearer": lambda raw: {"HTTP_AUTHORIZATION": f"Bearer {raw}"},
    "basic": lambda raw: {"HTTP_AUTHORIZATION": basic("", raw)},
}


def bad_key(user: User, defect: str) -> str:
    """A key of user's with this defect."""
    if defect == "revoked":
        return make_key(user, revoked=timezone.now())
    if defect == "expired":
        return make_key(user, expires=timezone.now() - timedelta(seconds=1))
    if defect == "deactivated user":
        raw = make_key(user)
        User.objects.filter(pk=user.pk).update(is_active=False)
        return raw
    good = make_key(user)
    return {
        "too short": good[:12],
        "wrong prefix": "lsx_" + good[4:],
        "upper-case prefix": "LSK_" + good[4:],
        "one character changed": good[:-1] + ("A" if good[-1] != "A" else "B"),
        "non-ASCII": good[:-1] + "é",
        "NUL byte": good[:6] + "\x00" + good[7:],
        "non-ASCII prefix": good[:6] + "é" + good[7:],
        "very long": good + "A" * 4000,
        "another key's prefix": "lsk_" + make_key(user)[4:12] + good[12:],
        "only the prefix": good[:12],
        "whitespace inside": good[:20] + " " + good[20:],
    }[defect]


DEFECTS = [
    "revoked",
    "expired",
    "deactivated user",
    "too short",
    "wrong prefix",
    "upper-case prefix",
    "one character changed",
    "non-ASCII",
    "NUL byte",
    "non-ASCII prefix",
    "very long",
    "another key's prefix",
    "only the prefix",
    "whitespace inside",
]


@pytest.fixture
def blog(alice) -> Site:
    return Site.objects.create(code="alice-blog", owner=alice)


def assert_refused(r, family: str, status: int = 401) -> None:
    _, _, model, envelope, _ = WRITES[family]
    assert r.status_code == status, r.content
    assert r["Content-Type"] == "application/json"
    assert list(r.json()) == [envelope]
    if status == 401:
        assert r["WWW-Authenticate"] == 'Bearer realm="api"'
    assert not model._default_manager.exists()


@pytest.mark.parametrize("family", WRITES)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("defect", DEFECTS)
def test_a_bad_key_is_a_401_in_the_familys_envelope(alice, blog, family, scheme, defect):
    path, body, *_ = WRITES[family]
    r = APIClient().post(path, body, format="json", **SCHEMES[scheme](bad_key(alice, defect)))
    assert_refused(r, family)


@pytest.mark.parametrize("family", WRITES)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_key_without_the_scope_is_a_403_in_any_scheme(alice, blog, family, scheme):
    path, body, _, _, needed = WRITES[family]
    raw = make_key(alice, *[name for name, _ in models.SCOPES if name != needed])
    r = APIClient().post(path, body, format="json", **SCHEMES[scheme](raw))
    assert_refused(r, family, 403)
    assert needed in r.json()[WRITES[family][3]]


@pytest.mark.parametrize("family", WRITES)
@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer  ",
        "Basic",
        "Basic ",
        "Basic not-base64!",
        basic("", ""),
        base64.b64encode(b"no-colon").decode().join(["Basic ", ""]),
        basic("", b"\xff\xfe"),  # not UTF-8
        basic("", b"lsk_\x00\x00\x00\x00\x00\x00\x00\x00aaaaaaaaaaaa"),
    ],
)
def test_a_malformed_authorization_header_is_a_401(alice, blog, family, header):
    path, body, *_ = WRITES[family]
    r = APIClient().post(path, body, format="json", HTTP_AUTHORIZATION=header)
    assert_refused(r, family)


@pytest.mark.parametrize("family", WRITES)
def test_basic_with_a_user_name_is_a_401_even_with_a_good_key(alice, alice_key, blog, family):
    path, body, *_ = WRITES[family]
    r = APIClient().post(path, body, format="json", HTTP_AUTHORIZATION=basic("alice", alice_key))
    assert_refused(r, family)


@pytest.mark.parametrize("family", WRITES)
@pytest.mark.parametrize("param", ["api_key", "apikey", "key", "token", "access_token"])
def test_a_key_in_the_query_string_is_not_accepted(alice, alice_key, blog, family, param):
    path, body, *_ = WRITES[family]
    r = APIClient().post(f"{path}?{param}={alice_key}", body, format="json")
    assert_refused(r, family)


# --- littlelogs: OAuth2 tokens (expiry and scopes: social/tests/test_auth.py) -----------------------------------


def oauth_token(user: User, defect: str) -> str:
    """A raw access token of user's with this defect."""
    client = token_client(user)
    raw = client._credentials["HTTP_AUTHORIZATION"].removeprefix("Bearer ")  # type: ignore[attr-defined]  # credentials()'s
    token = AccessToken.objects.get(token_checksum=hashlib.sha256(raw.encode()).hexdigest())
    if defect == "revoked":
        token.revoke()
    elif defect == "deactivated user":
        User.objects.filter(pk=user.pk).update(is_active=False)
    elif defect == "app deleted":
        token.application.delete()
    return {
        "too short": raw[:8],
        "one character changed": raw[:-1] + ("A" if raw[-1] != "A" else "B"),
        "non-ASCII": raw[:-1] + "é",
        "NUL byte": raw[:10] + "\x00" + raw[11:],
        "very long": raw + "A" * 4000,
        "an API key": make_key(user),
    }.get(defect, raw)


@pytest.mark.parametrize(
    "defect",
    [
        "revoked",
        "deactivated user",
        "app deleted",
        "too short",
        "one character changed",
        "non-ASCII",
        "NUL byte",
        "very long",
        "an API key",
    ],
)
def test_a_bad_access_token_is_a_401_and_writes_nothing(alice, defect):
    raw = oauth_token(alice, defect)
    client = APIClient()
    for url in ("/api/1/users/$self/", "/api/1/timelines/home/"):
        r = client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert r.status_code == 401
        assert list(r.json()) == ["detail"]
        assert r["WWW-Authenticate"].startswith("Bearer")
    r = client.post("/api/1/logs/create/", {"content": "not mine"}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 401
    assert list(r.json()) == ["detail"]
    assert not Log.objects.exists()


def test_a_good_access_token_made_the_same_way_works(alice):
    raw = oauth_token(alice, "none")
    r = APIClient().post("/api/1/logs/create/", {"content": "mine"}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 201
    assert Log.objects.get().user == alice


# --- Lookups by digest, compared in constant time ---------------------------------------------------------------


def test_a_key_is_looked_up_by_its_prefix_and_compared_by_digest_in_constant_time(alice, alice_key, monkeypatch):
    compared = []
    compare_digest = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(models.hmac, "compare_digest", spy)
    with CaptureQueriesContext(connection) as queries:
        assert APIClient().get("/api/v1/events", HTTP_AUTHORIZATION=f"Bearer {alice_key}").status_code == 200
    digest = hashlib.sha256(alice_key.encode()).hexdigest()
    assert compared == [(digest, digest)]
    secret = alice_key[12:]  # what follows lsk_ and the 8-character prefix
    assert all(secret not in query["sql"] for query in queries.captured_queries)


def test_an_access_token_is_looked_up_by_its_sha256(alice):
    # That an issued token is stored as its checksum only is in social/tests/test_oauth.py.
    raw = oauth_token(alice, "none")
    sent: list[str] = []  # each query's SQL and parameters, as sent (the token's query is prepared: its SQL has $1)

    def record(execute, sql, params, many, context):
        sent.append(f"{sql} {params!r}")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        r = APIClient().get("/api/1/users/$self/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 200
    assert all(raw not in query for query in sent)
    assert any(hashlib.sha256(raw.encode()).hexdigest() in query for query in sent)


# --- No key or token in any log ----------------------------------------------------------------------------------


@pytest.fixture
def logged_server(transactional_db, tmp_path):
    """A real gunicorn as the Dockerfile runs it (access log on), with Django logging at DEBUG; its log file."""
    log = tmp_path / "server.log"
    port = free_port()
    env = server_env(ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="DEBUG", REDIS_URL="")
    command = [str(Path(sys.executable).with_name("gunicorn")), "logsvc.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "1", "--access-logfile", "-", "--error-logfile", "-", "--log-level", "debug"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=10)
                break
            except requests.ConnectionError:
                assert server.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "gunicorn did not start in 30 s"
                time.sleep(0.1)
        yield base, log
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_no_key_or_token_reaches_the_logs(logged_server, alice, charlie):
    base, log = logged_server
    Site.objects.create(code="alice-blog", owner=alice)
    key = make_key(alice)
    revoked = make_key(alice, revoked=timezone.now())
    scopeless = make_key(alice, "stats")
    in_query = make_key(charlie)
    token = oauth_token(alice, "none")
    bad_token = secrets.token_urlsafe(30)
    secrets_sent = [key, revoked, scopeless, token, bad_token]

    def send(method: str, path: str, **kwargs) -> int:
        return requests.request(method, f"{base}{path}", timeout=10, **kwargs).status_code

    message = {"Message": "hello", "Severity": 2}
    answers = [
        send("POST", "/api/Log", json=message, headers={"ApiKey": key}),
        send("GET", "/api/v1/events", headers={"Authorization": f"Bearer {key}"}),
        send("GET", "/api/v0/me", auth=("", key)),
        send("POST", "/api/Log", json={"Severity": 9}, headers={"ApiKey": key}),  # a 400
        send("GET", "/api/Log/999999", headers={"ApiKey": key}),  # a 404
        send("GET", "/api/v1/events", headers={"Authorization": f"Bearer {revoked}"}),
        send("GET", "/api/v1/events", headers={"Authorization": f"Bearer {scopeless}"}),
        send("GET", "/api/v0/me", auth=("alice", key)),  # Basic with a user name: refused
        send("GET", "/api/Log", headers={"ApiKey": key + "é"}),
        send("GET", "/api/Log", headers={"Authorization": basic("", key[:6] + "\x00" + key[7:])}),
        send("GET", "/api/1/users/$self/", headers={"Authorization": f"Bearer {token}"}),
        send("GET", "/api/1/users/$self/", headers={"Authorization": f"Bearer {bad_token}"}),
        send("GET", "/api/Log?callback=cb", headers={"ApiKey": key}),  # JSON-P: anonymous
        # A key in the URL is refused (and a client that sends one there has leaked it to every log on the way).
        send("GET", f"/api/Log?api_key={in_query}"),
        send("GET", f"/api/v1/events?token={in_query}"),
        send("GET", f"/api/1/users/$self/?access_token={in_query}"),
    ]
    assert answers == [200, 200, 200, 400, 404, 401, 403, 401, 401, 401, 200, 401, 401, 401, 401, 401]

    time.sleep(0.5)  # gunicorn writes its access log line after the answer
    text = log.read_text(errors="replace")
    assert text.count('"POST /api/Log HTTP/1.1" 200') == 1  # the access log is on
    assert "Unauthorized: /api/v1/events" in text  # and so is Django's request log
    assert "Bad Request: /api/Log" in text
    for raw in secrets_sent:
        for part in {raw, raw[12:] if raw.startswith("lsk_") else raw[8:]}:
            assert part not in text
    assert in_query in text  # the check above can see a key when there is one
