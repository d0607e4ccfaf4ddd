"""Logster's and Bytelog's one-item POSTs (/api/Log, /api/v1/events) under the ASGI server: the rows of concurrent
requests stored in one transaction (logsvc.groupcommit), each request answered only after the commit that
holds its row.

Only the plain case takes this path: one valid JSON item, with a valid key that has the write scope, in a body
sent as is. Anything else (a batch, XML, gzip, an `Idempotency-Key`, a method override, a CORS request, an
unusual Accept, a missing or bad key, a scope or a field at fault) is handed to Django, body and all, which
answers it as it always has: the checks and error envelopes stay in one place. A request over its rate limit
is counted here and answered here, as Django would answer it.
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

from events.models import Event, LogMessage, new_uid
from events.services import EVENT_COPY_COLUMNS
from events.validation import clean_event, clean_log_message
from logsvc import ratelimit
from logsvc.asgi import AsgiRequest, Receive, Send, read_body, run_sync, security_headers, send_response
from logsvc.auth import _recent_keys, raw_key_from_request, recently_seen_key
from logsvc.exceptions import error_body
from logsvc.groupcommit import GroupCommit, Unavailable
from logsvc.models import LAST_USED_RESOLUTION, ApiKey, hash_key

# What DRF's APIView adds to every answer of these views (Allow) and the renderer negotiation (Vary).
VIEW_HEADERS = [("Vary", "Accept, origin"), ("Allow", "GET, POST, HEAD, OPTIONS")]
LOG_COLUMNS = ("id", "owner_id", "message", "exception", "stack_trace", "severity", "category", "application", "user")


@dataclass(slots=True)
class Item:
    family: str  # "logster" or "bytelog"
    owner_id: int
    values: dict[str, Any]
    bucket: str = ""  # the key's rate-limit counter in PostgreSQL; "" when not counted here
    window: int = 0
    period: int = 1
    limit: int = 0


async def write_items(conn: psycopg.AsyncConnection, items: list[Item]) -> list[Any]:
    """Counters (committed first, as analytics.pixel.write_pixel_hits does), then the rows allowed: events by one
    COPY, log messages by one COPY with ids taken from their sequence first (the answer names them).
    Returns (count in the rate-limit window or None, the log message's id or None) per item."""
    counts: list[int | None] = [None] * len(items)
    if any(item.bucket for item in items):
        await conn.execute("SET LOCAL synchronous_commit = off")
        counts = await ratelimit.count_in_transaction(conn, items)
        await conn.commit()
    allowed = [item for item, count in zip(items, counts, strict=True) if count is None or count <= item.limit]
    now = timezone.now()
    ids: dict[int, int] = {}
    async with conn.cursor() as cursor:
        if events := [item for item in allowed if item.family == "bytelog"]:
            sql = f"COPY {Event._meta.db_table} ({', '.join(EVENT_COPY_COLUMNS)}) FROM STDIN"
            async with cursor.copy(sql) as copy:
                for item in events:
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
        if messages := [item for item in allowed if item.family == "logster"]:
            table = LogMessage._meta.db_table
            await cursor.execute(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)", [len(messages)]
            )
            for item, (new_id,) in zip(messages, await cursor.fetchall(), strict=True):
                ids[id(item)] = new_id
            columns = ", ".join(f'"{column}"' for column in (*LOG_COLUMNS, "created"))
            async with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for item in messages:
                    values = item.values
                    row = [ids[id(item)], item.owner_id, *(values.get(c, "") for c in LOG_COLUMNS[2:]), now]
                    row[5] = values["severity"]
                    await copy.write_row(row)
    return [(count, ids.get(id(item))) for item, count in zip(items, counts, strict=True)]


ingest_batcher = GroupCommit(write_items, name="ingest")


async def _key(raw: str) -> ApiKey | None:
    """logsvc.auth.recently_seen_key, from this process's memory when it can be (no query, no thread)."""
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl:
        seen = _recent_keys.get(hash_key(raw))
        if seen is not None and time.time() - seen[0] < ttl:
            return seen[1] if seen[1].is_usable() else None
    return await run_sync(recently_seen_key, raw)


