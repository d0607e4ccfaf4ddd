"""Bytelog's one-event POST (/api/v1/events) under the ASGI server: the events of concurrent requests stored by one
COPY in one transaction (logsvc.groupcommit), each answered 201 only after the commit that holds its row.

Only the plain case takes this path: one valid JSON event, with a valid key that has `events:write`, in a
body sent as is. Anything else (a batch, gzip, an `Idempotency-Key`, a method override, a CORS request, a
missing or bad key, a scope or a field at fault) is handed to Django, body and all, which answers it as it
always has: its checks and error envelopes stay in one place. A request over its rate limit is counted here
and answered here, as Django would answer it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.utils import timezone
from rest_framework import exceptions

from events.models import Event, new_uid
from events.services import EVENT_COPY_COLUMNS
from events.validation import clean_event
from logsvc import ratelimit
from logsvc.asgi import AsgiRequest, Receive, Send, read_body, run_sync, security_headers, send_response
from logsvc.auth import _recent_keys, raw_key_from_request, recently_seen_key
from logsvc.exceptions import error_body
from logsvc.groupcommit import GroupCommit, Unavailable
from logsvc.models import LAST_USED_RESOLUTION, ApiKey, hash_key

# What DRF's APIView adds to every answer of EventListView (Allow) and the renderer negotiation (Vary).
VIEW_HEADERS = [("Vary", "Accept, origin"), ("Allow", "GET, POST, HEAD, OPTIONS")]


@dataclass(slots=True)
class EventItem:
    owner_id: int
    values: dict[str, Any]
    bucket: str = ""  # the key's rate-limit counter in PostgreSQL; "" when not counted here
    window: int = 0
    period: int = 1
    limit: int = 0


async def write_events(conn: psycopg.AsyncConnection, items: list[EventItem]) -> list[Any]:
    """Counters (committed first, as analytics.pixel.write_pixel_hits does), then one COPY of the events allowed."""
    counts: list[int | None] = [None] * len(items)
    if any(item.bucket for item in items):
        await conn.execute("SET LOCAL synchronous_commit = off")
        counts = await ratelimit.count_in_transaction(conn, items)
        await conn.commit()
    now = timezone.now()
    rows = [item for item, count in zip(items, counts, strict=True) if count is None or count <= item.limit]
    if rows:
        sql = f"COPY {Event._meta.db_table} ({', '.join(EVENT_COPY_COLUMNS)}) FROM STDIN"
        async with conn.cursor() as cursor, cursor.copy(sql) as copy:
            for item in rows:
                values = item.values
                client_id = values["client_id"]
                await copy.write_row(
                    (
                        item.owner_id,
                        new_uid(),
                        None if client_id is None else orjson.dumps(client_id).decode(),
                        values["name"],
                        values["trace_id"],
                        values.get("date") or now,
                        values["data_json"].decode(),
                        len(values["data_json"]),
                        now,
                    )
                )
    return counts


events_batcher = GroupCommit(write_events, name="bytelog")


async def _key(raw: str) -> ApiKey | None:
    """logsvc.auth.recently_seen_key, from this process's memory when it can be (no query, no thread)."""
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl:
        seen = _recent_keys.get(hash_key(raw))
        if seen is not None and time.time() - seen[0] < ttl:
            return seen[1] if seen[1].is_usable() else None
    return await run_sync(recently_seen_key, raw)


async def post_event(request: AsgiRequest, receive: Receive, send: Send) -> bool:
    """Store one event with group commit and answer 201; False hands the request to Django."""
    meta = request.META
    if (
        request.method != "POST"
        or not meta.get("CONTENT_TYPE", "").startswith("application/json")
        or meta.get("HTTP_CONTENT_ENCODING", "identity").strip().lower() != "identity"
        or "HTTP_TRANSFER_ENCODING" in meta
        or not meta.get("CONTENT_LENGTH", "").isdigit()
        or "HTTP_IDEMPOTENCY_KEY" in meta
        or "HTTP_X_HTTP_METHOD_OVERRIDE" in meta
        or "HTTP_ORIGIN" in meta
        or "_method" in request.GET
        or (settings.SECURE_SSL_REDIRECT and not request.is_secure())
    ):
        return False
    try:
        request.get_host()  # ALLOWED_HOSTS: Django answers a Host it refuses
        raw = raw_key_from_request(request)
    except (exceptions.AuthenticationFailed, DisallowedHost):  # a bad Basic header, a refused Host: Django's answers
        return False
    if raw is None:
        return False
    key = await _key(raw)
    if key is None or not key.user.is_active or "events:write" not in key.scopes:
        return False
    if int(meta["CONTENT_LENGTH"]) > settings.BODY_MAX_BYTES:
        return False
    body = await read_body(request, receive, settings.BODY_MAX_BYTES)
    if body is None:
        return False
    try:
        item = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(item, dict):
        return False  # a batch (or a bare value): Django's
    values, errors = clean_event(item)
    if errors:
        return False
    if key.last_used is None or timezone.now() - key.last_used >= LAST_USED_RESOLUTION:
        await run_sync(key.touch)
    event = EventItem(owner_id=key.user_id, values=values)
    usage = None
    reset = 0
    if rate := settings.RATE_LIMITS.get("bytelog"):
        event.limit, event.period = ratelimit.parse_rate(rate)
        now = time.time()
        event.window = int(now // event.period)
        reset = max(1, math.ceil((event.window + 1) * event.period - now))
        bucket = f"bytelog:key:{key.pk}"
        if settings.REDIS_URL:
            count = await ratelimit.count_in_redis_async(bucket, event.window, event.period)
            usage = _usage(event, count, reset)
            if not usage.allowed:
                await send_response(send, *throttled(request, usage))
                return True
        else:
            event.bucket = bucket
    try:
        count = await events_batcher.submit(event)
    except (Unavailable, psycopg.Error):
        return await _unavailable(request, send)
    if count is not None:
        usage = _usage(event, count, reset)
        if not usage.allowed:
            await send_response(send, *throttled(request, usage))
            return True
    headers = [*VIEW_HEADERS, *_rate_headers(usage), *security_headers(request)]  # no body, no Content-Type
    await send_response(send, 201, headers, b"")
    return True


def _usage(event: EventItem, count: int, reset: int) -> ratelimit.Usage:
    return ratelimit.Usage(
        limit=event.limit, remaining=max(event.limit - count, 0), reset=reset, allowed=count <= event.limit
    )


def _rate_headers(usage: ratelimit.Usage | None) -> list[tuple[str, str]]:
    if usage is None:
        return []
    return [
        ("X-Rate-Limit-Limit", str(usage.limit)),
        ("X-Rate-Limit-Remaining", str(usage.remaining)),
        ("X-Rate-Limit-Reset", str(usage.reset)),
    ]


def throttled(request: AsgiRequest, usage: ratelimit.Usage) -> tuple[int, list[tuple[str, str]], bytes]:
    """The 429 DRF's throttle answers, in Bytelog's envelope."""
    detail = str(exceptions.Throttled(usage.reset).detail)
    body = orjson.dumps(error_body("bytelog", 429, detail))
    headers = [
        ("Content-Type", "application/json"),
        ("Retry-After", str(usage.reset)),
        *VIEW_HEADERS,
        *_rate_headers(usage),
        *security_headers(request),
    ]
    return 429, headers, body


async def _unavailable(request: AsgiRequest, send: Send) -> bool:
    body = orjson.dumps(error_body("bytelog", 503, "The database is unavailable; try again."))
    headers = [("Content-Type", "application/json"), ("Retry-After", "1"), *security_headers(request)]
    await send_response(send, 503, headers, body)
    return True
