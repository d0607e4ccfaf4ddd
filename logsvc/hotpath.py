"""What the ASGI server's hot paths (analytics.pixel, events.asgi) share: which requests they may take, the API
key, and the rate-limit headers they answer with, as Django's views would."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.utils import timezone
from rest_framework import exceptions

from logsvc import ratelimit, replica
from logsvc.asgi import AsgiRequest, Receive, read_body, run_sync, security_headers
from logsvc.auth import _recent_keys, raw_key_from_request, recently_seen_key
from logsvc.exceptions import error_body
from logsvc.models import LAST_USED_RESOLUTION, ApiKey, hash_key


def plain_json_post(request: AsgiRequest) -> bool:
    """Whether the request is one a hot path may take: JSON sent as is, nothing Django must look at."""
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


async def api_key(request: AsgiRequest, scope: str) -> ApiKey | None:
    """The request's usable API key with this scope, from this process's memory when it can be (no query, no
    thread); None leaves the request to Django (no key, a bad one, a refused Host: Django's answers)."""
    try:
        request.get_host()  # ALLOWED_HOSTS
        raw = raw_key_from_request(request)
    except (exceptions.AuthenticationFailed, DisallowedHost):
        return None
    if raw is None:
        return None
    ttl = settings.API_KEY_CACHE_SECONDS
    seen = _recent_keys.get(hash_key(raw)) if ttl else None
    if seen is not None and time.time() - seen[0] < ttl:
        key = seen[1] if seen[1].is_usable() else None
    else:
        key = await run_sync(recently_seen_key, raw)
    if key is None or not key.user.is_active or scope not in key.scopes:
        return None
    client = replica.client_of(request.META, {})  # it writes: its next reads, on any host, from the primary
    if replica.needs_note(client):
        await run_sync(replica.note_write, client)
    return key


async def read_json_post(request: AsgiRequest, receive: Receive, scope: str) -> tuple[ApiKey, Any] | None:
    """(the API key, the parsed JSON body) of a request a hot path may take, or None to hand it to Django with
    what was read of its body."""
    if not plain_json_post(request):
        return None
    key = await api_key(request, scope)
    if key is None:
        return None
    body = await read_body(request, receive, settings.BODY_MAX_BYTES)
    if body is None:
        return None
    try:
        return key, orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


async def note_use(key: ApiKey) -> None:
    """The key's last use, as Django's authentication records it (at most once per LAST_USED_RESOLUTION)."""
    if key.last_used is None or timezone.now() - key.last_used >= LAST_USED_RESOLUTION:
        await run_sync(key.touch)


async def count_rate(item: Any, bucket: str, rate: str) -> tuple[ratelimit.Usage | None, int]:
    """Put a batch item in its rate-limit window (its limit, period and window, from rate). With Redis it is
    counted there now and its usage returned; otherwise (or when Redis fails) its count is left to the batch's
    transaction (item.bucket) and None returned. Also the seconds until the window ends."""
    item.limit, item.period = ratelimit.parse_rate(rate)
    now = time.time()
    item.window = int(now // item.period)
    reset = max(1, math.ceil((item.window + 1) * item.period - now))
    if ratelimit.use_redis():
        import redis

        try:
            count = await ratelimit.count_in_redis_async(bucket, item.window, item.period)
        except redis.RedisError as error:  # counted in the batch's transaction instead, as without Redis
            ratelimit.redis_failed(error)
        else:
            return item_usage(item, count, reset), reset
    item.bucket = bucket
    return None, reset


def item_usage(item: Any, count: int, reset: int) -> ratelimit.Usage:
    """The rate-limit usage of a batch item (limit, period) counted `count` in its window."""
    return ratelimit.Usage(
        limit=item.limit, remaining=max(item.limit - count, 0), reset=reset, allowed=count <= item.limit
    )


def rate_headers(usage: ratelimit.Usage | None) -> list[tuple[str, str]]:
    if usage is None:
        return []
    return [
        ("X-Rate-Limit-Limit", str(usage.limit)),
        ("X-Rate-Limit-Remaining", str(usage.remaining)),
        ("X-Rate-Limit-Reset", str(usage.reset)),
    ]


def throttled(
    request: AsgiRequest, family: str, usage: ratelimit.Usage, view_headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The 429 DRF's throttle answers, in the family's envelope, with the view's own headers (Allow, Vary)."""
    detail = str(exceptions.Throttled(usage.reset).detail)
    body = orjson.dumps(error_body(family, 429, detail))
    headers = [
        ("Content-Type", "application/json"),
        ("Retry-After", str(usage.reset)),
        *view_headers,
        *rate_headers(usage),
        *security_headers(request),
    ]
    return 429, headers, body


def unavailable(request: AsgiRequest, family: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The 503 of a batch whose database went away: the request may be sent again."""
    body = orjson.dumps(error_body(family, 503, "The database is unavailable; try again."))
    return 503, [("Content-Type", "application/json"), ("Retry-After", "1"), *security_headers(request)], body
