"""Rollups: the tables stats and the dashboard read, so no request ever scans raw hits.

The worker folds new hits into them within seconds (roll_up_hits, scheduled by the requests that store
hits, at most once a second per process). Hits are read by id from a cursor (RollupState) up to the
highest id below which every hit has committed, and each step adds its counts and moves the cursor in one
transaction: a hit is counted once, whether the worker dies or two run at once (an advisory lock).

Days are the site's own (its time zone at the time of the hit's rollup); hours are UTC, for hourly charts
and for days in another zone. A site whose time zone changes has its days rebuilt with rebuild_days().
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.tasks import task
from django.utils import timezone

from analytics.models import Hit, Path, PathDay, PathHour, PathMonth, RefDay, RollupState, Site, StatDay
from analytics.tasks import advisory_lock, last_committed_hit_id

logger = logging.getLogger(__name__)

LOCK = (0x7275, 0)  # "ru": one rollup at a time
STEP = 250_000  # hits folded per transaction

# Screen widths in GoatCounter's groups.
SIZE_GROUP = """CASE
    WHEN h.size IS NULL OR h.size = 0 THEN '(unknown)'
    WHEN h.size <= 415 THEN 'Phones'
    WHEN h.size <= 1000 THEN 'Large phones, small tablets'
    WHEN h.size <= 1280 THEN 'Tablets and small laptops'
    WHEN h.size <= 1920 THEN 'Computer monitors'
    ELSE 'Computer monitors larger than HD'
