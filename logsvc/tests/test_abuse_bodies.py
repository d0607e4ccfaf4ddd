"""Hostile bodies at every ingestion family and at the littlelogs writes: a clear 4xx in the family's own
envelope, and nothing stored.

test_bodies.py covers the size cap and gzip at Logster and Bytelog, test_logster_post.py the XML entity
attacks (billion laughs, external entities, DTDs); this file the other families and attacks, and, over a
real gunicorn and a raw socket, what the Django test client cannot send: chunked uploads, request-smuggling
shapes and slow clients.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
import pytest
import requests
from django.db import models
from rest_framework.test import APIClient

from analytics.models import Hit, Site
from analytics.tests.test_ratelimit_processes import server_env, start_servers
from conftest import make_key
from events.models import Event, LogMessage
from social.models import Log
from social.tests.conftest import access_token

TIMEOUT = 4  # gunicorn's --timeout for the server below: a worker silent this long is killed and replaced
GRACE = 20  # for the arbiter to notice and a new worker to boot, on a busy machine; well short of a slow client


@dataclass(frozen=True)
class Family:
    path: str
    content_type: str
    body: bytes  # a valid body, stored when sent plainly; its text "hi" is where the tests put theirs
    model: type[models.Model]  # where it is stored

    def with_text(self, text: bytes) -> bytes:
        return self.body.replace(b"hi", text)


FAMILIES = {
    "logster": Family("/api/Log", "application/json", b'{"Message": "hi", "Severity": 1}', LogMessage),
    "logster-xml": Family(
        "/api/Log",
        "application/xml",
        b"<LogMessage><Message>hi</Message><Severity>1</Severity></LogMessage>",
        LogMessage,
    ),
    "bytelog": Family("/api/v1/events", "application/json", b'{"name": "hi"}', Event),
    "goatcounter": Family(
        "/api/v0/count", "application/json", b'{"no_sessions": true, "hits": [{"path": "/hi"}]}', Hit
    ),
    "littlelogs": Family("/api/1/logs/create/", "application/json", b'{"content": "hi"}', Log),
    "littlelogs-form": Family("/api/1/logs/create/", "application/x-www-form-urlencoded", b"content=hi", Log),
}
JSON_FAMILIES = ["logster", "bytelog", "goatcounter", "littlelogs"]


@pytest.fixture
def secrets_of_alice(alice) -> dict[str, str]:
    """The bearer credential each family takes: alice's API key (with a site to count for), or her token."""
    Site.objects.create(code="alice-blog", owner=alice)
    key, token = make_key(alice), access_token(alice)
    return {name: token if name.startswith("littlelogs") else key for name in FAMILIES}


def post(secrets_of_alice: dict[str, str], family: str, body: bytes, content_type: str = "", **meta: Any) -> Any:
    spec = FAMILIES[family]
    return APIClient().generic(
        "POST",
        spec.path,
        body,  # type: ignore[arg-type]  # Django's generic() takes bytes too; the stubs say str
        content_type or spec.content_type,
        HTTP_AUTHORIZATION=f"Bearer {secrets_of_alice[family]}",
        **meta,
    )


def error_of(family: str, body: dict[str, Any]) -> str:
    """The message of an error answer, once its shape is checked to be the family's envelope."""
    if family.startswith("logster"):
        assert set(body) <= {"Message", "ModelState"}, body
        return body["ModelState"]["message"][0] if "ModelState" in body else body["Message"]
    if family == "bytelog":
        assert set(body) <= {"error", "details"}, body
        return body["details"]["body"][0] if "details" in body else body["error"]
    assert list(body) == ["error" if family == "goatcounter" else "detail"], body
    return next(iter(body.values()))


def stored(family: str) -> int:
    return FAMILIES[family].model._default_manager.count()


@cache
def gzip_bomb() -> bytes:
    """50 MB of spaces (valid JSON and XML padding) in about 50 kB."""
    return gzip.compress(b" " * (50 * 1024 * 1024), compresslevel=9)


# --- The Django test client: what a body holds ----------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_the_plain_body_is_stored(secrets_of_alice, family):
    """The control for every "nothing stored" below: the same request with a good body stores one row."""
    r = post(secrets_of_alice, family, FAMILIES[family].body)
    assert r.status_code in (200, 201, 202), r.content
    assert stored(family) == 1


