"""Storing hits: paths upserted, first visits found, the hits copied in, all in the caller's transaction.

A hit is acknowledged only after this has committed; there is no in-memory buffer to lose (GoatCounter keeps
up to 10 s of hits in memory).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import BotHit, Hit, Path, Salt, Site, VisitorPath
from logsvc.db import prepared_cursor


@dataclass(slots=True)
class CleanHit:
    """A checked hit, ready to store (see analytics.validation)."""

    path: str
    title: str = ""
    event: bool = False
    ref: str = ""
    ref_scheme: str = ""
    campaign: str = ""
    browser: str = ""
    system: str = ""
    size: int | None = None
    location: str = ""
    language: str = ""
    bot: int = 0
    user_agent: str = ""
    visitor: uuid.UUID | None = None
    created_at: datetime | None = None
    first_visit: bool | None = None  # known already (an imported export's row); None: found by record_hits
    # The day in the visitor hash (an imported hit of a day other than today, see visitor_hash): no pixel or API
    # hit has that hash, and the importer finds its first visit (analytics.importer.PastVisits), not VisitorPath.
    visitor_day: date | None = None


# day -> salt; a process keeps today's only
_salts: dict[date, bytes] = {}


def todays_salt() -> bytes:
    """The salt of the current UTC day, made by whichever process asks first."""
    today = timezone.now().date()
    salt = _salts.get(today)
    if salt is None:
        Salt.objects.bulk_create([Salt(day=today, value=secrets.token_bytes(32))], ignore_conflicts=True)
        salt = bytes(Salt.objects.get(day=today).value)
        _salts.clear()
        _salts[today] = salt
    return salt


def visitor_hash(
    site_id: int, *, ip: str = "", user_agent: str = "", session: str = "", day: date | None = None
) -> uuid.UUID:
    """The visitor's id for today: a keyed hash of site and session, or of site, IP and user agent.

    Neither the IP nor the user agent is stored, and once the day's salt is deleted nobody, us included,
    can tell which hash was whose. An imported hit of another day than today gives that day (still under
    today's salt), so a visitor's first visits are counted per day of their hits, as they would have been
    live; such a hash is the importer's alone: the pixel and the API never give a day.
    """
    who = f"s\0{session}" if session else f"b\0{ip}\0{user_agent}"
    if day is not None:
        who = f"{who}\0{day.isoformat()}"
    digest = hashlib.blake2b(f"{site_id}\0{who}".encode(), key=todays_salt(), digest_size=16).digest()
    return uuid.UUID(bytes=digest)


HIT_COLUMNS = [
    "site_id",
    "path_id",
    "visitor",
    "first_visit",
    "ref",
    "ref_scheme",
    "campaign",
    "browser",
    "system",
    "size",
    "location",
    "language",
    "created_at",
]


# HIT_COLUMNS' types, for COPY's binary format: a fourth of the text format's client time a row (no quoting,
# dates and UUIDs as their bytes), and less parsing for PostgreSQL.
HIT_TYPES = ["int8", "int8", "uuid", "bool", "text", "varchar", "text", "varchar", "varchar", "int4", "varchar",
             "varchar", "timestamptz"]  # fmt: skip
BOT_HIT_COLUMNS = ["site_id", "path", "bot", "user_agent", "created_at"]
BOT_HIT_TYPES = ["int8", "text", "int2", "text", "timestamptz"]


def hit_row(site_id: int, path_id: int, hit: CleanHit, first: bool, now: datetime) -> tuple[Any, ...]:
    """A hit as the COPY into the hit table takes it, in HIT_COLUMNS' order (here and in analytics.pixel)."""
    return (
        site_id,
        path_id,
        hit.visitor,
        first,
        hit.ref,
        hit.ref_scheme,
        hit.campaign,
        hit.browser,
        hit.system,
        hit.size,
        hit.location,
        hit.language,
        hit.created_at or now,
    )


def record_hits(site: Site, hits: list[CleanHit]) -> None:
    """Store checked hits; call inside a transaction (the caller answers only once it commits)."""
    assert transaction.get_connection().in_atomic_block, "record_hits needs the caller's transaction"
    now = timezone.now()
    people = [hit for hit in hits if not hit.bot]
    if bots := [hit for hit in hits if hit.bot]:
        sql = f"COPY {BotHit._meta.db_table} ({', '.join(BOT_HIT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            copy.set_types(BOT_HIT_TYPES)
            for hit in bots:
                copy.write_row((site.pk, hit.path, hit.bot, hit.user_agent, hit.created_at or now))
    if not people:
        return
    path_ids = _path_ids(site, people)
    unknown = [(hit.visitor, path_ids[hit.path, hit.event]) for hit in people if hit.first_visit is None]
    found = iter(_first_visits(unknown, now) if unknown else [])
    sql = f"COPY {Hit._meta.db_table} ({', '.join(HIT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.set_types(HIT_TYPES)
        for hit in people:
            first = next(found) if hit.first_visit is None else hit.first_visit
            copy.write_row(hit_row(site.pk, path_ids[hit.path, hit.event], hit, first, now))


def record_one_hit(site: Site, hit: CleanHit) -> None:
    """record_hits() for the pixel's single hit: one statement when its path is known, the common case.

    The path's id, the first-visit row and the hit in one round trip, atomic as one statement is; a new
    path (or a new title for it) takes record_hits()'s way, in a transaction.
    """
    if not hit.bot:
        now = timezone.now()
        params = {
            "site": site.pk,
            "path": hit.path,
            "event": hit.event,
            "title": hit.title,
            "visitor": hit.visitor,
            "now": now,
            "ref": hit.ref,
            "ref_scheme": hit.ref_scheme,
            "campaign": hit.campaign,
            "browser": hit.browser,
            "system": hit.system,
            "size": hit.size,
            "location": hit.location,
            "language": hit.language,
            "created_at": hit.created_at or now,
        }
        connection.ensure_connection()
        # A server-side binding cursor, not Django's client-side one: the statement is then prepared once
        # per connection (psycopg prepares a query run 5 times) instead of parsed and planned every hit.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_one_hit_sql(), params)
            if cursor.fetchone() is not None:
                return
    with transaction.atomic():
        record_hits(site, [hit])


@functools.cache
def _one_hit_sql() -> str:
    columns = ", ".join(HIT_COLUMNS)
    return f"""
        WITH p AS (
            SELECT id FROM {Path._meta.db_table}
            WHERE site_id = %(site)s AND path = %(path)s AND event = %(event)s
              AND (%(title)s = '' OR title = %(title)s)
        ), v AS (
            INSERT INTO {VisitorPath._meta.db_table} (visitor, path_id, created_at)
            SELECT %(visitor)s::uuid, id, %(now)s FROM p WHERE %(visitor)s::uuid IS NOT NULL
            ON CONFLICT DO NOTHING RETURNING 1
        )
        INSERT INTO {Hit._meta.db_table} ({columns})
        SELECT %(site)s, p.id, %(visitor)s::uuid, %(visitor)s::uuid IS NULL OR EXISTS (SELECT 1 FROM v),
               %(ref)s, %(ref_scheme)s, %(campaign)s, %(browser)s, %(system)s, %(size)s, %(location)s,
               %(language)s, %(created_at)s
        FROM p
        RETURNING id
    """


def _path_ids(site: Site, hits: list[CleanHit]) -> dict[tuple[str, bool], int]:
    """(path, event) -> Path id, creating the paths not seen before and keeping their latest title.

    Paths are read first and only the new ones inserted: an upsert of every path would lock the row of a
    popular page in every request until it commits.
    """
    titles: dict[tuple[str, bool], str] = {}
    for hit in hits:
        if hit.title or (hit.path, hit.event) not in titles:
            titles[hit.path, hit.event] = hit.title
    table = Path._meta.db_table
    ids: dict[tuple[str, bool], int] = {}
    stale: list[tuple[int, str]] = []
    with prepared_cursor() as cursor:  # arrays bound by the server: a fifth of the client's quoting
        for _attempt in range(2):  # a path another request inserts at the same moment is read the second time
            missing = [key for key in titles if key not in ids]
            cursor.execute(
                f"SELECT id, path, event, title FROM {table} WHERE site_id = %s "
                "AND (path, event) IN (SELECT * FROM unnest(%s::text[], %s::bool[]))",
                [site.pk, [path for path, _ in missing], [event for _, event in missing]],
            )
            for path_id, path, event, title in cursor.fetchall():
                ids[path, event] = path_id
                if titles[path, event] and titles[path, event] != title:
                    stale.append((path_id, titles[path, event]))
            missing = [key for key in titles if key not in ids]
            if not missing:
                break
            cursor.execute(
                f"INSERT INTO {table} (site_id, path, event, title) "
                "SELECT %s, * FROM unnest(%s::text[], %s::bool[], %s::text[]) "
                "ON CONFLICT DO NOTHING RETURNING id, path, event",
                [site.pk, [p for p, _ in missing], [e for _, e in missing], [titles[key] for key in missing]],
            )
            for path_id, path, event in cursor.fetchall():
                ids[path, event] = path_id
        if stale:
            cursor.execute(
                f"UPDATE {table} SET title = v.title FROM unnest(%s::bigint[], %s::text[]) AS v(id, title) "
                f"WHERE {table}.id = v.id",
                [[path_id for path_id, _ in stale], [title for _, title in stale]],
            )
    return ids


def _first_visits(pairs: list[tuple[uuid.UUID | None, int]], now: datetime) -> list[bool]:
    """Whether each (visitor, path id) is the visitor's first hit on that path today.

    A hit without a visitor (no_sessions) counts as a visit of its own, as in GoatCounter.
    """
    seen = {pair for pair in pairs if pair[0] is not None}
    if not seen:
        return [True] * len(pairs)
    with prepared_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {VisitorPath._meta.db_table} (visitor, path_id, created_at) "
            "SELECT v, p, %s FROM unnest(%b::uuid[], %b::bigint[]) AS t(v, p) "
            "ON CONFLICT DO NOTHING RETURNING visitor, path_id",
            [now, [visitor for visitor, _ in seen], [path_id for _, path_id in seen]],
        )
        new = set(cursor.fetchall())
    firsts = []
    for pair in pairs:
        first = pair[0] is None or pair in new
        new.discard(pair)  # a second hit in the same batch is no first visit
        firsts.append(first)
    return firsts
