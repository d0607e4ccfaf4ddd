"""Retention of GoatCounter hits (a site's data_retention), registered with logsvc.retention in AnalyticsConfig.

Only raw hits go: the rollups that the dashboard and /api/v0/stats read keep their counts, so old totals, paths,
referrers, browsers and so on stay; an export can no longer include the hits that are gone. A hit is deleted only
once it is in the rollups (id up to the rollup cursor, not in a RollupFailure's range), so none is lost uncounted.

A site's hits are walked by the (site, id) index, RETENTION_BATCH a statement, each statement deleting the old
ones among them in its own short transaction. The walk covers all the site's rolled-up hits, not only the first
ones: ids follow arrival, not the hit's time, and an import adds old hits with new ids.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q

from analytics.models import Hit, RollupFailure, RollupState, Site
from logsvc import retention


def purge_site_hits(site: Site, cutoff: datetime) -> int:
    """Delete the site's rolled-up hits from before cutoff; returns how many."""
    upto = RollupState.objects.filter(name="hits").values_list("last_hit_id", flat=True).first() or 0
    # First, so that rebuild_days() never recounts a day from hits that are (being) deleted.
    Site.objects.filter(pk=site.pk).filter(Q(hits_deleted_before=None) | Q(hits_deleted_before__lt=cutoff)).update(
        hits_deleted_before=cutoff
    )
    sql = f"""
        WITH batch AS (
            SELECT id, created_at FROM {Hit._meta.db_table}
            WHERE site_id = %(site)s AND id > %(after)s AND id <= %(upto)s ORDER BY id LIMIT %(limit)s
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


def purge_hits(now: datetime) -> int:
    """Delete the hits of every site with a data_retention that are older than it; returns how many."""
    deleted = 0
    for site in Site.objects.filter(data_retention__gt=0).order_by("pk"):
        deleted += purge_site_hits(site, now - timedelta(days=site.data_retention))
    return deleted
