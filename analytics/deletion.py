"""GoatCounter's part of deletions (logsvc.deletion): a site with everything of it, a site's hits before a day, and
every site of an account being deleted.

Hits go a batch at a time along the (site, id) index, each batch in a transaction of its own that locks only the
site's rows, so other sites count and read as before. A site being deleted stops counting at once: sites.live()
leaves it out of every lookup (the pixel, /api/v0, the dashboard).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.files.storage import storages
from django.db import connection, transaction

from analytics.models import (
    ROLLUP_MODELS,
    BotHit,
    Export,
    Hit,
    Import,
    ImportedKeys,
    ImportedRow,
    ImportedVisits,
    Path,
    PathDay,
    PathHour,
    PathMonth,
    RefDay,
    RollupFailure,
    RollupState,
    Site,
    StatDay,
    VisitorPath,
)
from analytics.rollups import LOCK, MONTH_ARRAY
from analytics.sites import forget_pixel_sites
from logsvc.deletion import batch_size, delete_in_batches
from logsvc.models import Deletion

FOREVER = datetime.max.replace(tzinfo=UTC)


def _delete_hits(model: type[Hit | BotHit], site_id: int, before: datetime) -> Iterator[int]:
    """The site's hits (or bot hits) created before `before`: each batch reads DELETION_BATCH entries of the site's
    index from where the last one stopped, so a batch costs the same at the start and at the end."""
    table = model._meta.db_table
    last = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"""WITH scanned AS (
                        SELECT id, created_at FROM {table} WHERE site_id = %s AND id > %s ORDER BY id LIMIT %s),
                    deleted AS (
                        DELETE FROM {table} t USING scanned s WHERE t.id = s.id AND s.created_at < %s RETURNING t.id)
                    SELECT (SELECT max(id) FROM scanned), (SELECT count(*) FROM deleted)""",
                [site_id, last, batch_size(), before],
            )
            scanned_to, deleted = cursor.fetchone()
        if scanned_to is None:
            return
        last = scanned_to
        if deleted:
            yield deleted


def _wait_for_rollup() -> None:
    """Wait for a rollup under way (it may have read the hits just deleted) to commit: one starting later can't see
    them, so the rollup rows deleted next stay deleted."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK)


def _delete_files(exports: list[Export]) -> None:
    """Export files, from the "exports" storage (PostgreSQL, S3 or the disk: logsvc.storage)."""
    for export in exports:
        if export.file:
            with contextlib.suppress(FileNotFoundError):
                storages["exports"].delete(export.file)


def delete_site(site_id: int) -> Iterator[int]:
    """Everything of a site, its row last."""
    site = Site.objects.filter(pk=site_id).first()
    if site is None:
        return
    for model in (Hit, BotHit):
        yield from _delete_hits(model, site_id, FOREVER)
    _wait_for_rollup()
    for rollup in ROLLUP_MODELS:
        yield from delete_in_batches(rollup._meta.db_table, "site_id = %s", [site_id])
    for imported in (ImportedRow, ImportedKeys, ImportedVisits):
        yield from delete_in_batches(imported._meta.db_table, "site_id = %s", [site_id])
    yield from delete_in_batches(
        VisitorPath._meta.db_table, f"path_id IN (SELECT id FROM {Path._meta.db_table} WHERE site_id = %s)", [site_id]
    )
    # Export files, with any its rows no longer name (an export's name carries the site's code), and uploads not
    # yet imported.
    _delete_files(list(Export.objects.filter(site_id=site_id)))
    exports = storages["exports"]
    try:
        names = exports.listdir("")[1]
    except FileNotFoundError:  # FILE_STORAGE=local before its first export
        names = []
    for name in names:
        if name.startswith(f"goatcounter-export-{site.code}-"):
            with contextlib.suppress(FileNotFoundError):
                exports.delete(name)
    for upload in Import.objects.filter(site_id=site_id).exclude(file=""):
        with contextlib.suppress(FileNotFoundError):
            storages["imports"].delete(upload.file)
    # Paths in batches too: Django's collector would load each one to cascade to nothing.
    yield from delete_in_batches(Path._meta.db_table, "site_id = %s", [site_id])
    with transaction.atomic():
        # Hits counted while the batches ran (the pixel may remember the site for seconds) go with the row, in
        # analytics.models.delete_hits_with_site.
        rows = Site.objects.filter(pk=site_id).delete()[0]
    yield rows
    forget_pixel_sites()