@pytest.mark.parametrize("family", ["goatcounter", "littlelogs", "littlelogs-form"])
def test_a_body_over_the_cap_is_a_413(secrets_of_alice, settings, family):
    settings.BODY_MAX_BYTES = 1000
    body = FAMILIES[family].with_text(b"x" * 1000)
    r = post(secrets_of_alice, family, body)
    assert r.status_code == 413
    assert error_of(family, r.json()).startswith(f"The request body is {len(body)} bytes; the limit is 1000 bytes.")
    assert stored(family) == 0


@pytest.mark.parametrize("family", ["logster-xml", "goatcounter", "littlelogs", "littlelogs-form"])
def test_a_gzip_bomb_is_a_413(secrets_of_alice, settings, family):
    settings.BODY_MAX_DECOMPRESSED_BYTES = 1024 * 1024
    r = post(secrets_of_alice, family, gzip_bomb(), HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 413
    assert (
        error_of(family, r.json()) == "The body inflates past the limit of 1048576 bytes. Send fewer items per request."
    )
    assert stored(family) == 0


@pytest.mark.parametrize("family", JSON_FAMILIES)
@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000], ids=["arrays", "objects"])
def test_deeply_nested_json_is_a_400(secrets_of_alice, family, body):
    r = post(secrets_of_alice, family, body)
    assert r.status_code == 400
    assert error_of(family, r.json()).startswith("JSON parse error - depth limit exceeded")
    assert stored(family) == 0


def test_deeply_nested_xml_is_a_400(secrets_of_alice):
    r = post(secrets_of_alice, "logster-xml", b"<a>" * 100_000 + b"</a>" * 100_000)
    assert r.status_code == 400
    assert error_of("logster", r.json()) == "The XML has more than 20000 elements."
    assert stored("logster") == 0


