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
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, QuerySet
from django.tasks import task
from django.utils import timezone

from analytics.models import (
    Hit,
    Path,
    PathDay,
    PathHour,
    PathMonth,
    RefDay,
    RollupFailure,
    RollupState,
    Site,
    StatDay,
)
from analytics.tasks import advisory_lock, last_committed_hit_id
from logsvc.nudge import Nudge

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


def _fold_sql(one_site: bool = False, skip_failed: bool = False, from_day: bool = False) -> list[str]:
    """The statements that add hits with from_id < id <= to_id (of site_id alone when one_site; less those of
    its RollupFailures when skip_failed; of days of the site's zone from from_day on when from_day) to every
    rollup table."""
    hit, site = Hit._meta.db_table, Site._meta.db_table
    local_day = "(h.created_at AT TIME ZONE s.timezone)::date"
    counts = "count(*), count(*) FILTER (WHERE h.first_visit)"
    add = "pageviews = {t}.pageviews + EXCLUDED.pageviews, visitors = {t}.visitors + EXCLUDED.visitors"
    source = f"FROM {hit} h JOIN {site} s ON s.id = h.site_id WHERE h.id > %(from_id)s AND h.id <= %(to_id)s"
    if one_site:
        source += " AND h.site_id = %(site_id)s"
    if from_day:
        source += f" AND {local_day} >= %(from_day)s"
    if skip_failed:
        source += (
            f" AND NOT EXISTS (SELECT FROM {RollupFailure._meta.db_table} f"
            " WHERE f.site_id = h.site_id AND h.id > f.from_hit_id AND h.id <= f.to_hit_id)"
        )
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
    """Fold every committed hit not yet in the rollups into them; returns how many. Safe to run anywhere.

    A site whose hits can't be folded (a database error on its rows) holds back no other: see _fold().
    """
    with advisory_lock(*LOCK) as held:
        if not held:
            return 0  # another process is at it; it will see these hits too
        retry_failures(due_only=True)
        state, _ = RollupState.objects.get_or_create(name="hits")
        start = folded = state.last_hit_id
        bound = last_committed_hit_id(None, start)
        while folded < bound:
            upto = min(bound, folded + step)
            with transaction.atomic():
                _fold(folded, upto)
                RollupState.objects.filter(name="hits").update(last_hit_id=upto, updated_at=timezone.now())
            if progress:
                progress(upto - folded)
            folded = upto
        return folded - start


def _fold(from_id: int, to_id: int) -> None:
    """Add hits from_id < id <= to_id to the rollups, in the caller's transaction.

    All sites at once when that works (the common case: one statement per table). When it fails, each site
    on its own, and a site's range is halved until the hits that fail are found: those are recorded as
    RollupFailures (logged, in the admin and /healthz) and everything else is counted.
    """
    if not (error := _try_fold(from_id, to_id, _fold_sql(), {})):
        return
    logger.warning("Rolling up hits %s-%s failed (%s); folding them in site by site", from_id + 1, to_id, error)
    site_ids = Hit.objects.filter(id__gt=from_id, id__lte=to_id).values_list("site_id", flat=True).distinct()
    for site_id in site_ids.order_by("site_id"):
        for lo, hi, error in _fold_site(site_id, from_id, to_id):
            logger.error("Hits %s-%s of site %s can't be rolled up: %s", lo + 1, hi, site_id, error)
            RollupFailure.objects.create(site_id=site_id, from_hit_id=lo, to_hit_id=hi, error=error)


