"""What the stats API and the dashboard show, read from the rollups only (analytics.rollups).

Days are the site's own time zone (PathDay, RefDay, StatDay). A request for another zone is answered from
the hourly rollup (PathHour), converted; the per-day browser, system, ... tables stay in the site's zone.
Both visitors (first visits, GoatCounter's "count") and pageviews are given everywhere.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property

from django.db import connections

from analytics.models import Path, PathDay, PathHour, PathMonth, RefDay, Site, StatDay
from logsvc import replica

MAX_RANGE_DAYS = 3 * 366
# The days a range may cover: room on both sides for the default ranges' arithmetic and for any zone's UTC
# bounds (year 1 minus an offset, or 9999 plus one, is past what Python and PostgreSQL hold).
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)


@dataclass(frozen=True)
class Range:
    """start..end inclusive, days of zone tz; ValueError for a day outside FIRST_DAY..LAST_DAY."""

    start: date
    end: date
    tz: str

    def __post_init__(self) -> None:
        if not (FIRST_DAY <= self.start <= LAST_DAY and FIRST_DAY <= self.end <= LAST_DAY):
            raise ValueError(f"Days must be from {FIRST_DAY} to {LAST_DAY}.")

    @cached_property  # a stats answer asks for it once per path
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @cached_property
    def iso_days(self) -> list[str]:
        return [day.isoformat() for day in self.days]

    def utc_bounds(self) -> tuple[datetime, datetime]:
        zone = zoneinfo.ZoneInfo(self.tz)
        return (
            datetime.combine(self.start, time.min, zone),
            datetime.combine(self.end + timedelta(days=1), time.min, zone),
        )


def default_range(site: Site, days: int = 7) -> Range:
    today = datetime.now(zoneinfo.ZoneInfo(site.timezone)).date()
    return Range(today - timedelta(days=days - 1), today, site.timezone)


def _rows(sql: str, params: list) -> list[tuple]:
    with connections[replica.reads()].cursor() as cursor:  # stats tolerate a little lag
        cursor.execute(sql, params)
        return cursor.fetchall()


def _path_filter(include: list[int] | None, exclude: list[int] | None) -> tuple[str, list]:
    sql, params = "", []
    if include is not None:
        sql += " AND path_id = ANY(%s)"
        params.append(include)
    if exclude:
        sql += " AND NOT path_id = ANY(%s)"
        params.append(exclude)
    return sql, params


def daily_totals(site: Site, rng: Range, *, include: list[int] | None = None) -> dict[date, tuple[int, int]]:
    """day -> (visitors, pageviews) of all paths (or those included), events included."""
    where, params = _path_filter(include, None)
    if rng.tz == site.timezone and include is None:  # a row or two a day, however many paths
        rows = _rows(
            f"SELECT day, sum(visitors), sum(pageviews) FROM {StatDay._meta.db_table} "
            "WHERE site_id = %s AND kind = 'totals' AND day BETWEEN %s AND %s GROUP BY day",
            [site.pk, rng.start, rng.end],
        )
    elif rng.tz == site.timezone:
        rows = _rows(
            f"SELECT day, sum(visitors), sum(pageviews) FROM {PathDay._meta.db_table} "
            f"WHERE site_id = %s AND day BETWEEN %s AND %s{where} GROUP BY day",
            [site.pk, rng.start, rng.end, *params],
        )
    else:
        low, high = rng.utc_bounds()
        rows = _rows(
            f"SELECT (hour AT TIME ZONE %s)::date, sum(visitors), sum(pageviews) FROM {PathHour._meta.db_table} "
            f"WHERE site_id = %s AND hour >= %s AND hour < %s{where} GROUP BY 1",
            [rng.tz, site.pk, low, high, *params],
        )
    return {day: (int(visitors), int(pageviews)) for day, visitors, pageviews in rows}


def event_totals(site: Site, rng: Range) -> tuple[int, int]:
    """(visitors, pageviews) of events alone in the range."""
    low, high = rng.utc_bounds()
    if rng.tz == site.timezone:
        sql = (
            f"SELECT coalesce(sum(visitors), 0), coalesce(sum(pageviews), 0) FROM {StatDay._meta.db_table} "
            "WHERE site_id = %s AND kind = 'totals' AND day BETWEEN %s AND %s AND name = 'events'"
        )
        params = [site.pk, rng.start, rng.end]
    else:
        sql = (
            f"SELECT coalesce(sum(d.visitors), 0), coalesce(sum(d.pageviews), 0) FROM {PathHour._meta.db_table} d "
            f"JOIN {Path._meta.db_table} p ON p.id = d.path_id WHERE d.site_id = %s AND d.hour >= %s AND d.hour < %s "
            "AND p.event"
        )
        params = [site.pk, low, high]
    visitors, pageviews = _rows(sql, params)[0]
    return int(visitors), int(pageviews)


def utc_total(site: Site, rng: Range) -> tuple[int, int]:
    """(visitors, pageviews) over the same dates taken as UTC days (GoatCounter's `total_utc`)."""
    low = datetime.combine(rng.start, time.min, zoneinfo.ZoneInfo("UTC"))
    high = datetime.combine(rng.end + timedelta(days=1), time.min, zoneinfo.ZoneInfo("UTC"))
    visitors, pageviews = _rows(
        f"SELECT coalesce(sum(visitors), 0), coalesce(sum(pageviews), 0) FROM {PathHour._meta.db_table} "
        "WHERE site_id = %s AND hour >= %s AND hour < %s",
        [site.pk, low, high],
    )[0]
    return int(visitors), int(pageviews)


@dataclass
class PathTotal:
    path: Path
    visitors: int
    pageviews: int


def top_paths(
    site: Site,
    rng: Range,
    *,
    include: list[int] | None = None,
    exclude: list[int] | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[PathTotal], bool]:
    """The paths with the most visitors in the range, and whether there are more."""
    where, params = _path_filter(include, exclude)
    if rng.tz == site.timezone:
        # whole months from PathMonth; a part of a month from PathDay: its days, or the month less the others
        months, spans = _month_cover(rng)
        arms, head = [], []
        if months:
            arms.append(
                f"SELECT path_id, visitors v, pageviews pv FROM {PathMonth._meta.db_table} "
                f"WHERE site_id = %s AND month BETWEEN %s AND %s{where}"
            )
            head += [site.pk, months[0], months[1], *params]
        for sign, first, last in spans:
            arms.append(
                f"SELECT path_id, {sign} * visitors v, {sign} * pageviews pv FROM {PathDay._meta.db_table} "
                f"WHERE site_id = %s AND day BETWEEN %s AND %s{where}"
            )
            head += [site.pk, first, last, *params]
        sql = (
            f"SELECT path_id, sum(v) v, sum(pv) pv FROM ({' UNION ALL '.join(arms)}) t GROUP BY path_id "
            "HAVING sum(pv) > 0 ORDER BY v DESC, pv DESC, path_id LIMIT %s OFFSET %s"
        )
    else:
        sql = (
            f"SELECT path_id, sum(visitors) v, sum(pageviews) pv FROM {PathHour._meta.db_table} "
            f"WHERE site_id = %s AND hour >= %s AND hour < %s{where} "
            "GROUP BY path_id ORDER BY v DESC, pv DESC, path_id LIMIT %s OFFSET %s"
        )
        head = [site.pk, *rng.utc_bounds(), *params]
    rows = _rows(sql, [*head, limit + 1, offset])
    more = len(rows) > limit
    rows = rows[:limit]
    paths = Path.objects.in_bulk([row[0] for row in rows])
    return [PathTotal(paths[path_id], int(v), int(pv)) for path_id, v, pv in rows], more


def path_days(site: Site, rng: Range, path_ids: list[int]) -> dict[int, tuple[list[int], list[int]]]:
    """path id -> (visitors, pageviews) per day of the range, zeros included. In the site's zone a path's
    days come from its months' arrays: a year of 20 busy paths is ~260 rows, not 7,300."""
    length = len(rng.days)
    series = {pk: ([0] * length, [0] * length) for pk in path_ids}
    if not path_ids:
        return series
    if rng.tz == site.timezone:
        rows = _rows(
            f"SELECT path_id, month, daily_visitors, daily_pageviews FROM {PathMonth._meta.db_table} "
            "WHERE site_id = %s AND month BETWEEN %s AND %s AND path_id = ANY(%s)",
            [site.pk, rng.start.replace(day=1), rng.end.replace(day=1), path_ids],
        )
        for pk, month, visitors, pageviews in rows:
            daily, daily_pageviews = series[pk]
            first = (month - rng.start).days  # where the month's day 1 falls in the range
            low = max(0, -first)
            high = max(low, min(len(visitors), length - first))  # an array may end before the range starts
            daily[first + low : first + high] = visitors[low:high]
            daily_pageviews[first + low : first + high] = pageviews[low:high]
        return series
    rows = _rows(
        f"SELECT path_id, (hour AT TIME ZONE %s)::date, sum(visitors), sum(pageviews) FROM {PathHour._meta.db_table} "
        "WHERE site_id = %s AND path_id = ANY(%s) AND hour >= %s AND hour < %s GROUP BY 1, 2",
        [rng.tz, site.pk, path_ids, *rng.utc_bounds()],
    )
    for pk, day, visitors, pageviews in rows:
        n = (day - rng.start).days
        # PostgreSQL's zone data and Python's can disagree (a zone whose rules changed, as Alberta's in 2026, on a
        # server with newer data): an hour within the bounds may then fall on a day outside the range there.
        if 0 <= n < length:
            series[pk][0][n], series[pk][1][n] = int(visitors), int(pageviews)
    return series


EPOCH_DAY = date(1970, 1, 1)


def path_hours(site: Site, rng: Range, path_ids: list[int]) -> dict[int, dict[date, tuple[list[int], list[int]]]]:
    """path id -> day -> (24 hourly visitors, 24 hourly pageviews), hours of the range's zone."""
    series: dict[int, dict[date, tuple[list[int], list[int]]]] = defaultdict(dict)
    if not path_ids:
        return series
    # A row a path, its hours in arrays, each as the hours since 1970-01-01 00:00 on the zone's clock (in a zone
    # half an hour off, the hour it starts in, as datetime.hour has it): no Python object a row (14,000 hours of
    # 20 paths over 30 days at 10M hits), where rows of datetimes cost 143 ms with the reading. A day of a clock
    # change has an hour twice (added) or none (a zero).
    local_hour = "floor(extract(epoch FROM hour AT TIME ZONE %s) / 3600)::bigint"
    rows = _rows(
        f"SELECT path_id, array_agg({local_hour}), array_agg(visitors), array_agg(pageviews) "
        f"FROM {PathHour._meta.db_table} "
        "WHERE site_id = %s AND path_id = ANY(%s) AND hour >= %s AND hour < %s GROUP BY path_id",
        [rng.tz, site.pk, path_ids, *rng.utc_bounds()],
    )
    days: dict[int, date] = {}
    for path_id, hours, visitors, pageviews in rows:
        path = series[path_id]
        for local, v, pv in zip(hours, visitors, pageviews, strict=True):
            number, hour = divmod(local, 24)
            if (day := days.get(number)) is None:
                day = days[number] = EPOCH_DAY + timedelta(days=number)
            if (daily := path.get(day)) is None:
                daily = path[day] = ([0] * 24, [0] * 24)
            daily[0][hour] += v
            daily[1][hour] += pv
    return series


@dataclass
class Stat:
    name: str
    visitors: int
    pageviews: int
    ref_scheme: str = ""


def dimension(
    site: Site, kind: str, rng: Range, *, name: str | None = None, limit: int = 20, offset: int = 0
) -> tuple[list[Stat], bool]:
    """Browsers, systems, sizes, locations, languages or campaigns in the range (their days are the site's);
    with name, that one's detail (a browser's versions, a country's regions, a size group's widths)."""
    assert kind in StatDay.KINDS
    low, high = _site_days(site, rng)
    column = "detail" if name is not None else "name"
    where = " AND name = %s" if name is not None else ""
    rows = _rows(
        f"SELECT {column}, sum(visitors) v, sum(pageviews) pv FROM {StatDay._meta.db_table} "
        f"WHERE site_id = %s AND kind = %s AND day BETWEEN %s AND %s{where} "
        f"GROUP BY {column} ORDER BY v DESC, pv DESC, {column} LIMIT %s OFFSET %s",
        [site.pk, kind, low, high, *([name] if name is not None else []), limit + 1, offset],
    )
    return [Stat(str(n), int(v), int(pv)) for n, v, pv in rows[:limit]], len(rows) > limit


def referrers(
    site: Site, rng: Range, *, path_id: int | None = None, ref: str | None = None, limit: int = 20, offset: int = 0
) -> tuple[list[Stat], bool]:
    """Referrers of one path, or of the whole site (toprefs); with ref, the paths that referrer sent people to."""
    low, high = _site_days(site, rng)
    table = RefDay._meta.db_table
    if ref is not None:
        rows = _rows(
            f"SELECT p.path, sum(r.visitors) v, sum(r.pageviews) pv, '' FROM {table} r "
            f"JOIN {Path._meta.db_table} p ON p.id = r.path_id "
            "WHERE r.site_id = %s AND r.day BETWEEN %s AND %s AND r.ref = %s "
            "GROUP BY p.path ORDER BY v DESC, pv DESC, p.path LIMIT %s OFFSET %s",
            [site.pk, low, high, ref, limit + 1, offset],
        )
    elif path_id is None:  # the whole site's: a row a referrer a day, however many paths
        rows = _rows(
            f"SELECT name, sum(visitors) v, sum(pageviews) pv, min(detail) FROM {StatDay._meta.db_table} "
            "WHERE site_id = %s AND kind = 'toprefs' AND day BETWEEN %s AND %s "
            "GROUP BY name ORDER BY v DESC, pv DESC, name LIMIT %s OFFSET %s",
            [site.pk, low, high, limit + 1, offset],
        )
    else:
        where = " AND path_id = %s" if path_id is not None else ""
        rows = _rows(
            f"SELECT ref, sum(visitors) v, sum(pageviews) pv, min(ref_scheme) FROM {table} "
            f"WHERE site_id = %s AND day BETWEEN %s AND %s{where} "
            "GROUP BY ref ORDER BY v DESC, pv DESC, ref LIMIT %s OFFSET %s",
            [site.pk, low, high, *([path_id] if path_id is not None else []), limit + 1, offset],
        )
    return [Stat(str(n), int(v), int(pv), scheme) for n, v, pv, scheme in rows[:limit]], len(rows) > limit


def _month_cover(rng: Range) -> tuple[tuple[date, date] | None, list[tuple[int, date, date]]]:
    """The fewest rollup rows that sum to the range's counts: (first and last month to take whole, or None)
    and day spans to add (+1) or take away (-1). Only the first and the last month can be partial; each is
    read as its days in the range, or, when most of it is, as the month less its days outside the range
    (a month's counts are its days' sums). A year of 400 paths reads ~13 x 400 rows, not ~45 x 400."""
    whole: list[date] = []
    spans: list[tuple[int, date, date]] = []
    month = rng.start.replace(day=1)
    while month <= rng.end:
        after = (month + timedelta(days=32)).replace(day=1)
        last = after - timedelta(days=1)
        low, high = max(month, rng.start), min(last, rng.end)
        inside, length = (high - low).days + 1, (last - month).days + 1
        if inside * 2 <= length:
            spans.append((1, low, high))
        else:
            whole.append(month)
            if low > month:
                spans.append((-1, month, low - timedelta(days=1)))
            if high < last:
                spans.append((-1, high + timedelta(days=1), last))
        month = after
    return ((whole[0], whole[-1]) if whole else None), spans


def _site_days(site: Site, rng: Range) -> tuple[date, date]:
    """The site-zone days covering the range: the per-day tables keep the site's days only."""
    if rng.tz == site.timezone:
        return rng.start, rng.end
    zone = zoneinfo.ZoneInfo(site.timezone)
    low, high = rng.utc_bounds()
    return low.astimezone(zone).date(), (high - timedelta(microseconds=1)).astimezone(zone).date()


# --- for the stats API (analytics.stats_views) ---------------------------------------------------------


def list_paths(
    site: Site, *, after: int = 0, limit: int = 20, names: list[str] | None = None, ids: list[int] | None = None
) -> tuple[list[Path], bool]:
    """The site's paths by id after `after` (a keyset cursor), optionally only those named or with these ids;
    and whether there are more."""
    paths = Path.objects.filter(site=site, id__gt=after)
    if names is not None:
        paths = paths.filter(path__in=names)
    if ids is not None:
        paths = paths.filter(id__in=ids)
    rows = list(paths.order_by("id")[: limit + 1])
    return rows[:limit], len(rows) > limit


def path_ids_by_name(site: Site, names: list[str]) -> list[int]:
    """The ids of the site's paths (pages and events) with these exact names."""
    return list(Path.objects.filter(site=site, path__in=names).values_list("id", flat=True))


def range_total(
    site: Site, rng: Range, *, include: list[int] | None = None, exclude: list[int] | None = None
) -> tuple[int, int]:
    """(visitors, pageviews) of the paths (those included, minus those excluded) over the whole range."""
    where, params = _path_filter(include, exclude)
    if rng.tz == site.timezone and include is None and not exclude:
        sql = (
            f"SELECT coalesce(sum(visitors), 0), coalesce(sum(pageviews), 0) FROM {StatDay._meta.db_table} "
            "WHERE site_id = %s AND kind = 'totals' AND day BETWEEN %s AND %s"
        )
        head = [site.pk, rng.start, rng.end]
    elif rng.tz == site.timezone:
        sql = (
            f"SELECT coalesce(sum(visitors), 0), coalesce(sum(pageviews), 0) FROM {PathDay._meta.db_table} "
            f"WHERE site_id = %s AND day BETWEEN %s AND %s{where}"
        )
        head = [site.pk, rng.start, rng.end]
    else:
        sql = (
            f"SELECT coalesce(sum(visitors), 0), coalesce(sum(pageviews), 0) FROM {PathHour._meta.db_table} "
            f"WHERE site_id = %s AND hour >= %s AND hour < %s{where}"
        )
        head = [site.pk, *rng.utc_bounds()]
    visitors, pageviews = _rows(sql, [*head, *params])[0]
    return int(visitors), int(pageviews)


def event_and_utc_totals(
    site: Site, rng: Range, *, include: list[int] | None = None
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((visitors, pageviews) of events alone, (visitors, pageviews) of the same dates taken as UTC days), of
    the paths included (all when None): event_totals() and utc_total() with a path filter, in one query."""
    where, params = _path_filter(include, None)
    utc = zoneinfo.ZoneInfo("UTC")
    utc_low = datetime.combine(rng.start, time.min, utc)
    utc_high = datetime.combine(rng.end + timedelta(days=1), time.min, utc)
    low, high = rng.utc_bounds()
    where = where.replace("path_id", "d.path_id")
    row = _rows(
        "SELECT coalesce(sum(d.visitors) FILTER (WHERE p.event AND d.hour >= %s AND d.hour < %s), 0), "
        "coalesce(sum(d.pageviews) FILTER (WHERE p.event AND d.hour >= %s AND d.hour < %s), 0), "
        "coalesce(sum(d.visitors) FILTER (WHERE d.hour >= %s AND d.hour < %s), 0), "
        "coalesce(sum(d.pageviews) FILTER (WHERE d.hour >= %s AND d.hour < %s), 0) "
        f"FROM {PathHour._meta.db_table} d JOIN {Path._meta.db_table} p ON p.id = d.path_id "
        f"WHERE d.site_id = %s AND d.hour >= %s AND d.hour < %s{where}",
        [
            low,
            high,
            low,
            high,
            utc_low,
            utc_high,
            utc_low,
            utc_high,
            site.pk,
            min(low, utc_low),
            max(high, utc_high),
            *params,
        ],
    )[0]
    return (int(row[0]), int(row[1])), (int(row[2]), int(row[3]))


def hourly_totals(
    site: Site, rng: Range, *, include: list[int] | None = None
) -> dict[date, tuple[list[int], list[int]]]:
    """day -> (24 hourly visitors, 24 hourly pageviews) of all paths (or those included), hours of the
    range's zone, for the days that had any."""
    where, params = _path_filter(include, None)
    rows = _rows(
        f"SELECT hour AT TIME ZONE %s, sum(visitors), sum(pageviews) FROM {PathHour._meta.db_table} "
        f"WHERE site_id = %s AND hour >= %s AND hour < %s{where} GROUP BY 1",
        [rng.tz, site.pk, *rng.utc_bounds(), *params],
    )
    series: dict[date, tuple[list[int], list[int]]] = {}
    for local, visitors, pageviews in rows:
        day = series.setdefault(local.date(), ([0] * 24, [0] * 24))
        day[0][local.hour] += int(visitors)
        day[1][local.hour] += int(pageviews)
    return series
