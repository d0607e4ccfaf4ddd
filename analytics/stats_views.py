"""GoatCounter's stats API (/api/v0/paths and /api/v0/stats/...): answered from the rollups only.

Every number comes from analytics.stats, which reads the rollup tables (PathHour, PathDay, RefDay, StatDay);
no request reads the hit table. GoatCounter's numbers are visitors (`count`, `daily`, `total`); we add
pageviews next to each (`count_pageviews`, `daily_pageviews`, `total_pageviews`).

Days and hours are those of the `tz` parameter (an IANA name), else of the site's time zone. Query
parameters are strict, as GoatCounter's: an unknown one is a 400 {"error": "unknown parameter: \"x\""};
a bad value a 400 {"errors": {"<param>": ["..."]}}. As in GoatCounter, a parameter is also known by its Go
field name (Limit, After, PathByName), and of one given twice the first value counts.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, timedelta
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import sites, stats
from analytics.models import Path, Site, StatDay
from analytics.views import GoatCounterView
from logsvc.fields import time_zones
from logsvc.openapi import bounded, error_responses
from logsvc.pagination import MAX_OFFSET

PATHS_LIMIT = (20, 200)  # default, maximum
HITS_LIMIT = (20, 100)
LIST_LIMIT = (20, 100)
GROUPS = ("hour", "day", "week", "month")
# group=hour costs 24 numbers a day a path: 100 paths over three years were 20 MB and 5 s of a worker.
HOURLY_MAX_DAYS = 31
PAGES = (*StatDay.KINDS, "toprefs")
DETAIL_PAGES = ("browsers", "systems", "sizes", "locations", "campaigns", "toprefs")

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class Params:
    """The request's query parameters, checked; problems are collected and raised together by done()."""

    def __init__(self, request: Request, allowed: set[str]) -> None:
        # GoatCounter matches a parameter by its Go field name too (Limit, PathByName), and of a parameter given
        # twice takes the first value.
        go_names = {"".join(part.capitalize() for part in name.split("_")): name for name in allowed}
        self.lists: dict[str, list[str]] = {}
        for name, values in request.query_params.lists():
            if name not in allowed and name not in go_names:
                raise exceptions.ParseError(f'unknown parameter: "{name}"')
            self.lists.setdefault(name if name in allowed else go_names[name], []).extend(values)
        self.errors: dict[str, list[str]] = {}

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def done(self) -> None:
        if self.errors:
            raise exceptions.ValidationError(self.errors)

    def get(self, name: str) -> str | None:
        value = self.lists.get(name, [None])[0]
        return None if value is None or value == "" else value

    def getlist(self, name: str) -> list[str]:
        return self.lists.get(name, [])

    def integer(self, name: str, default: int, low: int, high: int = MAX_OFFSET) -> int:
        """A whole number from low to high; by default at most what PostgreSQL's bigint (an OFFSET) holds."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            self.error(name, f"Must be a whole number from {low} to {high}.")
            return default
        return value

    def boolean(self, name: str) -> bool:
        raw = self.get(name)
        if raw is None:
            return False
        if raw.lower() in ("true", "1", "on", "yes"):
            return True
        if raw.lower() in ("false", "0", "off", "no"):
            return False
        self.error(name, "Must be true or false.")
        return False

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        raw = self.get(name)
        if raw is None:
            return default
        if raw not in choices:
            self.error(name, f"Must be one of: {', '.join(choices)}.")
            return default
        return raw

    def timezone(self, site: Site) -> str:
        raw = self.get("tz")
        if raw is None:
            return site.timezone
        if raw not in time_zones():
            self.error("tz", f"Unknown time zone {raw!r}; use an IANA name such as Europe/Amsterdam or UTC.")
            return site.timezone
        return raw

    def day(self, name: str, tz: str) -> date | None:
        raw = self.get(name)
        if raw is None:
            return None
        raw = re.sub(r" (\d{2}:\d{2})$", r"+\1", raw)  # a "+" in an offset that was not URL-encoded
        day = None
        try:
            if DATE.match(raw):
                day = date.fromisoformat(raw)
            elif RFC3339.match(raw):
                day = datetime.fromisoformat(raw.upper().replace(" ", "T")).astimezone(zoneinfo.ZoneInfo(tz)).date()
        except (ValueError, OverflowError):  # OverflowError: year 1 minus an offset, 9999 plus one
            pass
        if day is None:
            self.error(name, "Must be a date (2006-01-02) or an RFC 3339 time (2006-01-02T15:04:05Z).")
        elif not stats.FIRST_DAY <= day <= stats.LAST_DAY:
            self.error(name, f"Must be a day from {stats.FIRST_DAY} to {stats.LAST_DAY}.")
            day = None
        return day

    def range(self, site: Site) -> stats.Range:
        """start..end (inclusive days of tz); by default the last 7 days up to today."""
        tz = self.timezone(site)
        start, end = self.day("start", tz), self.day("end", tz)
        today = datetime.now(zoneinfo.ZoneInfo(tz)).date()
        if "start" in self.errors or "end" in self.errors or "tz" in self.errors:
            return stats.Range(today - timedelta(days=6), today, tz)  # never used: done() raises first
        if end is None:
            end = min(max(today, start), start + timedelta(days=stats.MAX_RANGE_DAYS - 1)) if start else today
        if start is None:
            start = max(end - timedelta(days=6), stats.FIRST_DAY)
        if end < start:
            self.error("end", "Must not be before start.")
        elif (end - start).days + 1 > stats.MAX_RANGE_DAYS:
            self.error("end", f"The range may be at most {stats.MAX_RANGE_DAYS} days long.")
        return stats.Range(start, end, tz)

    def group(self, rng: stats.Range) -> str:
        """day, week or month for any range; hour for ranges of at most HOURLY_MAX_DAYS days."""
        group = self.choice("group", GROUPS, "day")
        if group == "hour" and (rng.end - rng.start).days + 1 > HOURLY_MAX_DAYS:
            self.error("group", f"group=hour covers at most {HOURLY_MAX_DAYS} days; ask for fewer days, or group=day.")
        return group

    def path_list(self, site: Site, name: str, by_name: bool) -> list[int] | None:
        """Comma-separated path ids, or paths with path_by_name=true; None when not given."""
        raw = self.get(name)
        if raw is None:
            return None
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if by_name:
            return stats.path_ids_by_name(site, items)
        try:
            return [int(item) for item in items]
        except ValueError:
            self.error(name, "Must be path ids separated by commas (or paths, with path_by_name=true).")
            return None


def hourly(rng: stats.Range) -> bool:
    """Whether a range is short enough for hours: 24 numbers a day a path (see HOURLY_MAX_DAYS)."""
    return (rng.end - rng.start).days + 1 <= HOURLY_MAX_DAYS


def _stat_items(
    rng: stats.Range,
    visitors: list[int],
    pageviews: list[int],
    group: str,
    hours: dict[date, tuple[list[int], list[int]]] | None = None,
) -> list[dict[str, Any]]:
    """One item per day of the range, zeros filled; always hourly (as GoatCounter; an empty list when hours is
    None: ranges longer than HOURLY_MAX_DAYS), the week's total on each Monday with group=week, the month's on
    each 1st with group=month (of the days in the range)."""
    items = [
        {"day": iso, "daily": v, "daily_pageviews": pv}
        for iso, v, pv in zip(rng.iso_days, visitors, pageviews, strict=True)
    ]
    for day, item in zip(rng.days, items, strict=True):
        if hours is None:
            item["hourly"] = []  # (and no hourly_pageviews, which GoatCounter doesn't have: 2 MB fewer in a big answer)
        else:
            item["hourly"], item["hourly_pageviews"] = hours.get(day, ([0] * 24, [0] * 24))
    if group in ("week", "month"):
        sums: dict[date, list[int]] = {}
        for day, v, pv in zip(rng.days, visitors, pageviews, strict=True):
            total = sums.setdefault(
                day - timedelta(days=day.weekday()) if group == "week" else day.replace(day=1), [0, 0]
            )
            total[0] += v
            total[1] += pv
        name = "weekly" if group == "week" else "monthly"
        for day, item in zip(rng.days, items, strict=True):
            if day in sums:
                item[name], item[f"{name}_pageviews"] = sums[day]
    return items


# What Params.day takes, as a pattern: a day of 1901..9998 (so that any offset keeps it in FIRST_DAY..LAST_DAY),
# or an RFC 3339 time; empty is the default. (The 29th to 31st are taken too; a pattern can't tell which exist.)
DAY_PATTERN = (
    r"^((19(0[1-9]|[1-9]\d)|[2-8]\d{3}|9([0-8]\d\d|9[0-8]\d))-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])"
    r"([Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d))?)?$"
)


def _range_parameters(*extra: OpenApiParameter) -> list[OpenApiParameter]:
    return [
        OpenApiParameter(
            "start",
            str,
            pattern=DAY_PATTERN,
            description=f"First day: 2006-01-02, or an RFC 3339 time; from {stats.FIRST_DAY} to {stats.LAST_DAY}. "
            "Default: 6 days before end.",
        ),
        OpenApiParameter(
            "end",
            str,
            pattern=DAY_PATTERN,
            description="Last day (included), not before start; the range is at most "
            f"{stats.MAX_RANGE_DAYS} days. Default: today (or start's last day within that length).",
        ),
        OpenApiParameter(
            "tz",
            {"type": "string", "enum": ["", *sorted(time_zones())]},
            description="IANA time zone of the days and hours. Default (or empty): the site's.",
        ),
        *extra,
    ]


LIMIT_OFFSET = [
    OpenApiParameter("limit", bounded(1, 100), description="At most this many (default 20)."),
    OpenApiParameter("offset", bounded(0), description="Skip this many."),
]
STATS_ERRORS = (400, 401, 403, 429)


# One class each, used in several answers: drf-spectacular wants one identity per component name.
HitStat = type(
    inline_serializer(
        "HitStat",
        {
            "id": serializers.CharField(),
            "name": serializers.CharField(),
            "count": serializers.IntegerField(help_text="Visitors."),
            "count_pageviews": serializers.IntegerField(),
            "ref_scheme": serializers.CharField(
                required=False, help_text="Referrers: h http, g generated, c campaign, o other."
            ),
        },
    )
)


HitListStat = type(
    inline_serializer(
        "HitListStat",
        {
            "day": serializers.DateField(),
            "daily": serializers.IntegerField(help_text="Visitors."),
            "daily_pageviews": serializers.IntegerField(),
            "hourly": serializers.ListField(
                child=serializers.IntegerField(),
                help_text=f"24 numbers, the day's hours; empty for ranges of more than {HOURLY_MAX_DAYS} days.",
            ),
            "hourly_pageviews": serializers.ListField(
                child=serializers.IntegerField(), required=False, help_text="Beside non-empty `hourly`."
            ),
            "weekly": serializers.IntegerField(required=False, help_text="group=week, on Mondays"),
            "weekly_pageviews": serializers.IntegerField(required=False),
            "monthly": serializers.IntegerField(required=False, help_text="group=month, on the 1st"),
            "monthly_pageviews": serializers.IntegerField(required=False),
        },
    )
)


class StatsView(GoatCounterView):
    replica_reads = True  # stats tolerate a little lag (logsvc.replica)
    required_scopes = {"GET": "stats"}


class PathListView(StatsView):
    @extend_schema(
        operation_id="api_v0_paths_list",
        summary="The site's paths (pages and events), by id",
        parameters=[
            OpenApiParameter(
                "after", bounded(0), description="Only paths with a higher id: the last id of the previous page."
            ),
            OpenApiParameter("limit", bounded(1, 200), description="At most this many (default 20)."),
            OpenApiParameter("path", str, description="Only this exact path (may be repeated)."),
            OpenApiParameter(
                "id",
                str,
                pattern=r"^( *[0-9]* *)(,( *[0-9]* *))*$",
                description="Only these path ids, separated by commas.",
            ),
        ],
        responses={
            200: inline_serializer(
                "PathList",
                {
                    "paths": inline_serializer(
                        "Path",
                        {
                            "id": serializers.IntegerField(),
                            "path": serializers.CharField(),
                            "title": serializers.CharField(),
                            "event": serializers.BooleanField(),
                        },
                        many=True,
                    ),
                    "more": serializers.BooleanField(),
                },
            ),
            **error_responses("goatcounter", *STATS_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        params = Params(request, {"after", "limit", "path", "id"})
        site = sites.site_for_request(request)
        after = params.integer("after", 0, 0)
        limit = params.integer("limit", PATHS_LIMIT[0], 1, PATHS_LIMIT[1])
        names = [name for name in params.getlist("path") if name] or None
        ids = params.path_list(site, "id", False)
        params.done()
        paths, more = stats.list_paths(site, after=after, limit=limit, names=names, ids=ids)
        return Response(
            {"paths": [{"id": p.pk, "path": p.path, "title": p.title, "event": p.event} for p in paths], "more": more}
        )


class TotalView(StatsView):
    @extend_schema(
        operation_id="api_v0_stats_total",
        summary="Totals of the site (or of some paths), per day",
        description="`total`, `total_events`, `total_utc` and `daily` count visitors, as GoatCounter; the "
        "`*_pageviews` fields count pageviews. `total_utc` takes the same dates as UTC days.",
        parameters=_range_parameters(
            OpenApiParameter("include_paths", str, description="Only these paths: ids separated by commas."),
            OpenApiParameter("path_by_name", bool, description="include_paths are paths, not ids."),
            OpenApiParameter(
                "group",
                str,
                enum=GROUPS,
                description=f"hour: at most {HOURLY_MAX_DAYS} days (every day has `hourly` all the same).",
            ),
        ),
        responses={
            200: inline_serializer(
                "StatsTotal",
                {
                    "total": serializers.IntegerField(),
                    "total_pageviews": serializers.IntegerField(),
                    "total_events": serializers.IntegerField(),
                    "total_events_pageviews": serializers.IntegerField(),
                    "total_utc": serializers.IntegerField(),
                    "total_utc_pageviews": serializers.IntegerField(),
                    "stats": HitListStat(many=True),
                },
            ),
            **error_responses("goatcounter", *STATS_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        params = Params(request, {"start", "end", "tz", "include_paths", "path_by_name", "group", "daily"})
        site = sites.site_for_request(request)
        rng = params.range(site)
        group = params.group(rng)
        params.boolean("daily")  # GoatCounter's deprecated switch: days are always there
        include = params.path_list(site, "include_paths", params.boolean("path_by_name"))
        params.done()
        days = stats.daily_totals(site, rng, include=include)
        hours = stats.hourly_totals(site, rng, include=include) if hourly(rng) else None
        events, utc = stats.event_and_utc_totals(site, rng, include=include)
        return Response(
            {
                "total": sum(v for v, _ in days.values()),
                "total_pageviews": sum(pv for _, pv in days.values()),
                "total_events": events[0],
                "total_events_pageviews": events[1],
                "total_utc": utc[0],
                "total_utc_pageviews": utc[1],
                "stats": _stat_items(
                    rng,
                    [days.get(day, (0, 0))[0] for day in rng.days],
                    [days.get(day, (0, 0))[1] for day in rng.days],
                    group,
                    hours,
                ),
            }
        )


class HitsView(StatsView):
    @extend_schema(
        operation_id="api_v0_stats_hits",
        summary="The paths with the most visitors, each with its days",
        description="Every day of the range is listed (zeros too). `count` and `daily` are visitors, "
        "`count_pageviews` and `daily_pageviews` pageviews; `max` is the highest `daily` (or `hourly` "
        "with group=hour) of the path.",
        parameters=_range_parameters(
            OpenApiParameter(
                "group",
                str,
                enum=GROUPS,
                description=f"hour: `max` is the highest `hourly` (at most {HOURLY_MAX_DAYS} days); week adds "
                "`weekly` on Mondays, month `monthly` on the 1st.",
            ),
            OpenApiParameter("include_paths", str, description="Only these paths: ids separated by commas."),
            OpenApiParameter("exclude_paths", str, description="Not these paths: ids separated by commas."),
            OpenApiParameter("path_by_name", bool, description="include_paths and exclude_paths are paths."),
            *LIMIT_OFFSET,
        ),
        responses={
            200: inline_serializer(
                "HitListResponse",
                {
                    "hits": inline_serializer(
                        "HitList",
                        {
                            "count": serializers.IntegerField(),
                            "count_pageviews": serializers.IntegerField(),
                            "path_id": serializers.IntegerField(),
                            "path": serializers.CharField(),
                            "event": serializers.BooleanField(),
                            "title": serializers.CharField(),
                            "max": serializers.IntegerField(),
                            "stats": HitListStat(many=True),
                        },
                        many=True,
                    ),
                    "total": serializers.IntegerField(),
                    "total_pageviews": serializers.IntegerField(),
                    "more": serializers.BooleanField(),
                },
            ),
            **error_responses("goatcounter", *STATS_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        allowed = {"start", "end", "tz", "group", "daily", "include_paths", "exclude_paths", "path_by_name"}
        params = Params(request, allowed | {"limit", "offset"})
        site = sites.site_for_request(request)
        rng = params.range(site)
        group = params.group(rng)
        params.boolean("daily")
        by_name = params.boolean("path_by_name")
        include = params.path_list(site, "include_paths", by_name)
        exclude = params.path_list(site, "exclude_paths", by_name)
        limit = params.integer("limit", HITS_LIMIT[0], 1, HITS_LIMIT[1])
        offset = params.integer("offset", 0, 0)
        params.done()
        top, more = stats.top_paths(site, rng, include=include, exclude=exclude, limit=limit, offset=offset)
        ids = [row.path.pk for row in top]
        days = stats.path_days(site, rng, ids)
        hours = stats.path_hours(site, rng, ids) if hourly(rng) else None
        total = stats.range_total(site, rng, include=include, exclude=exclude)
        hits = []
        for row in top:
            items = _stat_items(rng, *days[row.path.pk], group, None if hours is None else hours.get(row.path.pk, {}))
            if group == "hour":
                peak = max((n for item in items for n in item["hourly"]), default=0)
            else:
                peak = max((item["daily"] for item in items), default=0)
            hits.append(
                {
                    "count": row.visitors,
                    "count_pageviews": row.pageviews,
                    "path_id": row.path.pk,
                    "path": row.path.path,
                    "event": row.path.event,
                    "title": row.path.title,
                    "max": peak,
                    "stats": items,
                }
            )
        return Response({"hits": hits, "total": total[0], "total_pageviews": total[1], "more": more})


def _stat_list(rows: list[stats.Stat], more: bool, *, key: str = "stats", ref_scheme: bool = False) -> Response:
    items = []
    for row in rows:
        item: dict[str, Any] = {
            "id": row.name,
            "name": row.name,
            "count": row.visitors,
            "count_pageviews": row.pageviews,
        }
        if ref_scheme:
            item["ref_scheme"] = row.ref_scheme
        items.append(item)
    return Response({key: items, "more": more})


STAT_LIST = inline_serializer("HitStatList", {"stats": HitStat(many=True), "more": serializers.BooleanField()})


class PathRefsView(StatsView):
    @extend_schema(
        operation_id="api_v0_stats_hits_refs",
        summary="Where a path's visitors came from",
        parameters=_range_parameters(*LIMIT_OFFSET),
        responses={
            200: inline_serializer("RefList", {"refs": HitStat(many=True), "more": serializers.BooleanField()}),
            **error_responses("goatcounter", 400, 401, 403, 404, 429),
        },
    )
    def get(self, request: Request, path_id: int) -> Response:
        params = Params(request, {"start", "end", "tz", "limit", "offset"})
        site = sites.site_for_request(request)
        rng = params.range(site)
        limit = params.integer("limit", LIST_LIMIT[0], 1, LIST_LIMIT[1])
        offset = params.integer("offset", 0, 0)
        params.done()
        if not Path.objects.filter(site=site, pk=path_id).exists():
            raise exceptions.NotFound("no such path")
        rows, more = stats.referrers(site, rng, path_id=path_id, limit=limit, offset=offset)
        return _stat_list(rows, more, key="refs", ref_scheme=True)


def _page(page: str, pages: tuple[str, ...]) -> str:
    if page not in pages:
        raise exceptions.NotFound(f"unknown page {page!r}: use one of {', '.join(pages)}")
    return page


class StatListView(StatsView):
    @extend_schema(
        operation_id="api_v0_stats_page",
        summary="Browsers, systems, sizes, locations, languages, campaigns or top referrers",
        parameters=[
            OpenApiParameter("page", str, OpenApiParameter.PATH, enum=PAGES),
            *_range_parameters(*LIMIT_OFFSET),
        ],
        responses={200: STAT_LIST, **error_responses("goatcounter", 400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, page: str) -> Response:
        _page(page, PAGES)
        params = Params(request, {"start", "end", "tz", "limit", "offset"})
        site = sites.site_for_request(request)
        rng = params.range(site)
        limit = params.integer("limit", LIST_LIMIT[0], 1, LIST_LIMIT[1])
        offset = params.integer("offset", 0, 0)
        params.done()
        if page == "toprefs":
            rows, more = stats.referrers(site, rng, limit=limit, offset=offset)
            return _stat_list(rows, more, ref_scheme=True)
        rows, more = stats.dimension(site, page, rng, limit=limit, offset=offset)
        return _stat_list(rows, more)


class StatDetailView(StatsView):
    @extend_schema(
        operation_id="api_v0_stats_page_detail",
        summary="The detail of one: a browser's or system's versions, a country's regions, a size group's "
        "widths, the paths a referrer sent visitors to",
        description="A campaign's detail is empty: its sources are not kept per campaign.",
        parameters=[
            OpenApiParameter("page", str, OpenApiParameter.PATH, enum=DETAIL_PAGES),
            OpenApiParameter("id", str, OpenApiParameter.PATH, description="The `id` of a row of the list."),
            *_range_parameters(*LIMIT_OFFSET),
        ],
        responses={200: STAT_LIST, **error_responses("goatcounter", 400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, page: str, id: str) -> Response:
        _page(page, DETAIL_PAGES)
        params = Params(request, {"start", "end", "tz", "limit", "offset"})
        site = sites.site_for_request(request)
        rng = params.range(site)
        limit = params.integer("limit", LIST_LIMIT[0], 1, LIST_LIMIT[1])
        offset = params.integer("offset", 0, 0)
        params.done()
        if page == "toprefs":
            rows, more = stats.referrers(site, rng, ref=id, limit=limit, offset=offset)
            return _stat_list(rows, more)
        rows, more = stats.dimension(site, page, rng, name=id, limit=limit, offset=offset)
        if page == "campaigns":  # the rollup keeps no detail ('') of a campaign: nothing to show
            rows = [row for row in rows if row.name]
        else:  # a browser without a version, a size group's unknown widths, a country without region
            rows = [stats.Stat(row.name or "(unknown)", row.visitors, row.pageviews) for row in rows]
        return _stat_list(rows, more)