def _try_fold(from_id: int, to_id: int, statements: list[str], params: dict[str, int]) -> str:
    """Run the fold statements in a savepoint: '' when they went in, else the database's error (undone)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql, {"from_id": from_id, "to_id": to_id, **params})
    except DatabaseError as error:
        return str(error).strip() or type(error).__name__
    return ""


def _fold_site(site_id: int, from_id: int, to_id: int) -> list[tuple[int, int, str]]:
    """Fold one site's hits in (from_id, to_id]; the (from, to, error) ranges that still failed, as narrow as
    a single hit, adjacent ones merged."""
    error = _try_fold(from_id, to_id, _fold_sql(one_site=True), {"site_id": site_id})
    if not error:
        return []
    if to_id - from_id == 1:
        return [(from_id, to_id, error)]
    middle = (from_id + to_id) // 2
    failed: list[tuple[int, int, str]] = []
    for lo, hi, why in _fold_site(site_id, from_id, middle) + _fold_site(site_id, middle, to_id):
        if failed and failed[-1][1] == lo and failed[-1][2] == why:
            failed[-1] = (failed[-1][0], hi, why)
        else:
            failed.append((lo, hi, why))
    return failed


def retry_failures(failures: QuerySet[RollupFailure] | None = None, *, due_only: bool = False) -> tuple[int, int]:
    """Fold in the hits of these RollupFailures (all; those not tried for ROLLUP_RETRY_SECONDS when due_only)
    again; a range that goes in is no longer a failure. Returns (fixed, still failing). Takes the rollup lock
    for each failure (the caller may hold it already)."""
    failures = (RollupFailure.objects.all() if failures is None else failures).order_by("id")
    if due_only:
        due = timezone.now() - timedelta(seconds=settings.ROLLUP_RETRY_SECONDS)
        failures = failures.filter(last_attempt_at__lte=due)
    fixed = failing = 0
    failure: RollupFailure | None
    for failure in failures:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK)
            failure = RollupFailure.objects.select_for_update().filter(pk=failure.pk).first()
            if failure is None:  # retried by someone else meanwhile
                continue
            remaining = _fold_site(failure.site_id, failure.from_hit_id, failure.to_hit_id)
            failure.delete()
            for lo, hi, error in remaining:
                RollupFailure.objects.create(
                    site_id=failure.site_id,
                    from_hit_id=lo,
                    to_hit_id=hi,
                    error=error,
                    attempts=failure.attempts + 1,
                    created_at=failure.created_at,
                )
        if remaining:
            failing += 1
        else:
            fixed += 1
    return fixed, failing


def health_check() -> str:
    """/healthz's word on the rollups: "ok", or how many ranges of hits failed and where to look."""
    failures = RollupFailure.objects.aggregate(count=Count("id"), sites=Count("site", distinct=True))
    if not failures["count"]:
        return "ok"
    return (
        f"{failures['count']} range(s) of hits of {failures['sites']} site(s) could not be rolled up; "
        "see Rollup failures in the admin"
    )


@task()
def roll_up_hits() -> int:
    return roll_up()


# New hits reach the stats within about ROLLUP_INTERVAL_SECONDS (logsvc.nudge); manage.py rollup folds them too.
schedule_roll_up = Nudge(roll_up_hits, "ROLLUP_INTERVAL_SECONDS", "the rollup of new hits")


def rebuild_days(site: Site) -> None:
    """Recount a site's days after its time zone changed (from the hourly rollup and the hits). The hits of its
    RollupFailures are left to their retry, which adds them to every table.

    Days from before the hits retention may have deleted (analytics.retention) are kept as they were counted:
    only the days after that are recounted from the hits, and their months from the days."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK)
        last = RollupState.objects.filter(name="hits").values_list("last_hit_id", flat=True).first() or 0
        site = Site.objects.get(pk=site.pk)
        horizons = [site.hits_deleted_before]
        if site.data_retention:  # a pass may be deleting them right now
            horizons.append(timezone.now() - timedelta(days=site.data_retention))
        horizon = max((moment for moment in horizons if moment is not None), default=None)
        if horizon is None:
            for model in (PathDay, PathMonth, RefDay, StatDay):
                model.objects.filter(site=site).delete()
            for sql in _fold_sql(one_site=True, skip_failed=True)[1:]:
                cursor.execute(sql, {"from_id": 0, "to_id": last, "site_id": site.pk})
            return
        # The day the horizon falls in lost some of its hits: it is kept too.
        first_day = horizon.astimezone(ZoneInfo(site.timezone)).date() + timedelta(days=1)
        first_month = first_day.replace(day=1)
        for day_model in (PathDay, RefDay, StatDay):
            day_model.objects.filter(site=site, day__gte=first_day).delete()
        PathMonth.objects.filter(site=site, month__gte=first_month).delete()
        _hour, path_day, _month, *others = _fold_sql(one_site=True, skip_failed=True, from_day=True)
        for sql in [path_day, *others]:
            cursor.execute(sql, {"from_id": 0, "to_id": last, "site_id": site.pk, "from_day": first_day})
        cursor.execute(_months_from_days_sql(), {"site_id": site.pk, "first_month": first_month})


def _months_from_days_sql() -> str:
    """PathMonth's rows of a site from first_month on, summed from its PathDay rows."""
    return f"""
        INSERT INTO {PathMonth._meta.db_table}
            (site_id, path_id, month, pageviews, visitors, daily_pageviews, daily_visitors)
        SELECT site_id, path_id, month, pv, v, {MONTH_ARRAY.format(values="pvs")}, {MONTH_ARRAY.format(values="vs")}
        FROM (
            SELECT site_id, path_id, date_trunc('month', day)::date AS month, sum(pageviews) pv, sum(visitors) v,
                array_agg(extract(day FROM day)::int) days, array_agg(pageviews) pvs, array_agg(visitors) vs
            FROM {PathDay._meta.db_table} WHERE site_id = %(site_id)s AND day >= %(first_month)s
            GROUP BY 1, 2, 3
        ) m
    """
