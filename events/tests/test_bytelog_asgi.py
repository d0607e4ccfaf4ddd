"""POST /api/v1/events as the ASGI server serves it (events.asgi, logsvc.asgi): one valid event is stored with group
commit; every other request is Django's, body and all. Each answer is compared with the Django view's.

The hot path writes through a connection of its own, so these tests commit (transaction=True), as production does.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import orjson
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import make_key, run_coroutine
from events import asgi as events_asgi
from events.models import Event
from logsvc.asgi import application, close_lookup_connections

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/events"
EVENT = {"id": 1, "name": "click", "trace_id": "03775690", "date": "2021-07-04 13:34:56", "data": {"on": "signup"}}


@pytest.fixture(autouse=True)
def _cleanup():
    yield
    events_asgi.ingest_batcher.forget()  # its loop is gone with the test's asyncio.run
    close_lookup_connections()


async def call(body: bytes, headers: dict[str, str], path: str = URL) -> tuple[int, dict[str, str], bytes]:
    """One POST to the ASGI application, in this process: (status, headers, body)."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-length", str(len(body)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
    }
    sent: list[dict] = []
    chunks = [body]

    async def receive() -> dict:
        return {"type": "http.request", "body": chunks.pop() if chunks else b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await application(scope, receive, send)
    head = {name.decode().lower(): value.decode() for name, value in sent[0]["headers"]}
    return sent[0]["status"], head, b"".join(m.get("body", b"") for m in sent[1:])


def run(*calls):
    async def together():
        return await asyncio.gather(*calls)

    return run_coroutine(together())


def stored() -> list[tuple]:
    return list(Event.objects.order_by("id").values_list("owner__username", "client_id", "name", "trace_id", "data"))


def django_answer(body: bytes, headers: dict[str, str], path: str = URL):
    meta: dict[str, Any] = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"
    }
    return APIClient().post(path, body, content_type=headers.get("Content-Type", "application/json"), **meta)


def assert_same(asgi: tuple, django) -> None:
    status, head, body = asgi
    assert (status, body) == (django.status_code, django.content)
    assert_same_headers(head, django)


def assert_same_headers(head: dict[str, str], django) -> None:
    """The ASGI path's headers are Django's (bar those each server writes itself)."""
    ignore = {"content-length", "date", "server"}
    assert set(head) - ignore == {name.lower() for name in django.headers} - ignore
    for name in ("content-type", "allow", "vary", "retry-after", "x-rate-limit-remaining"):
        assert head.get(name) == django.get(name), name


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        (EVENT, {}),  # the hot path
        ({"trace_id": "t1"}, {}),  # no name: Django's 400
        ([EVENT, {**EVENT, "id": 2}], {}),  # a batch: Django's
        (EVENT, {"Authorization": "Bearer lsk_not_a_real_key_at_all"}),  # Django's 401
        (EVENT, {"Authorization": ""}),  # no key: Django's 401
        (EVENT, {"Idempotency-Key": "k-1"}),  # Django's, which keeps the answer for retries
        (b'{"name": "click",', {}),  # not JSON: Django's 400
    ],
    ids=["one-event", "invalid", "batch", "bad-key", "no-key", "idempotency-key", "broken-json"],
)
def test_it_answers_as_the_django_view_does(settings, alice, body, extra):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "bytelog": ""}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice)}", **extra}
    headers = {name: value for name, value in headers.items() if value}
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    django = django_answer(raw, headers)
    rows = stored()
    Event.objects.all().delete()
    if "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = "k-2"  # a key of its own: a reuse would be a replay
    assert_same(run(call(raw, headers))[0], django)
    assert stored() == rows


def test_a_key_without_the_scope_gets_djangos_403(alice):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice, 'events:read')}"}
    status, _, body = run(call(orjson.dumps(EVENT), headers))[0]
    assert status == 403
    assert orjson.loads(body) == {"error": "This API key lacks the 'events:write' scope this request needs."}
    assert stored() == []


def test_a_gzip_body_is_djangos_and_stored(alice):
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Authorization": f"Bearer {make_key(alice)}",
    }
    status, _, _ = run(call(gzip.compress(orjson.dumps(EVENT)), headers))[0]
    assert status == 201
    assert [row[2] for row in stored()] == ["click"]


def test_concurrent_events_share_a_commit(alice):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice)}"}
    before = events_asgi.ingest_batcher.batches
    answers = run(*(call(orjson.dumps({**EVENT, "id": n}), headers) for n in range(20)))
    assert [status for status, _, _ in answers] == [201] * 20
    assert sorted(row[1] for row in stored()) == list(range(20))
    assert events_asgi.ingest_batcher.batches - before < 20


def test_the_rate_limit_is_counted_in_the_batch_and_answered_as_django_does(settings, alice, time_machine):
    time_machine.move_to(timezone.now(), tick=False)  # both answers' Retry-After, counted in the same second
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "bytelog": "2/3600"}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice)}"}
    answers = run(*(call(orjson.dumps(EVENT), headers) for _ in range(3)))
    assert sorted(status for status, _, _ in answers) == [201, 201, 429]
    assert len(stored()) == 2
    [too_many] = [answer for answer in answers if answer[0] == 429]
    assert_same(too_many, django_answer(orjson.dumps(EVENT), headers))  # the key's third and fourth: both 429
    assert len(stored()) == 2


def test_a_lost_connection_answers_503_and_stores_nothing(alice):
    from analytics.tests.test_pixel_asgi import terminate_group_commit_connections

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice)}"}

    async def scenario():
        first = await call(orjson.dumps(EVENT), headers)
        await asyncio.to_thread(terminate_group_commit_connections)
        lost = await call(orjson.dumps({**EVENT, "id": "lost"}), headers)
        after = await call(orjson.dumps({**EVENT, "id": "after"}), headers)
        return first, lost, after

    first, lost, after = run_coroutine(scenario())
    assert (first[0], lost[0], after[0]) == (201, 503, 201)
    assert orjson.loads(lost[2]) == {"error": "The database is unavailable; try again."}
    assert [row[1] for row in stored()] == [1, "after"]