def delete_site_step(deletion: Deletion) -> Iterator[int]:
    yield from delete_site(deletion.target)


def delete_account_sites(deletion: Deletion) -> Iterator[int]:
    for site_id in Site.objects.filter(owner_id=deletion.target).order_by("id").values_list("id", flat=True):
        yield from delete_site(site_id)


def start_deleting(deletion: Deletion) -> None:
    """This process forgets the sites now, and again once the deletion commits (a lookup in between would not see it);
    other processes within sites.RECENT_SECONDS."""
    forget_pixel_sites()
    transaction.on_commit(forget_pixel_sites)


def site_midnight(site: Site, day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(site.timezone))


def delete_hits_before(deletion: Deletion) -> Iterator[int]:
    """A site's hits before a day of its time zone, and its rollups of those days: the stats no longer count them."""
    site = Site.objects.filter(pk=deletion.target).first()
    if site is None or deletion.before is None:
        return
    day = deletion.before
    cutoff = site_midnight(site, day).astimezone(UTC)
    for hits in (Hit, BotHit):
        yield from _delete_hits(hits, site.pk, cutoff)
    _wait_for_rollup()
    # Rollup rows of whole periods before the day hold only deleted hits: they go in batches.
    rollups: list[tuple[type[PathDay | RefDay | StatDay | PathMonth | PathHour], str, date | datetime]] = [
        (PathDay, "day < %s", day),
        (RefDay, "day < %s", day),
        (StatDay, "day < %s", day),
        (PathMonth, "month < %s", day.replace(day=1)),
        (PathHour, "hour < %s", cutoff.replace(minute=0)),  # an hour that starts before the cutoff: below
    ]
    for model, where, value in rollups:
        yield from delete_in_batches(model._meta.db_table, f"site_id = %s AND {where}", [site.pk, value])
    yield _fix_boundaries(site, day, cutoff)
    # Exports made before held the deleted hits.
    exports = list(Export.objects.filter(site=site, created_at__lt=deletion.created))
    _delete_files(exports)
    yield Export.objects.filter(pk__in=[export.pk for export in exports]).delete()[0]


def _fix_boundaries(site: Site, day: date, cutoff: datetime) -> int:
    """Recount the periods that straddle the cutoff, under the rollup lock: the month of the day (from its days that
    stay) and, in a zone whose midnight is not on the hour, the hour of the cutoff (from the hits that stay)."""
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK)
        if day != month:
            cursor.execute(
                f"DELETE FROM {PathMonth._meta.db_table} WHERE site_id = %s AND month = %s", [site.pk, month]
            )
            rows += cursor.rowcount
            cursor.execute(
                f"""INSERT INTO {PathMonth._meta.db_table}
                        (site_id, path_id, month, pageviews, visitors, daily_pageviews, daily_visitors)
                    SELECT site_id, path_id, %s, pv, v, {MONTH_ARRAY.format(values="pvs")},
                        {MONTH_ARRAY.format(values="vs")}
                    FROM (
                        SELECT site_id, path_id, sum(pageviews) pv, sum(visitors) v,
                            array_agg(extract(day FROM day)::int) days, array_agg(pageviews) pvs,
                            array_agg(visitors) vs
                        FROM {PathDay._meta.db_table} WHERE site_id = %s AND day >= %s AND day < %s
                        GROUP BY 1, 2
                    ) m""",
                [month, site.pk, day, next_month],
            )
        hour = cutoff.replace(minute=0, second=0, microsecond=0)
        if hour != cutoff:
            last = RollupState.objects.filter(name="hits").values_list("last_hit_id", flat=True).first() or 0
            cursor.execute(f"DELETE FROM {PathHour._meta.db_table} WHERE site_id = %s AND hour = %s", [site.pk, hour])
            rows += cursor.rowcount
            cursor.execute(
                f"""INSERT INTO {PathHour._meta.db_table} (site_id, path_id, hour, pageviews, visitors)
                    SELECT h.site_id, h.path_id, %s, count(*), count(*) FILTER (WHERE h.first_visit)
                    FROM {Hit._meta.db_table} h
                    WHERE h.site_id = %s AND h.id <= %s AND h.created_at >= %s AND h.created_at < %s
                    AND NOT EXISTS (SELECT FROM {RollupFailure._meta.db_table} f
                        WHERE f.site_id = h.site_id AND h.id > f.from_hit_id AND h.id <= f.to_hit_id)
                    GROUP BY 1, 2""",
                [hour, site.pk, last, hour, hour + timedelta(hours=1)],
            )
    return rows
