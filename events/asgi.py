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

from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.utils import timezone

from events import rollups
from events.models import Event, LogMessage, new_uid
from events.services import EVENT_COPY_COLUMNS
from events.validation import clean_event, clean_log_message
from logsvc import ratelimit
from logsvc.asgi import AsgiRequest, Receive, Send, security_headers, send_response
from logsvc.groupcommit import GroupCommit, Unavailable
from logsvc.hotpath import count_rate, item_usage, note_use, rate_headers, read_json_post, throttled, unavailable

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
    """Counters (committed first, as analytics.pixel.write_hits does), then the rows allowed: events by one
    COPY, log messages by one COPY with ids taken from their sequence first (the answer names them).
    Returns (count in the rate-limit window or None, the log message's id or None) per item."""
    counts = await ratelimit.count_and_commit(conn, items)
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


async def post_log_message(request: AsgiRequest, receive: Receive, send: Send) -> bool:
    return await _post(request, receive, send, "logster", "logs:write")


async def post_event(request: AsgiRequest, receive: Receive, send: Send) -> bool:
    return await _post(request, receive, send, "bytelog", "events:write")


async def _post(request: AsgiRequest, receive: Receive, send: Send, family: str, scope: str) -> bool:
    """Store one item with group commit and answer as the view does; False hands the request to Django."""
    if (read := await read_json_post(request, receive, scope)) is None:
        return False
    key, data = read
    if not isinstance(data, dict):
        return False  # a batch (or a bare value): Django's
    values, errors = clean_log_message(data, "message") if family == "logster" else clean_event(data)
    if errors:
        return False
    await note_use(key)
    item = Item(family=family, owner_id=key.user_id, values=values)
    usage, reset = None, 0
    if rate := settings.RATE_LIMITS.get(family):
        usage, reset = await count_rate(item, f"{family}:key:{key.pk}", rate)
        if usage is not None and not usage.allowed:
            await send_response(send, *throttled(request, family, usage, VIEW_HEADERS))
            return True
    try:
        count, message_id = await ingest_batcher.submit(item)
    except (Unavailable, psycopg.Error):
        await send_response(send, *unavailable(request, family))
        return True
    if count is not None:
        usage = item_usage(item, count, reset)
        if not usage.allowed:
            await send_response(send, *throttled(request, family, usage, VIEW_HEADERS))
            return True
    rollups.schedule_roll_up.from_event_loop()
    if family == "logster":
        headers = [("Content-Type", "application/json"), *VIEW_HEADERS]
        status, body = 200, orjson.dumps({"MessageId": str(message_id)})
    else:
        headers, status, body = list(VIEW_HEADERS), 201, b""  # no body, no Content-Type
    await send_response(send, status, [*headers, *rate_headers(usage), *security_headers(request)], body)
    return True
