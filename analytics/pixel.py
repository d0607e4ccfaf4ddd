"""The browser pixel (/count, /count/<code>) and a backend's POST /api/v0/count under the ASGI server: the answers
of analytics.views.count_pixel and CountView, with the hits of concurrent requests stored by one COPY in one
transaction (logsvc.groupcommit).

Each request is answered only after the commit that holds its hit. Without Redis, the pixel's rate-limit
counters are counted by the batch too (see write_hits), so a hit costs no commit of its own for them
either; with Redis they are an INCR there, before the hit joins a batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.core.exceptions import DisallowedHost, SynchronousOnlyOperation
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from analytics import rollups, sites
from analytics.models import BotHit, Hit, Path, Site, VisitorPath
from analytics.services import HIT_COLUMNS, CleanHit, _salts, hit_row, todays_salt, visitor_hash
from analytics.validation import BatchError, CountBatch, clean_count_hits, read_count_body
from analytics.views import COUNTED, NO_SITE, PIXEL, not_counted_on_purpose, pixel_hit
from logsvc import ratelimit
from logsvc.asgi import AsgiRequest, Receive, Send, run_sync, security_headers, send_response
from logsvc.groupcommit import GroupCommit, Unavailable
from logsvc.hotpath import count_rate, item_usage, note_use, rate_headers, read_json_post, throttled, unavailable


@dataclass(slots=True)
class HitsItem:
    """One request in a batch: its hits to store (one of the pixel, up to 500 of /api/v0/count, none: only its
    rate-limit count), and its counter."""

    site_id: int
    hits: list[CleanHit]
    bucket: str = ""  # PostgreSQL rate-limit counter; "" when not counted here
    window: int = 0
    period: int = 1
    limit: int = 0


async def write_hits(conn: psycopg.AsyncConnection, items: list[HitsItem]) -> list[Any]:
    """The batch's writes: the rate-limit counters, then the hits allowed, in the transaction GroupCommit commits.
    Returns each item's count in its rate-limit window (None when not counted here).

    The counters commit first (ratelimit.count_and_commit). Like ratelimit.consume, a request that then fails
    has been counted.
    """
    counts = await ratelimit.count_and_commit(conn, items)
    hits = [
        (item.site_id, hit)
        for item, count in zip(items, counts, strict=True)
        if count is None or count <= item.limit
        for hit in item.hits
    ]
    if hits:
        await store_hits(conn, hits)
    return counts


async def store_hits(conn: psycopg.AsyncConnection, hits: list[tuple[int, CleanHit]]) -> None:
    """analytics.services.record_hits for hits of any sites: paths found or created, first visits, one COPY."""
    now = timezone.now()
    async with conn.cursor() as cursor:
        if bots := [(site_id, hit) for site_id, hit in hits if hit.bot]:
            sql = f"COPY {BotHit._meta.db_table} (site_id, path, bot, user_agent, created_at) FROM STDIN"
            async with cursor.copy(sql) as copy:
                for site_id, hit in bots:
                    await copy.write_row((site_id, hit.path, hit.bot, hit.user_agent, hit.created_at or now))
        people = [(site_id, hit) for site_id, hit in hits if not hit.bot]
        if not people:
            return
        path_ids = await _path_ids(cursor, people)
        firsts = await _first_visits(
            cursor, [(hit.visitor, path_ids[site_id, hit.path, hit.event]) for site_id, hit in people], now
        )
        sql = f"COPY {Hit._meta.db_table} ({', '.join(HIT_COLUMNS)}) FROM STDIN"
        async with cursor.copy(sql) as copy:
            for (site_id, hit), first in zip(people, firsts, strict=True):
                await copy.write_row(hit_row(site_id, path_ids[site_id, hit.path, hit.event], hit, first, now))


PathKey = sites.PathKey


async def _path_ids(cursor: psycopg.AsyncCursor, hits: list[tuple[int, CleanHit]]) -> dict[PathKey, int]:
    """(site, path, event) -> Path id, as analytics.services._path_ids: read first, only new paths inserted, the
    latest title kept."""
    titles: dict[PathKey, str] = {}
    for site_id, hit in hits:
        key = (site_id, hit.path, hit.event)
        if hit.title or key not in titles:
            titles[key] = hit.title
    ids: dict[PathKey, int] = {}
    for key, title in titles.items():
        if (known := sites.known_paths.get(key)) is not None and title in ("", known[1]):
            ids[key] = known[0]
    if len(ids) < len(titles):
        read = await _read_paths(cursor, titles, ids)
        if len(sites.known_paths) > sites.KNOWN_PATHS:
            sites.known_paths.clear()
        for key, title in read.items():
            sites.known_paths[key] = (ids[key], titles[key] or title)
    return ids


async def _read_paths(
    cursor: psycopg.AsyncCursor, titles: dict[PathKey, str], ids: dict[PathKey, int]
) -> dict[PathKey, str]:
    """The ids of the paths not in ids yet, from the database; new paths inserted, changed titles updated. The
    titles of those that were there."""
    read: dict[PathKey, str] = {}
    table = Path._meta.db_table
    stale: dict[int, str] = {}
    for _attempt in range(2):  # a path another transaction inserts at the same moment is read the second time
        missing = sorted(key for key in titles if key not in ids)
        await cursor.execute(
            f"SELECT id, site_id, path, event, title FROM {table} "
            "WHERE (site_id, path, event) IN (SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bool[]))",
            [[k[0] for k in missing], [k[1] for k in missing], [k[2] for k in missing]],
        )
        for path_id, site_id, path, event, title in await cursor.fetchall():
            ids[site_id, path, event] = path_id
            read[site_id, path, event] = title
            if titles[site_id, path, event] and titles[site_id, path, event] != title:
                stale[path_id] = titles[site_id, path, event]
        missing = sorted(key for key in titles if key not in ids)
        if not missing:
            break
        await cursor.execute(
            f"INSERT INTO {table} (site_id, path, event, title) "
            "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bool[], %s::text[]) "
            "ON CONFLICT DO NOTHING RETURNING id, site_id, path, event",
            [[k[0] for k in missing], [k[1] for k in missing], [k[2] for k in missing], [titles[k] for k in missing]],
        )
        for path_id, site_id, path, event in await cursor.fetchall():
            ids[site_id, path, event] = path_id
    if stale:
        order = sorted(stale)  # rows locked in id order, whichever batch
        await cursor.execute(
            f"UPDATE {table} SET title = v.title FROM unnest(%s::bigint[], %s::text[]) AS v(id, title) "
            f"WHERE {table}.id = v.id",
            [order, [stale[path_id] for path_id in order]],
        )
    return read


async def _first_visits(
    cursor: psycopg.AsyncCursor, pairs: list[tuple[uuid.UUID | None, int]], now: datetime
) -> list[bool]:
    """analytics.services._first_visits on this cursor."""
    seen = sorted({pair for pair in pairs if pair[0] is not None})
    if not seen:
        return [True] * len(pairs)
    await cursor.execute(
        f"INSERT INTO {VisitorPath._meta.db_table} (visitor, path_id, created_at) "
        "SELECT v, p, %s FROM unnest(%s::uuid[], %s::bigint[]) AS t(v, p) "
        "ON CONFLICT DO NOTHING RETURNING visitor, path_id",
        [now, [visitor for visitor, _ in seen], [path_id for _, path_id in seen]],
    )
    new = set(await cursor.fetchall())
    firsts = []
    for pair in pairs:
        firsts.append(pair[0] is None or pair in new)
        new.discard(pair)  # a second hit in the same batch is no first visit
    return firsts


hits_batcher = GroupCommit(write_hits, name="hits")


def gif(status: int, request: AsgiRequest, reason: str = "", usage: ratelimit.Usage | None = None) -> tuple:
    headers = [
        ("Content-Type", "image/gif"),
        ("Cache-Control", "no-store"),
        ("Access-Control-Allow-Origin", "*"),
        ("Cross-Origin-Resource-Policy", "cross-origin"),
    ]
    if reason:
        headers.append(("X-Goatcounter", reason))
    headers += rate_headers(usage)
    if usage is not None and not usage.allowed:
        headers.append(("Retry-After", str(usage.reset)))
    return status, headers + security_headers(request), PIXEL


async def count_pixel(request: AsgiRequest, receive: Receive, send: Send) -> bool:
    """Answer a pixel request; False leaves it to Django (another method, a redirect to https, a bad Host)."""
    answer = await _answer(request)
    if answer is None:
        return False
    await send_response(send, *answer)
    return True


async def _answer(request: AsgiRequest) -> tuple | None:
    if request.method not in ("GET", "POST"):
        return None
    if settings.SECURE_SSL_REDIRECT and not request.is_secure():
        return None
    code = request.kwargs["code"]
    try:
        host = "" if code else sites.request_host(request)
    except DisallowedHost:
        return None
    site = sites.recent_pixel_site(host=host, code=code)
    if site is sites.NOT_SEEN:
        site = await run_sync(sites.site_for_pixel, host=host, code=code)
    if site is None:
        return gif(404, request, NO_SITE)
    if answer := not_counted_on_purpose(request):
        return gif(answer[0], request, answer[1])
    if timezone.now().date() not in _salts:
        await run_sync(todays_salt)
    ip = BaseThrottle().get_ident(request)  # type: ignore[arg-type]  # DRF reads only META, which both have
    user_agent = request.META.get("HTTP_USER_AGENT", "")
    try:
        status, reason, hit = pixel_hit(request, site, ip, user_agent)
    except SynchronousOnlyOperation:  # midnight passed since the salt was read
        status, reason, hit = await run_sync(pixel_hit, request, site, ip, user_agent)
    item = HitsItem(site_id=site.pk, hits=[] if hit is None else [hit])
    usage, reset = None, 0
    if rate := settings.RATE_LIMITS.get("goatcounter-pixel"):
        # By the salted hash, not "ip:ua": the counters are stored (PostgreSQL or Redis) and must not keep an IP.
        bucket = f"goatcounter-pixel:{visitor_hash(0, ip=ip, user_agent=user_agent).hex}"
        usage, reset = await count_rate(item, bucket, rate)
        if usage is not None and not usage.allowed:
            return too_many(request, item, usage)
    if not item.hits and not item.bucket:
        return gif(status, request, reason, usage)
    try:
        count = await hits_batcher.submit(item)
    except psycopg.IntegrityError:  # the site was deleted since this process looked it up
        sites.forget_pixel_sites()
        return gif(404, request, NO_SITE)
    except (Unavailable, psycopg.Error):
        status, headers, body = gif(503, request, "not counted: the database is unavailable; try again")
        return status, [*headers, ("Retry-After", "1")], body
    if count is not None:
        usage = item_usage(item, count, reset)
        if not usage.allowed:
            return too_many(request, item, usage)
    if item.hits:
        rollups.schedule_roll_up.from_event_loop()
    return gif(status, request, reason, usage)


def too_many(request: AsgiRequest, item: HitsItem, usage: ratelimit.Usage) -> tuple:
    return gif(429, request, f"rate limited: at most {item.limit} hits in {item.period} s", usage)


# What DRF's APIView adds to CountView's answers (Allow) and the renderer negotiation (Vary).
COUNT_VIEW_HEADERS = [("Vary", "Accept, origin"), ("Allow", "POST, OPTIONS")]


async def post_count(request: AsgiRequest, receive: Receive, send: Send) -> bool:
    """POST /api/v0/count's plain case: valid hits in a JSON body sent as is, with a key that may count. Anything
    else (an `Idempotency-Key`, gzip, a CORS request, a bad key, a hit or a body at fault, a site that can't be
    told) is handed to Django, body and all, which answers as it always has; so is a site deleted meanwhile."""
    if (read := await read_json_post(request, receive, "count")) is None:
        return False
    key, data = read
    request.auth = key  # for sites.site_for_request, as DRF would have set it
    found = await run_sync(_count_batch, request, data)
    if found is None:
        return False
    site, batch = found
    await note_use(key)
    item = HitsItem(site_id=site.pk, hits=batch.hits)
    usage, reset = None, 0
    if rate := settings.RATE_LIMITS.get("goatcounter-count"):
        # ScopedKeyThrottle's bucket, so both paths share one limit
        usage, reset = await count_rate(item, f"goatcounter-count:key:{key.pk}", rate)
        if usage is not None and not usage.allowed:
            await send_response(send, *throttled(request, "goatcounter", usage, COUNT_VIEW_HEADERS))
            return True
    if item.hits or item.bucket:
        try:
            count = await hits_batcher.submit(item)
        except psycopg.IntegrityError:  # the site was deleted since it was looked up: Django says so
            sites.forget_pixel_sites()
            return False
        except (Unavailable, psycopg.Error):
            await send_response(send, *unavailable(request, "goatcounter"))
            return True
        if count is not None:
            usage = item_usage(item, count, reset)
            if not usage.allowed:
                await send_response(send, *throttled(request, "goatcounter", usage, COUNT_VIEW_HEADERS))
                return True
    if item.hits:
        rollups.schedule_roll_up.from_event_loop()
    headers = [("Content-Type", "application/json"), *COUNT_VIEW_HEADERS, *rate_headers(usage)]
    if batch.filtered:
        headers.append(("X-Goatcounter-Filter", ", ".join(batch.filtered)))
    await send_response(send, 202, [*headers, *security_headers(request)], COUNTED_JSON)
    return True


COUNTED_JSON = orjson.dumps(COUNTED)


def _count_batch(request: AsgiRequest, data: Any) -> tuple[Site, CountBatch] | None:
    """CountView's checks, on a lookup thread (the site is a query): None when Django must answer."""
    try:
        hits, no_sessions, filters = read_count_body(data)
        site = sites.site_for_request(request)
    except (BatchError, exceptions.APIException):
        return None
    batch = clean_count_hits(hits, site, no_sessions=no_sessions, filters=filters)
    return None if batch.errors else (site, batch)
