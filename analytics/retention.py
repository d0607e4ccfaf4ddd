"""Retention of GoatCounter hits (a site's data_retention), registered with logsvc.retention in AnalyticsConfig.

Only raw hits go: the rollups that the dashboard and /api/v0/stats read keep their counts, so old totals, paths,
referrers, browsers and so on stay; an export can no longer include the hits that are gone. A hit is deleted only
once it is in the rollups (id up to the rollup cursor, not in a RollupFailure's range), so none is lost uncounted.

A site's hits are walked by the (site, id) index, RETENTION_BATCH a statement, each statement deleting the old
ones among them in its own short transaction. The walk covers all the site's rolled-up hits, not only the first
ones: ids follow arrival, not the hit's time, and an import adds old hits with new ids.

Before the walk, the months of the hit table (logsvc.partitions) that hold only hits past their site's retention,
all rolled up, are dropped whole: a month of millions of hits goes in milliseconds, with no dead rows left. The
walk then deletes what remains before each site's cut: hits in the month the cut falls in, in months shared with
sites that keep their hits longer, and in the default partition. It reads only the months before the cut.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q

from analytics.models import Hit, RollupFailure, RollupState, Site
from logsvc import partitions, retention
from logsvc.partitions import Partition


def purge_site_hits(site: Site, cutoff: datetime) -> int:
    """Delete the site's rolled-up hits from before cutoff (its hits_deleted_before set already); returns how many."""
    upto = RollupState.objects.filter(name="hits").values_list("last_hit_id", flat=True).first() or 0
    # created_at < cutoff in the walk too: the months after the cut are not read at all.
    sql = f"""
        WITH batch AS (
            SELECT id, created_at FROM {Hit._meta.db_table}
            WHERE site_id = %(site)s AND id > %(after)s AND id <= %(upto)s AND created_at < %(cutoff)s
            ORDER BY id LIMIT %(limit)s
        ), gone AS (
            DELETE FROM {Hit._meta.db_table} h USING batch b
            WHERE h.id = b.id AND b.created_at < %(cutoff)s AND NOT EXISTS (
                SELECT FROM {RollupFailure._meta.db_table} f
                WHERE f.site_id = %(site)s AND b.id > f.from_hit_id AND b.id <= f.to_hit_id
            )
            RETURNING h.id
        )
        SELECT max(id), (SELECT count(*) FROM gone) FROM batch
    """
    params: dict[str, Any] = {"site": site.pk, "upto": upto, "cutoff": cutoff, "limit": settings.RETENTION_BATCH}
    after, deleted = 0, 0
    while True:
        with retention.paused(), connection.cursor() as cursor:
            cursor.execute(sql, {**params, "after": after})
            last, gone = cursor.fetchone()
        if last is None:
            return deleted
        after = last
        deleted += gone


def _month_may_go(partition: Partition, cursor: Any, now: datetime, upto: int) -> bool:
    """Whether every hit of the month is past its site's retention, in the rollups and in no RollupFailure's
    range: index probes of the month, per site that keeps hits of it (none, usually) and per failure."""
    month, site, failure = partition.name, Site._meta.db_table, RollupFailure._meta.db_table
    cursor.execute(
        f"""SELECT NOT EXISTS (
                    SELECT FROM {site} s
                    WHERE NOT (s.data_retention > 0 AND %(end)s <= %(now)s - s.data_retention * interval '1 day')
                        AND EXISTS (SELECT FROM "{month}" h WHERE h.site_id = s.id))
                AND NOT EXISTS (SELECT FROM "{month}" WHERE id > %(upto)s)
                AND NOT EXISTS (
                    SELECT FROM {failure} f WHERE EXISTS (
                        SELECT FROM "{month}" h
                        WHERE h.site_id = f.site_id AND h.id > f.from_hit_id AND h.id <= f.to_hit_id))""",
        {"end": partition.end, "now": now, "upto": upto},
    )
    return cursor.fetchone()[0]


def purge_hits(now: datetime) -> int:
    """Delete the hits of every site with a data_retention that are older than it; returns how many."""
    sites = list(Site.objects.filter(data_retention__gt=0).order_by("pk"))
    if not sites:
        return 0
    # First, so that rebuild_days() never recounts a day from hits that are (being) deleted.
    for site in sites:
        cutoff = now - timedelta(days=site.data_retention)
        Site.objects.filter(pk=site.pk).filter(Q(hits_deleted_before=None) | Q(hits_deleted_before__lt=cutoff)).update(
            hits_deleted_before=cutoff
        )
    upto = RollupState.objects.filter(name="hits").values_list("last_hit_id", flat=True).first() or 0
    latest_cut = now - timedelta(days=min(site.data_retention for site in sites))
    deleted = partitions.drop_before(
        Hit._meta.db_table, latest_cut, lambda partition, cursor: _month_may_go(partition, cursor, now, upto)
    )
    for site in sites:
        deleted += purge_site_hits(site, now - timedelta(days=site.data_retention))
    return deleted