def _plain(request: AsgiRequest) -> bool:
    """Whether the request is one the hot path may take: JSON sent as is, nothing Django must look at."""
    meta = request.META
    accept = meta.get("HTTP_ACCEPT", "*/*")
    return (
        request.method == "POST"
        and meta.get("CONTENT_TYPE", "").startswith("application/json")
        and meta.get("HTTP_CONTENT_ENCODING", "identity").strip().lower() == "identity"
        and "HTTP_TRANSFER_ENCODING" not in meta
        and meta.get("CONTENT_LENGTH", "").isdigit()
        and int(meta["CONTENT_LENGTH"]) <= settings.BODY_MAX_BYTES
        and not {"HTTP_IDEMPOTENCY_KEY", "HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_ORIGIN"} & meta.keys()
        and "_method" not in request.GET
        and accept in ("*/*", "application/json")
        and not (settings.SECURE_SSL_REDIRECT and not request.is_secure())
    )


async def post_log_message(request: AsgiRequest, receive: Receive, send: Send) -> bool:
    return await _post(request, receive, send, "logster", "logs:write")


async def post_event(request: AsgiRequest, receive: Receive, send: Send) -> bool:
    return await _post(request, receive, send, "bytelog", "events:write")


async def _post(request: AsgiRequest, receive: Receive, send: Send, family: str, scope: str) -> bool:
    """Store one item with group commit and answer as the view does; False hands the request to Django."""
    if not _plain(request):
        return False
    try:
        request.get_host()  # ALLOWED_HOSTS: Django answers a Host it refuses
        raw = raw_key_from_request(request)
    except (exceptions.AuthenticationFailed, DisallowedHost):  # a bad Basic header, a refused Host: Django's answers
        return False
    if raw is None:
        return False
    key = await _key(raw)
    if key is None or not key.user.is_active or scope not in key.scopes:
        return False
    body = await read_body(request, receive, settings.BODY_MAX_BYTES)
    if body is None:
        return False
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(data, dict):
        return False  # a batch (or a bare value): Django's
    values, errors = clean_log_message(data, "message") if family == "logster" else clean_event(data)
    if errors:
        return False
    if key.last_used is None or timezone.now() - key.last_used >= LAST_USED_RESOLUTION:
        await run_sync(key.touch)
    item = Item(family=family, owner_id=key.user_id, values=values)
    usage = None
    reset = 0
    if rate := settings.RATE_LIMITS.get(family):
        item.limit, item.period = ratelimit.parse_rate(rate)
        now = time.time()
        item.window = int(now // item.period)
        reset = max(1, math.ceil((item.window + 1) * item.period - now))
        bucket = f"{family}:key:{key.pk}"
        if settings.REDIS_URL:
            usage = _usage(item, await ratelimit.count_in_redis_async(bucket, item.window, item.period), reset)
            if not usage.allowed:
                await send_response(send, *throttled(request, family, usage))
                return True
        else:
            item.bucket = bucket
    try:
        count, message_id = await ingest_batcher.submit(item)
    except (Unavailable, psycopg.Error):
        body = orjson.dumps(error_body(family, 503, "The database is unavailable; try again."))
        headers = [("Content-Type", "application/json"), ("Retry-After", "1"), *security_headers(request)]
        await send_response(send, 503, headers, body)
        return True
    if count is not None:
        usage = _usage(item, count, reset)
        if not usage.allowed:
            await send_response(send, *throttled(request, family, usage))
            return True
    if family == "logster":
        headers = [("Content-Type", "application/json"), *VIEW_HEADERS]
        status, body = 200, orjson.dumps({"MessageId": str(message_id)})
    else:
        headers, status, body = list(VIEW_HEADERS), 201, b""  # no body, no Content-Type
    await send_response(send, status, [*headers, *_rate_headers(usage), *security_headers(request)], body)
    return True


def _usage(item: Item, count: int, reset: int) -> ratelimit.Usage:
    return ratelimit.Usage(
        limit=item.limit, remaining=max(item.limit - count, 0), reset=reset, allowed=count <= item.limit
    )


def _rate_headers(usage: ratelimit.Usage | None) -> list[tuple[str, str]]:
    if usage is None:
        return []
    return [
        ("X-Rate-Limit-Limit", str(usage.limit)),
        ("X-Rate-Limit-Remaining", str(usage.remaining)),
        ("X-Rate-Limit-Reset", str(usage.reset)),
    ]


def throttled(request: AsgiRequest, family: str, usage: ratelimit.Usage) -> tuple[int, list[tuple[str, str]], bytes]:
    """The 429 DRF's throttle answers, in the family's envelope."""
    detail = str(exceptions.Throttled(usage.reset).detail)
    body = orjson.dumps(error_body(family, 429, detail))
    headers = [
        ("Content-Type", "application/json"),
        ("Retry-After", str(usage.reset)),
        *VIEW_HEADERS,
        *_rate_headers(usage),
        *security_headers(request),
    ]
    return 429, headers, body