END"""
# "Chrome 131" -> ("Chrome", "131"); "Samsung Internet 26" -> ("Samsung Internet", "26"); "Linux" -> ("Linux", "")
VERSIONED_NAME = r"regexp_replace({col}, '\s+[0-9][^ ]*$', '')"
VERSION = r"coalesce(substring({col} from '\s([0-9][^ ]*)$'), '')"
UNKNOWN = "coalesce(nullif({value}, ''), '(unknown)')"

# A month's counts as an array, day 1 first, from its days' numbers and values (arrays of the same length).
MONTH_ARRAY = "ARRAY(SELECT coalesce({values}[array_position(days, n)], 0) FROM generate_series(1, (SELECT max(x) FROM unnest(days) x)) n ORDER BY n)"
# Two such arrays added day by day (the shorter one padded with zeros).
ARRAY_SUM = (
    "(SELECT array_agg(coalesce(a, 0) + coalesce(b, 0) ORDER BY n) "
    "FROM ROWS FROM (unnest({t}.{column}), unnest(EXCLUDED.{column})) WITH ORDINALITY u (a, b, n))"
)

STAT_SOURCES = {
    # kind: (name, detail, which hits count)
    "browsers": (UNKNOWN.format(value=VERSIONED_NAME.format(col="h.browser")), VERSION.format(col="h.browser"), ""),
    "systems": (UNKNOWN.format(value=VERSIONED_NAME.format(col="h.system")), VERSION.format(col="h.system"), ""),
    "sizes": (SIZE_GROUP, "coalesce(h.size::text, '')", ""),
    "locations": (UNKNOWN.format(value="split_part(h.location, '-', 1)"), "h.location", ""),
    "languages": (UNKNOWN.format(value="h.language"), "''", ""),
    "campaigns": ("h.campaign", "h.ref", "AND h.campaign <> ''"),  # detail: the campaign's sources
    "toprefs": ("h.ref", "h.ref_scheme", "AND h.ref <> ''"),
}


def _fold_sql() -> list[str]:
    """The statements that add hits with from_id < id <= to_id to every rollup table."""
    hit, site = Hit._meta.db_table, Site._meta.db_table
    local_day = "(h.created_at AT TIME ZONE s.timezone)::date"
    counts = "count(*), count(*) FILTER (WHERE h.first_visit)"
    add = "pageviews = {t}.pageviews + EXCLUDED.pageviews, visitors = {t}.visitors + EXCLUDED.visitors"
    source = f"FROM {hit} h JOIN {site} s ON s.id = h.site_id WHERE h.id > %(from_id)s AND h.id <= %(to_id)s"
    statements = [
        f"""INSERT INTO {PathHour._meta.db_table} (site_id, path_id, hour, pageviews, visitors)
            SELECT h.site_id, h.path_id, date_trunc('hour', h.created_at), {counts} {source} GROUP BY 1, 2, 3
            ON CONFLICT (site_id, hour, path_id) DO UPDATE SET {add.format(t=PathHour._meta.db_table)}""",
        f"""INSERT INTO {PathDay._meta.db_table} (site_id, path_id, day, pageviews, visitors)
            SELECT h.site_id, h.path_id, {local_day}, {counts} {source} GROUP BY 1, 2, 3
            ON CONFLICT (site_id, day, path_id) DO UPDATE SET {add.format(t=PathDay._meta.db_table)}""",
        f"""INSERT INTO {PathMonth._meta.db_table}
                (site_id, path_id, month, pageviews, visitors, daily_pageviews, daily_visitors)
            SELECT site_id, path_id, month, pv, v, {MONTH_ARRAY.format(values="pvs")}, {MONTH_ARRAY.format(values="vs")}
            FROM (
                SELECT site_id, path_id, date_trunc('month', day)::date AS month, sum(pv) pv, sum(v) v,
                    array_agg(extract(day FROM day)::int) days, array_agg(pv) pvs, array_agg(v) vs
                FROM (SELECT h.site_id, h.path_id, {local_day} AS day, {counts} {source} GROUP BY 1, 2, 3) d (
                    site_id, path_id, day, pv, v)
                GROUP BY 1, 2, 3
            ) m
            ON CONFLICT (site_id, month, path_id) DO UPDATE SET {add.format(t=PathMonth._meta.db_table)},
                daily_pageviews = {ARRAY_SUM.format(t=PathMonth._meta.db_table, column="daily_pageviews")},
                daily_visitors = {ARRAY_SUM.format(t=PathMonth._meta.db_table, column="daily_visitors")}""",
        f"""INSERT INTO {StatDay._meta.db_table} (site_id, kind, day, name, detail, pageviews, visitors)
            SELECT h.site_id, 'totals', {local_day}, CASE WHEN p.event THEN 'events' ELSE 'pages' END, '', {counts}
            {source.replace("WHERE", f"JOIN {Path._meta.db_table} p ON p.id = h.path_id WHERE")}
            GROUP BY 1, 2, 3, 4, 5
            ON CONFLICT (site_id, kind, day, name, detail) DO UPDATE SET {add.format(t=StatDay._meta.db_table)}""",
        f"""INSERT INTO {RefDay._meta.db_table} (site_id, path_id, day, ref, ref_scheme, pageviews, visitors)
            SELECT h.site_id, h.path_id, {local_day}, h.ref, h.ref_scheme, {counts} {source} AND h.ref <> ''
            GROUP BY 1, 2, 3, 4, 5
            ON CONFLICT (site_id, day, path_id, ref, ref_scheme) DO UPDATE SET {add.format(t=RefDay._meta.db_table)}""",
    ]
    for kind, (name, detail, where) in STAT_SOURCES.items():
        statements.append(
            f"""INSERT INTO {StatDay._meta.db_table} (site_id, kind, day, name, detail, pageviews, visitors)
                SELECT h.site_id, '{kind}', {local_day}, {name}, {detail}, {counts} {source} {where}
                GROUP BY 1, 2, 3, 4, 5
                ON CONFLICT (site_id, kind, day, name, detail) DO UPDATE SET {add.format(t=StatDay._meta.db_table)}"""
        )
    return statements


def roll_up(step: int = STEP, progress: Callable[[int], None] | None = None) -> int:
    """Fold every committed hit not yet in the rollups into them; returns how many. Safe to run anywhere."""
    with advisory_lock(*LOCK) as held:
        if not held:
            return 0  # another process is at it; it will see these hits too
        state, _ = RollupState.objects.get_or_create(name="hits")
        start = folded = state.last_hit_id
        bound = last_committed_hit_id(None, start)
        statements = _fold_sql()
        while folded < bound:
            upto = min(bound, folded + step)
            with transaction.atomic(), connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql, {"from_id": folded, "to_id": upto})
                RollupState.objects.filter(name="hits").update(last_hit_id=upto, updated_at=timezone.now())
            if progress:
                progress(upto - folded)
            folded = upto
        return folded - start


@task()
def roll_up_hits() -> int:
    return roll_up()


# When (time.monotonic()) the rollup this process last asked for may start: it folds in every hit committed
# before then.
_next_slot = 0.0


def schedule_roll_up() -> None:
    """Ask the worker to fold in the hit just committed: at most one rollup per ROLLUP_INTERVAL_SECONDS per
    process, so a stream of hits costs one queue row a second, not one per hit.

    A hit that comes while the last rollup asked for may not have started yet is left to it. A later one gets
    a rollup deferred to the next free slot, so the last hits of a burst (or of a quiet site) reach the stats
    within the interval too, not whenever this process happens to store the next hit.
    """
    global _next_slot
    now = time.monotonic()
    if now < _next_slot:
        return
    slot = max(now, _next_slot + settings.ROLLUP_INTERVAL_SECONDS)
    try:
        roll_up_hits.using(run_after=timezone.now() + timedelta(seconds=slot - now)).enqueue()
    except Exception:  # the hits are stored; the next request (or manage.py rollup) schedules it again
        logger.exception("Could not schedule the rollup of new hits")
        return
    _next_slot = slot


def rebuild_days(site: Site) -> None:
    """Recount a site's days after its time zone changed (from the hourly rollup and the hits)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK)
        last = RollupState.objects.filter(name="hits").values_list("last_hit_id", flat=True).first() or 0
        for model in (PathDay, PathMonth, RefDay, StatDay):
            model.objects.filter(site=site).delete()
        for sql in _fold_sql()[1:]:
            cursor.execute(
                sql.replace("WHERE h.id > %(from_id)s", f"WHERE h.site_id = {int(site.pk)} AND h.id > %(from_id)s"),
                {"from_id": 0, "to_id": last},
            )
