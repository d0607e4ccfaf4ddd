"""Baseline ASGI apps for bench/group_commit.py, served by the same gunicorn + uvicorn workers as logsvc.asgi:

- hello: a bare ASGI answer, the server's own ceiling;
- ceiling: the least a durable pixel hit costs in Python here: parse the query, group commit (concurrent hits
  share one COPY and one commit), answer the GIF after the commit; POST with a JSON body is its JSON twin;
- django_async: Django's own ASGI handler, logsvc's settings and middleware, an async view that answers a GIF
  without storing anything: the ceiling of a pixel written as a Django async view.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import psycopg

GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
GIF_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", b"43"), (b"cache-control", b"no-store")]
CEILING_TABLES = """
CREATE TABLE IF NOT EXISTS bench_ceiling_hit (id bigserial PRIMARY KEY, path text, title text, ref text, size int,
    user_agent text, created timestamptz);
CREATE TABLE IF NOT EXISTS bench_ceiling_event (id bigserial PRIMARY KEY, name text, trace_id text, data jsonb,
    created timestamptz);
"""


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


class Batcher:
    """The whole of group commit, minimal: the rows waiting go in one COPY and one commit per turn."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, tuple, asyncio.Future]] = []
        self.wakeup: asyncio.Event | None = None
        self.conn: psycopg.AsyncConnection | None = None

    async def add(self, table: str, row: tuple) -> None:
        if self.wakeup is None:
            self.wakeup = asyncio.Event()
            asyncio.get_running_loop().create_task(self.run())
        future = asyncio.get_running_loop().create_future()
        self.pending.append((table, row, future))
        self.wakeup.set()
        await future

    async def run(self) -> None:
        assert self.wakeup is not None  # add() made it before this task
        self.conn = await psycopg.AsyncConnection.connect(os.environ["CEILING_DATABASE_URL"])
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    async with self.conn.cursor() as cursor:
                        for table in {table for table, _, _ in batch}:
                            async with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                                for t, row, _ in batch:
                                    if t == table:
                                        await copy.write_row(row)
                    await self.conn.commit()
                except (psycopg.Error, ValueError) as error:
                    for _, _, future in batch:
                        future.set_exception(error)
                else:
                    for _, _, future in batch:
                        future.set_result(None)


batcher = Batcher()


async def ceiling(scope, receive, send):
    if scope["type"] != "http":
        return
    now = datetime.now(UTC)
    if scope["method"] == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        item = json.loads(body)
        row = (item["name"], item.get("trace_id", ""), json.dumps(item.get("data", {})), now)
        await batcher.add("bench_ceiling_event (name, trace_id, data, created)", row)
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    query = dict(parse_qsl(scope["query_string"].decode()))
    user_agent = dict(scope["headers"]).get(b"user-agent", b"").decode()
    size = int(query["s"].split(",")[0]) if query.get("s", "").split(",")[0].isdigit() else None
    row = (query.get("p", ""), query.get("t", ""), query.get("r", ""), size, user_agent, now)
    await batcher.add("bench_ceiling_hit (path, title, ref, size, user_agent, created)", row)
    await send({"type": "http.response.start", "status": 200, "headers": GIF_HEADERS})
    await send({"type": "http.response.body", "body": GIF})


def _django_async():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


class LazyDjango:
    app = None

    async def __call__(self, scope, receive, send):
        if self.app is None:
            self.app = _django_async()
        await self.app(scope, receive, send)


django_async = LazyDjango()
