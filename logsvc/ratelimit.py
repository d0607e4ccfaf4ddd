"""Fixed-window rate limits whose counters every process shares: Redis when REDIS_URL is set, else PostgreSQL.

A view opts in with `throttle_scope`; settings.RATE_LIMITS maps a scope to "requests/seconds". Usage is
counted per API key (per user for a session, per IP when anonymous). RateLimitHeadersMiddleware writes the
X-Rate-Limit-* headers; DRF answers 429 with Retry-After.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

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


@cache
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


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
    counter = _count_in_redis if settings.REDIS_URL else _count_in_postgres
    count = counter(bucket, window, period)
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
        request._request.rate_limit = self.usage  # for RateLimitHeadersMiddleware
        return self.usage.allowed

    def wait(self) -> float | None:
        return self.usage.reset if self.usage else None
