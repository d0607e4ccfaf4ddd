"""Fixed-window rate limits whose counters every process shares: Redis when REDIS_URL is set, else PostgreSQL.

When Redis does not answer (down, unreachable, refusing us), a request is counted in PostgreSQL instead, as
without Redis, and Redis is left alone for REDIS_RETRY_SECONDS: a cache going away costs nobody an answer.
During the switch a window's count is split over both, so a client may get up to twice its limit once.

A view opts in with `throttle_scope`; settings.RATE_LIMITS maps a scope to "requests/seconds". Usage is
counted per API key (per user for a session, per IP when anonymous). RateLimitHeadersMiddleware writes the
X-Rate-Limit-* headers; DRF answers 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from logsvc.models import ApiKey, RateLimitCounter


@dataclass(frozen=True)
class Usage:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends
    allowed: bool


def parse_rate(rate: str) -> tuple[int, int]:
    """ "60/120" -> (60, 120): 60 requests per 120 seconds."""
    count, _, seconds = rate.partition("/")
    return int(count), int(seconds or 1)


logger = logging.getLogger(__name__)

REDIS_TIMEOUT = 0.5  # seconds to connect or to answer: Redis answers in well under a millisecond when it is up
REDIS_RETRY_SECONDS = 5.0
_redis_down_until: dict[str, float] = {}  # REDIS_URL -> when to try it again


def use_redis() -> bool:
    """Whether to count in Redis now: it is configured and has not just failed."""
    url = settings.REDIS_URL
    return bool(url) and time.monotonic() >= _redis_down_until.get(url, 0.0)


def redis_failed(error: Exception) -> None:
    """Count in PostgreSQL for the next REDIS_RETRY_SECONDS, and say so once per failure."""
    _redis_down_until[settings.REDIS_URL] = time.monotonic() + REDIS_RETRY_SECONDS
    logger.warning(
        "Redis at REDIS_URL failed (%s: %s); rate limits are counted in PostgreSQL, and Redis is tried again in %.0f s",
        type(error).__name__, error, REDIS_RETRY_SECONDS,
    )  # fmt: skip


@cache
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)


def _count_in_redis(bucket: str, window: int, period: int) -> int:
    key = f"ratelimit:{bucket}:{window}"
    client = _redis(settings.REDIS_URL)
    count = int(client.incr(key))
    if count == 1:  # the window's first request sets its expiry (one round trip on all the others)
        client.expire(key, period + 1)
    return count


def _count_in_postgres(bucket: str, window: int, period: int) -> int:
    table = RateLimitCounter._meta.db_table
    expires = datetime.fromtimestamp((window + 1) * period, tz=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, window_start, count, expires) VALUES (%s, %s, 1, %s) "
            f"ON CONFLICT (key, window_start) DO UPDATE SET count = {table}.count + 1 RETURNING count",
            [bucket, window, expires],
        )
        count = cursor.fetchone()[0]
        if count == 1:  # a new window: the bucket's older ones are done with
            cursor.execute(f"DELETE FROM {table} WHERE key = %s AND window_start < %s", [bucket, window])
    return count


def consume(bucket: str, rate: str) -> Usage:
    """Count one request against bucket and say whether it is within rate."""
    limit, period = parse_rate(rate)
    now = time.time()
    window = int(now // period)
    count = None
    if use_redis():
        import redis

        try:
            count = _count_in_redis(bucket, window, period)
        except redis.RedisError as error:
            redis_failed(error)
    if count is None:
        count = _count_in_postgres(bucket, window, period)
    reset = max(1, math.ceil((window + 1) * period - now))
    return Usage(limit=limit, remaining=max(limit - count, 0), reset=reset, allowed=count <= limit)


class ScopedKeyThrottle(BaseThrottle):
    """Limits a view with a `throttle_scope` to settings.RATE_LIMITS[scope]."""

    usage: Usage | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = getattr(view, "throttle_scope", None)
        rate = settings.RATE_LIMITS.get(scope) if scope else None
        if not rate:
            return True
        if isinstance(request.auth, ApiKey):
            who = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            who = f"user:{request.user.pk}"
        else:
            who = f"ip:{self.get_ident(request)}"
        self.usage = consume(f"{scope}:{who}", rate)
        request._request.rate_limit = self.usage  # type: ignore[attr-defined]  # ours, for RateLimitHeadersMiddleware
        return self.usage.allowed

    def wait(self) -> float | None:
        return self.usage.reset if self.usage else None


# --- the ASGI server's hot paths (logsvc.asgi): counted in a batch's transaction, or in Redis without blocking


async def count_and_commit(conn: psycopg.AsyncConnection, items: list[Any]) -> list[int | None]:
    """_count_in_postgres for a batch of group commit (logsvc.groupcommit), committed: one upsert per bucket and
    window, whose new count is handed out to the batch's requests in their order. Each item has `bucket` ("" when
    not counted), `window` and `period`.

    The counters commit on their own and without waiting for the disk (a count lost in a crash costs nothing),
    before the batch's rows: a counter row stays locked only for its upsert, not for the rows' COPY and fsync, so
    the batches of two processes for one client don't queue behind each other. Setting, upsert and commit go in
    one round trip (a pipeline): each round trip cost ~0.1 ms of CPU, more than a pixel hit's own work.
    """
    groups: dict[tuple[str, int], list[int]] = {}
    periods: dict[tuple[str, int], int] = {}
    for index, item in enumerate(items):
        if item.bucket:
            groups.setdefault((item.bucket, item.window), []).append(index)
            periods[item.bucket, item.window] = item.period
    if not groups:
        return [None] * len(items)
    keys = sorted(groups)  # one order for every batch: two processes' batches never wait on each other in a cycle
    async with conn.cursor() as cursor:
        async with conn.pipeline():
            await cursor.execute("SET LOCAL synchronous_commit = off")
            await cursor.execute(
                COUNT_SQL,
                [
                    [key for key, _ in keys],
                    [window for _, window in keys],
                    [len(groups[key]) for key in keys],
                    [datetime.fromtimestamp((window + 1) * periods[key, window], tz=UTC) for key, window in keys],
                ],
            )
            await conn.commit()
        totals = {(key, window): count for key, window, count in await cursor.fetchall()}
    counts: list[int | None] = [None] * len(items)
    for key, indexes in groups.items():
        first = totals[key] - len(indexes) + 1
        for offset, index in enumerate(indexes):
            counts[index] = first + offset
    return counts


_TABLE = RateLimitCounter._meta.db_table
# The counts, and the buckets' older windows deleted (they are done with once a newer one is counted).
COUNT_SQL = f"""
WITH counted AS (
    INSERT INTO {_TABLE} (key, window_start, count, expires)
    SELECT * FROM unnest(%s::text[], %s::bigint[], %s::int[], %s::timestamptz[]) ORDER BY 1, 2
    ON CONFLICT (key, window_start) DO UPDATE SET count = {_TABLE}.count + EXCLUDED.count
    RETURNING key, window_start, count
), expired AS (
    DELETE FROM {_TABLE} t USING counted c WHERE t.key = c.key AND t.window_start < c.window_start
)
SELECT key, window_start, count FROM counted
"""


_redis_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


async def count_in_redis_async(bucket: str, window: int, period: int) -> int:
    """_count_in_redis on the event loop."""
    import redis.asyncio

    loop = asyncio.get_running_loop()  # a client per loop: a test's asyncio.run makes a new one
    client = _redis_clients.get(loop)
    if client is None:
        client = _redis_clients[loop] = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
    key = f"ratelimit:{bucket}:{window}"
    count = int(await client.incr(key))
    if count == 1:
        await client.expire(key, period + 1)
    return count