def test_a_gzipped_billion_laughs_is_a_400(secrets_of_alice):
    lol = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10))
    body = f"<?xml version='1.0'?><!DOCTYPE LogMessage [{lol}]><LogMessage><Message>&l9;</Message></LogMessage>"
    r = post(secrets_of_alice, "logster-xml", gzip.compress(body.encode()), HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 400
    assert error_of("logster", r.json()) == "XML with a DTD, entities or external references is not accepted."
    assert stored("logster") == 0


@pytest.mark.parametrize("family", ["goatcounter", "littlelogs"])
def test_xml_at_a_json_only_family_is_a_415(secrets_of_alice, family):
    r = post(secrets_of_alice, family, FAMILIES["logster-xml"].body, "application/xml")
    assert r.status_code == 415
    assert error_of(family, r.json()) == 'Unsupported media type "application/xml" in request.'
    assert stored(family) == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_invalid_utf8_is_a_400(secrets_of_alice, family):
    message = {
        "logster-xml": "XML parse error - not well-formed (invalid token)",
        "littlelogs-form": "The form body is not valid UTF-8.",
    }.get(family, "JSON parse error - str is not valid UTF-8")
    r = post(secrets_of_alice, family, FAMILIES[family].with_text(b"caf\xe9"))  # Latin-1's é
    assert r.status_code == 400
    assert error_of(family, r.json()).startswith(message)
    assert stored(family) == 0


def test_invalid_utf8_percent_encoded_in_a_form_is_a_400(secrets_of_alice):
    """Django would decode %E9 to U+FFFD and the log would say "caf\ufffd"."""
    r = post(secrets_of_alice, "littlelogs-form", b"content=caf%E9")
    assert r.status_code == 400
    assert r.json() == {"detail": "The form body is not valid UTF-8."}
    assert stored("littlelogs") == 0
    assert post(secrets_of_alice, "littlelogs-form", b"content=caf%C3%A9").status_code == 201
    assert Log.objects.get().content == "<p>café</p>"


@pytest.mark.parametrize("family", JSON_FAMILIES)
def test_a_lone_surrogate_escape_is_a_400(secrets_of_alice, family):
    """\\ud800 is valid JSON syntax but no character: PostgreSQL could not store it."""
    r = post(secrets_of_alice, family, FAMILIES[family].with_text(b"\\ud800"))
    assert r.status_code == 400
    assert error_of(family, r.json()).startswith("JSON parse error - ")
    assert stored(family) == 0


# --- A real server over a raw socket: chunked uploads, smuggling shapes, slow clients ----------------------


@pytest.fixture(scope="module")
def server(request, django_db_setup) -> str:
    """One gunicorn with 2 uvicorn workers, a short --timeout and REQUEST_BODY_TIMEOUT, as a deployment runs it."""
    env = server_env(LOG_LEVEL="CRITICAL", REQUEST_BODY_TIMEOUT=str(TIMEOUT))  # 4xx answers would each log a warning
    return start_servers(request, 1, env, workers=2, args=(f"--timeout={TIMEOUT}",))[0]


def raw_request(base: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send one request as written over a plain socket; the answer's status and body."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def head_for(family: str, secret: str, *headers: str) -> str:
    spec = FAMILIES[family]
    lines = [f"POST {spec.path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {secret}"]
    return "\n".join([*lines, f"Content-Type: {spec.content_type}", *headers]) + "\n"


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_chunked_upload_is_a_411_and_the_same_body_with_a_length_is_stored(
    server, transactional_db, secrets_of_alice, family
):
    body, secret = FAMILIES[family].body, secrets_of_alice[family]
    status, answer = raw_request(server, head_for(family, secret, "Transfer-Encoding: chunked"), chunked(body))
    assert status == 411
    assert error_of(family, orjson.loads(answer)) == "Send the request with a Content-Length header, not chunked."
    assert stored(family) == 0

    status, _ = raw_request(server, head_for(family, secret, f"Content-Length: {len(body)}"), body)
    assert status in (200, 201, 202)
    assert stored(family) == 1


@pytest.mark.parametrize(
    "headers",
    [
        ("Transfer-Encoding: chunked", "Content-Length: 22"),
        ("Content-Length: 17", "Content-Length: 18"),
        ("Content-Length: -1",),
        ("Transfer-Encoding: identity",),
    ],
    ids=["chunked-and-length", "two-lengths", "negative-length", "unknown-transfer-encoding"],
)
def test_request_smuggling_shapes_are_refused_by_the_server(server, transactional_db, secrets_of_alice, headers):
    """Ambiguous framing never reaches Django: the HTTP server answers its own 400 and closes."""
    body = FAMILIES["bytelog"].body
    status, _ = raw_request(server, head_for("bytelog", secrets_of_alice["bytelog"], *headers), chunked(body))
    assert status == 400
    assert stored("bytelog") == 0


class SlowClient(threading.Thread):
    """Sends a request a byte every half second, headers (slowloris) or body; notes how the server ends it."""

    def __init__(self, base: str, request: bytes, slow_from: int) -> None:
        super().__init__(daemon=True)
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.request, self.slow_from = request, slow_from
        self.answer: bytes | None = None
        self.held = 0.0  # seconds the server kept the connection open

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.sock.sendall(self.request[: self.slow_from])
            for byte in self.request[self.slow_from :]:
                time.sleep(0.5)
                self.sock.sendall(bytes([byte]))
            self.answer = self.sock.recv(65536)  # only if the server waited for all of it
        except OSError:
            self.answer = b""  # closed (reset or broken pipe) under the trickle
        finally:
            self.held = time.monotonic() - started
            self.sock.close()


def test_slow_clients_hold_no_worker_and_a_body_late_past_the_timeout_is_a_408(
    server, transactional_db, secrets_of_alice
):
    """The uvicorn workers read requests on their event loop: a client that trickles its body or its headers
    holds a connection, never a worker, so everyone else is answered at once, however many such clients come.
    A body not whole within REQUEST_BODY_TIMEOUT is answered 408 and nothing of it is stored (README,
    "Running in production")."""
    body = b'{"name": "slow", "data": {"padding": "' + b"x" * 200 + b'"}}'  # 2 minutes at 2 bytes a second
    head = head_for("bytelog", secrets_of_alice["bytelog"], f"Content-Length: {len(body)}").replace("\n", "\r\n")
    request = head.encode() + b"\r\n" + body

    slow = [SlowClient(server, request, slow_from=len(request) - len(body) + 1) for _ in range(3)]
    slowloris = [SlowClient(server, request, slow_from=20) for _ in range(3)]  # the headers, a byte at a time
    for client in slow + slowloris:
        client.start()
    time.sleep(1)  # more slow clients than the 2 workers, all under way
    for _ in range(3):
        started = time.monotonic()
        assert requests.get(f"{server}/healthz", timeout=15).status_code == 200
        assert time.monotonic() - started < TIMEOUT / 2  # not waiting for any of them

    for client in slow:
        client.join(timeout=TIMEOUT + GRACE)
        assert not client.is_alive()
        # 408, or cut off while still trickling once the server had answered and closed
        assert client.answer == b"" or client.answer.startswith(b"HTTP/1.1 408")
        assert client.held < TIMEOUT + GRACE
    for client in slowloris:
        client.sock.shutdown(socket.SHUT_RDWR)  # a connection each, for as long as they like: ours ends them
        client.join(timeout=10)
    assert stored("bytelog") == 0
