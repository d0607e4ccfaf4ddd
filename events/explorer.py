"""The explorer: /logs/ and /events/, a signed-in user's own Logster messages and Bytelog events, searched, drawn
over time and followed live; a message's page, a trace's waterfall, and saved searches.

The filters are the read APIs' (events.filters), so a page and `GET /api/Log?...` agree on what a query means,
and every view is a link: the filters live in the query string. Lists page by keyset cursor (newest first, on the
(owner, time, id) indexes), so page 50 costs what page 1 does. The live tail is polled (logs_tail, a small JSON
answer): an open page holds no worker between its polls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection, connections
from django.db.models import Q, TextField
from django.db.models.functions import Cast, Left
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST, require_safe
from rest_framework import exceptions

from events.filters import (
    decode_cursor,
    encode_cursor,
    event_date_filters,
    filter_events,
    filter_log_messages,
    int_param,
    newer_than,
    older_than,
)
from events.models import (
    SEARCH_CONFIG,
    Event,
    EventQuerySet,
    LogMessage,
    LogMessageQuerySet,
    RollupCursor,
    SavedSearch,
)
from events.rollups import EPOCH, LEVELS, ROLLUPS, Rollup
from events.validation import parse_timestamp
from events.views import event_url_prefix, iso
from logsvc.models import User

PER_PAGE = 50
AROUND = 5  # the messages of the same application either side of one, on its page
TRACE_MAX = 1000  # events drawn on a trace's page
TAIL_OVERLAP = timedelta(seconds=2)  # a message committed late with an earlier time is still caught (the page dedups)
TAIL_SEEN_MAX = 2 * PER_PAGE  # ids a poll says the page has already (`seen`)
SEVERITIES = ["Trace", "Debug", "Info", "Warning", "Error", "Critical", "Fatal"]
PAGING = ("cursor", "before")  # the parameters that are a page's position, not its search
cursor_table = RollupCursor._meta.db_table


def refuse_nul(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A NUL in a page's path, query or form is a 400 before the view: PostgreSQL can't take one in a text value
    (logsvc.middleware.NulParameterMiddleware does this for the API's paths)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        fields = (*request.GET.lists(), *request.POST.lists())
        if "\x00" in request.path or any("\x00" in name or any("\x00" in v for v in values) for name, values in fields):
            return HttpResponseBadRequest("Must not contain NUL (U+0000) characters.", content_type="text/plain")
        return view(request, *args, **kwargs)

    return wrapper


def severity_name(severity: int) -> str:
    return SEVERITIES[severity] if 0 <= severity < len(SEVERITIES) else str(severity)


def signed_in(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # behind login_required
    return request.user


def errors_of(error: exceptions.ValidationError) -> list[str]:
    detail = error.detail
    if isinstance(detail, dict):
        return [
            f"{name}: {' '.join(str(text) for text in (texts if isinstance(texts, list) else [texts]))}"
            for name, texts in detail.items()
        ]
    return [str(detail)]


# Time ranges: presets relative to now, or a custom from/to ---------------------------------------------------


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    span: timedelta | None  # None: all time


PRESETS = [
    Preset("15m", "15 min", timedelta(minutes=15)),
    Preset("1h", "1 h", timedelta(hours=1)),
    Preset("24h", "24 h", timedelta(days=1)),
    Preset("7d", "7 d", timedelta(days=7)),
    Preset("30d", "30 d", timedelta(days=30)),
    Preset("all", "All", None),
]
DEFAULT_PRESET = "24h"  # a log explorer opens on the recent past (and its histogram counts a day, not a week)


@dataclass
class Range:
    preset: str  # a Preset's key, or "custom"
    start: datetime | None
    end: datetime | None  # None: now, and live
    label: str


def chosen_range(params: QueryDict, start_name: str, end_name: str, now: datetime) -> Range:
    """The custom range when the query names its ends, else the preset `range` (DEFAULT_PRESET)."""
    if params.get(start_name) or params.get(end_name):
        start = parse_timestamp(params.get(start_name, "")) if params.get(start_name) else None
        end = parse_timestamp(params.get(end_name, "")) if params.get(end_name) else None
        label = f"{start:%-d %b %Y %H:%M} to " if start else "Until "
        label += f"{end:%-d %b %Y %H:%M} UTC" if end else "now"
        return Range("custom", start, end, label if start or end else "All time")
    preset = next((p for p in PRESETS if p.key == params.get("range")), None)
    preset = preset or next(p for p in PRESETS if p.key == DEFAULT_PRESET)
    label = f"Last {preset.label}" if preset.span else "All time"
    return Range(preset.key, now - preset.span if preset.span else None, None, label)


def with_range(params: QueryDict, rng: Range, start_name: str, end_name: str) -> QueryDict:
    """The query the API's filters read: a preset becomes its start time."""
    query = params.copy()
    for name in (*PAGING, "range", "follow"):
        query.pop(name, None)
    if rng.preset != "custom":
        query.pop(start_name, None)
        query.pop(end_name, None)
        if rng.start:
            query[start_name] = iso(rng.start)
    else:
        for name in (start_name, end_name):
            if not query.get(name):
                query.pop(name, None)
    return query


def link(params: QueryDict, drop: tuple[str, ...] = (), **values: str) -> str:
    """This page's query with some parameters dropped or set: "?a=1&b=2"."""
    query = params.copy()
    for name in (*PAGING, *drop, *values):
        query.pop(name, None)
    for name, value in values.items():
        if value:
            query[name] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


def search_of(params: QueryDict) -> str:
    """The query string a saved search keeps: the filters, not the page's position."""
    query = params.copy()
    for name in (*PAGING, "follow"):
        query.pop(name, None)
    return query.urlencode()


# The histogram: counts per time bucket, drawn in SVG here (as the dashboard's chart) -------------------------

CHART_HEIGHT = 100
BUCKETS = [
    timedelta(seconds=s)
    for s in (
        *(60 * m for m in (1, 2, 5, 10, 15, 30)),
        *(3600 * h for h in (1, 2, 3, 6, 12)),
        *(86400 * d for d in (1, 2, 7, 14, 30, 91, 365)),
    )
]
MAX_BARS = 60
HISTORY_START = datetime(1970, 1, 1, tzinfo=UTC)  # a chart of all time starts here at the earliest


def nice_step(value: int) -> int:
    """The y axis' step: the smallest 1, 2, 2.5 or 5 times a power of ten that fits value in four steps."""
    step = 1
    while True:
        for factor in (1, 2, 2.5, 5):
            if step * factor >= value / 4 and (step * factor).is_integer():
                return int(step * factor)
        step *= 10


def bucket_size(start: datetime, end: datetime) -> timedelta:
    return next((size for size in BUCKETS if (end - start) / size <= MAX_BARS), BUCKETS[-1])


@dataclass
class Chart:
    svg: SafeString
    width: int
    ticks: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    bucket: str = ""
    counted_from: str = ""  # set when only the bars from this one on were counted (direct_counts' cap)


def bucket_label(size: timedelta) -> str:
    seconds = int(size.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def floor_to(moment: datetime, span: timedelta) -> datetime:
    return EPOCH + ((moment - EPOCH) // span) * span


def ceil_to(moment: datetime, span: timedelta) -> datetime:
    floor = floor_to(moment, span)
    return floor if floor == moment else floor + span


def pieces(lo: datetime, hi: datetime, size: timedelta) -> tuple[list[tuple[datetime, datetime]], list[Run]]:
    """[lo, hi) as what the rows must count (the parts of a minute at either end) and runs of whole rollup buckets:
    those of the largest span of LEVELS that divides a bar (size) in the middle, finer ones towards the ends. Every
    bucket of a run lies in one bar."""
    levels = [timedelta(seconds=span) for span in LEVELS if size % timedelta(seconds=span) == timedelta(0)]
    a, b = ceil_to(lo, levels[0]), floor_to(hi, levels[0])
    if a >= b:
        return [(lo, hi)], []
    rows = [(x, y) for x, y in ((lo, a), (b, hi)) if x < y]
    runs: list[Run] = []
    for span, coarser in zip(levels, [*levels[1:], None], strict=True):
        if coarser is not None and (a2 := ceil_to(a, coarser)) < (b2 := floor_to(b, coarser)):
            runs += [Run(span, x, y) for x, y in ((a, a2), (b2, b)) if x < y]
            a, b = a2, b2
            continue
        runs.append(Run(span, a, b))
        break
    return rows, runs


@dataclass(frozen=True)
class Run:
    span: timedelta  # the rollup's buckets from..to (excluded), of this span
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Rolled:
    """A histogram the rollups answer (events.rollups): an owner's rows of a table, by time and at least a severity."""

    rollup: Rollup
    owner_id: int
    min_severity: int = 0


# A histogram's counts: {(bar's start, severity or None): rows}.
Counts = dict[tuple[datetime, int | None], int]


def rolled_counts(rolled: Rolled, alias: str, lo: datetime, hi: datetime, size: timedelta) -> Counts:
    """The rows in [lo, hi) per bar from the rollup: its whole buckets, the rows not folded into it yet (above its
    cursor, an index range on id), and the rows of the parts of a minute at the ends. One statement (one snapshot);
    it reads the cursor again, and is run again in the rare case that a fold committed since the cursor was read."""
    r = rolled.rollup
    edges, runs = pieces(lo, hi, size)
    cols = "".join(f", {column}" for column in r.group)
    keep = "".join(f" AND {column} >= %(severity)s" for column in r.group)  # severity, the one group there is
    params: dict[str, Any] = {"owner": rolled.owner_id, "severity": rolled.min_severity, "size": size, "epoch": EPOCH}
    parts = [
        f"SELECT NULL::timestamptz{', NULL::int' * len(r.group)}, last_id FROM {cursor_table} WHERE name = %(name)s"
    ]
    for i, run in enumerate(runs):
        params |= {f"span{i}": int(run.span.total_seconds()), f"from{i}": run.start, f"to{i}": run.end}
        parts.append(
            f"SELECT bucket{cols}, n FROM {r.counts} WHERE owner_id = %(owner)s AND span = %(span{i})s"
            f" AND bucket >= %(from{i})s AND bucket < %(to{i})s{keep}"
        )
    if runs:  # the rows not folded yet, of the buckets' time
        params |= {"inner_from": min(run.start for run in runs), "inner_to": max(run.end for run in runs)}
        parts.append(
            f"SELECT {r.time}{cols}, 1 FROM {r.table} WHERE id > %(folded)s AND owner_id = %(owner)s"
            f" AND {r.time} >= %(inner_from)s AND {r.time} < %(inner_to)s{keep}"
        )
    for i, (x, y) in enumerate(edges):
        params |= {f"edge_from{i}": x, f"edge_to{i}": y}
        parts.append(
            f"SELECT {r.time}{cols}, 1 FROM {r.table} WHERE owner_id = %(owner)s"
            f" AND {r.time} >= %(edge_from{i})s AND {r.time} < %(edge_to{i})s{keep}"
        )
    sql = (
        f"SELECT date_bin(%(size)s, t, %(epoch)s){cols}, sum(n) FROM ({' UNION ALL '.join(parts)}) x (t{cols}, n)"
        f" GROUP BY 1{''.join(f', {2 + i}' for i in range(len(r.group)))}"
    )
    cursor_of = f"SELECT last_id FROM {cursor_table} WHERE name = %(name)s"
    with connections[alias].cursor() as cursor:
        cursor.execute(cursor_of, {"name": r.name})
        folded = (cursor.fetchone() or (0,))[0]
        for _ in range(5):
            cursor.execute(sql, {**params, "name": r.name, "folded": folded})
            found = cursor.fetchall()
            seen = next((row[-1] for row in found if row[0] is None), 0)
            if seen == folded:
                break
            folded = seen  # a fold committed in between: the rollup holds more now
    return {(row[0], row[1] if r.group else None): int(row[-1]) for row in found if row[0] is not None}


def rolled_first(rolled: Rolled, alias: str) -> datetime | None:
    """The minute of the owner's first row (of at least the severity), from the rollup and the rows not in it yet."""
    r = rolled.rollup
    keep = "".join(f" AND {column} >= %(severity)s" for column in r.group)
    sql = f"""
        SELECT min(t) FROM (
            SELECT min(bucket) FROM {r.counts} WHERE owner_id = %(owner)s AND span = %(span)s AND n > 0{keep}
            UNION ALL
            SELECT min({r.time}) FROM {r.table} WHERE id > %(folded)s AND owner_id = %(owner)s{keep}
        ) x (t)
    """
    params: dict[str, Any] = {
        "owner": rolled.owner_id,
        "severity": rolled.min_severity,
        "span": LEVELS[0],
        "name": r.name,
    }
    with connections[alias].cursor() as cursor:
        # The cursor first, as a value the planner sees (an index range on id); a fold committed since then only
        # puts rows in both halves, which a minimum does not mind.
        cursor.execute(f"SELECT last_id FROM {cursor_table} WHERE name = %s", [r.name])
        cursor.execute(sql, {**params, "folded": (cursor.fetchone() or (0,))[0]})
        return cursor.fetchone()[0]


def direct_counts(
    rows: Any, field_name: str, group: str | None, lo: datetime, hi: datetime, size: timedelta
) -> tuple[Counts, datetime | None]:
    """The rows in [lo, hi) per bar, counted one by one: the newest EXPLORER_HISTOGRAM_MAX_ROWS at most. Returns the
    counts and, when there were more, the oldest time counted: the bars up to its own are left out (they are short)."""
    cap = settings.EXPLORER_HISTOGRAM_MAX_ROWS
    chosen = rows.filter(**{f"{field_name}__gte": lo, f"{field_name}__lt": hi}).order_by(f"-{field_name}")
    picked = chosen.values(field_name, *([group] if group else []))[: cap + 1]
    inner, params = picked.query.sql_with_params()
    g = ", g" if group else ""
    sql = f"SELECT date_bin(%s, t, %s){g}, count(*), min(t) FROM ({inner}) x (t{g}) GROUP BY 1{', 2' if group else ''}"
    with connections[rows.db].cursor() as cursor:
        cursor.execute(sql, [size, EPOCH, *params])  # type: ignore[list-item]  # psycopg takes a timedelta
        found = cursor.fetchall()
    counts = {(row[0], row[1] if group else None): row[-2] for row in found}
    if sum(counts.values()) <= cap:
        return counts, None
    return counts, min(row[-1] for row in found)


def histogram(
    rows: Any,
    rolled: Rolled | None,
    field_name: str,
    series: list[tuple[str, str, Callable[[int], bool]]],
    rng: Range,
    bounds: tuple[datetime | None, datetime | None],
    now: datetime,
    params: QueryDict,
    start_name: str,
    end_name: str,
) -> Chart | None:
    """Bars of counts per bucket over the range, stacked by series (css class, label, which severities); each bar
    links to its bucket as a custom range. rows are the chosen rows, bounds their filter's time range ([from, to));
    rolled, when the rollups can count them (a filter of time and severity alone), else they are counted one by one
    (direct_counts: at most the newest EXPLORER_HISTOGRAM_MAX_ROWS). None when nothing matches."""
    end = min(rng.end or now, now)
    start = rng.start
    alias = rows.db
    if start is None:
        after = rolled_first(rolled, alias) if rolled else None
        first_rows = rows.filter(**{f"{field_name}__gte": after}) if after else rows
        first = (
            None
            if rolled and after is None
            else first_rows.order_by(field_name).values_list(field_name, flat=True).first()
        )
        if first is None:
            return None
        start = first
    start = max(start, HISTORY_START)
    if end <= start:
        return None  # a range in the future (or ending before 1970): nothing to draw
    size = bucket_size(start, end)
    first_bucket = floor_to(start, size)
    n = int((end - first_bucket) / size) + 1
    lo = max(moment for moment in (bounds[0], first_bucket) if moment is not None)
    hi = min(moment for moment in (bounds[1], first_bucket + n * size) if moment is not None)
    if lo >= hi:
        return None
    group = "severity" if len(series) > 1 else None  # one series: every row counts in it
    oldest = None
    if rolled:
        found = rolled_counts(rolled, alias, lo, hi, size)
    else:
        found, oldest = direct_counts(rows, field_name, group, lo, hi, size)
    uncounted = int((oldest - first_bucket) / size) if oldest else -1  # bars up to this one are not counted whole
    counts: dict[int, list[int]] = {}
    total = 0
    for (moment, severity), rows_in in found.items():
        index = int((moment - first_bucket) / size)
        if not uncounted < index < n:
            continue
        per = counts.setdefault(index, [0] * len(series))
        for s, (_, _, matches) in enumerate(series):
            if group is None or matches(severity or 0):
                per[s] += rows_in
                break
        total += rows_in
    if total == 0 and uncounted < 0:
        return None
    step = nice_step(max((sum(per) for per in counts.values()), default=0))
    top = step * 4
    parts = []
    for index in range(n):
        per = counts.get(index, [0] * len(series))
        moment = first_bucket + index * size
        title = f"{moment:%-d %b %H:%M}: " + ", ".join(
            f"{count:,} {label.lower()}" for (_, label, _), count in zip(series, per, strict=True) if count
        )
        if not any(per):
            title = f"{moment:%-d %b %H:%M}: none"
        href = link(
            params, ("range",), **{start_name: f"{moment:%Y-%m-%dT%H:%M}", end_name: f"{moment + size:%Y-%m-%dT%H:%M}"}
        )
        y = float(CHART_HEIGHT)
        rects = [f'<rect class="hover" x="{index}" y="0" width="1" height="{CHART_HEIGHT}"/>']
        if index <= uncounted:
            title = f"{moment:%-d %b %H:%M}: not counted (too many rows: narrow the range or the filters)"
            rects.append(f'<rect class="uncounted" x="{index + 0.1:g}" y="0" width="0.8" height="{CHART_HEIGHT}"/>')
        for (css, _, _), count in zip(series, per, strict=True):
            height = count * CHART_HEIGHT / top
            y -= height
            if count:
                rects.append(f'<rect class="{css}" x="{index + 0.1:g}" y="{y:.3f}" width="0.8" height="{height:.3f}"/>')
        parts.append(
            f'<a href="{escape(href)}"><g class="bucket"><title>{escape(title)}</title>{"".join(rects)}</g></a>'
        )
    ticks = [{"label": f"{step * i:,}", "top": 100 - 25 * i} for i in range(5)]
    every = max(1, -(-n // 6))
    span = n * size
    shape = "%-d %b" if span > timedelta(days=2) else "%-d %b %H:%M" if span > timedelta(hours=12) else "%H:%M"
    labels = [
        {"label": f"{first_bucket + i * size:{shape}}", "left": round((i + 0.5) * 100 / n, 2)}
        for i in range(0, n, every)
    ]
    counted_from = f"{first_bucket + (uncounted + 1) * size:%-d %b %H:%M}" if uncounted >= 0 else ""
    return Chart(mark_safe("".join(parts)), n, ticks, labels, total, bucket_label(size), counted_from)


LOG_SERIES: list[tuple[str, str, Callable[[int], bool]]] = [
    ("s-error", "Errors", lambda severity: severity >= 4),
    ("s-warn", "Warnings", lambda severity: severity == 3),
    ("s-info", "Info and below", lambda severity: severity <= 2),
]


# Highlighting the words a search matched ---------------------------------------------------------------------

WORD = re.compile(r"\w+")
NEGATED = re.compile(r'-"[^"]*"|-\S+')


def highlighter(q: str, texts: list[str]) -> Callable[[str], SafeString]:
    """A function that escapes a text and marks the words the search `q` found in it, as PostgreSQL found them:
    each word is reduced to its lexeme by to_tsvector (so "failing" marks "failed"), one query for a page."""
    wanted = {w.lower() for w in WORD.findall(NEGATED.sub(" ", q))} - {"or"}
    if not wanted or not texts:
        return lambda text: escape(text)
    words = sorted({w.lower() for text in texts for w in WORD.findall(text)} | wanted)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w, array_to_string(tsvector_to_array(to_tsvector(%s::regconfig, w)), ' ')"
            " FROM unnest(%s::text[]) AS w",
            [SEARCH_CONFIG, words],
        )
        lexeme = dict(cursor.fetchall())
    targets = {lexeme[w] for w in wanted if lexeme.get(w)}

    def mark(text: str) -> SafeString:
        out, last = [], 0
        for match in WORD.finditer(text):
            if lexeme.get(match.group().lower()) in targets:
                out += [escape(text[last : match.start()]), f"<mark>{escape(match.group())}</mark>"]
                last = match.end()
        out.append(escape(text[last:]))
        return mark_safe("".join(out))

    return mark


# /logs/ -----------------------------------------------------------------------------------------------------

ROW_FIELDS = ("pk", "created", "severity", "application", "category", "user")
HEAD_CHARS = 400  # of a message, on a list; its page shows it whole


def message_rows(messages: LogMessageQuerySet, q: str) -> list[dict[str, Any]]:
    """The rows of a list, heads only: a message may be 32 KB and its stack trace 256 KB."""
    return dressed(
        list(messages.values(*ROW_FIELDS, head=Left("message", HEAD_CHARS), exception_head=Left("exception", 200))), q
    )


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def times(moment: datetime) -> dict[str, str]:
    """A list row's time as the date filters would write it in the template (in UTC, the site's zone): ISO 8601
    ("c"), whole ("Y-m-d H:i:s.u") and short ("j M H:i:s"). Written here: three date filters cost a list of 50 rows
    more than the rest of its template."""
    moment = moment.astimezone(UTC)
    return {
        "iso": moment.isoformat(),
        "full": f"{moment:%Y-%m-%d %H:%M:%S.%f}",
        "short": f"{moment.day} {MONTHS[moment.month - 1]} {moment:%H:%M:%S}",
    }


def dressed(rows: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    """message_rows' rows with what the list draws: the head with the search's words marked, and so on."""
    mark = highlighter(q, [row["head"] for row in rows])
    before, after = reverse("explorer-log", args=[123456789]).split("123456789")
    for row in rows:
        row["url"] = f"{before}{row['pk']}{after}"
        row["when"] = times(row["created"])
        row["html"] = mark(row["head"])
        row["severity_name"] = severity_name(row["severity"])
        row["exception_line"] = row["exception_head"].split("\n", 1)[0]
    return rows


@dataclass
class Page:
    rows: list[dict[str, Any]]
    older: str | None
    newer: str | None


def keyset_page(rows: Any, params: QueryDict, field_name: str, fetch: Callable[[Any], list[dict[str, Any]]]) -> Page:
    """A page newest first from `cursor` (older) or `before` (newer); its links to the pages either side."""
    if params.get("before"):
        moment, pk = decode_cursor(params.get("before", ""), "before")
        found = fetch(rows.filter(newer_than(field_name, moment, pk)).order_by(field_name, "pk")[: PER_PAGE + 1])
        more_newer = len(found) > PER_PAGE
        found = found[:PER_PAGE][::-1]
        more_older = True
    else:
        if params.get("cursor"):
            rows = rows.filter(older_than(field_name, *decode_cursor(params.get("cursor", ""))))
        found = fetch(rows.order_by(f"-{field_name}", "-pk")[: PER_PAGE + 1])
        more_older = len(found) > PER_PAGE
        found = found[:PER_PAGE]
        more_newer = bool(params.get("cursor"))
    older = newer = None
    if found and more_older:
        older = link(params, cursor=encode_cursor(found[-1][field_name], found[-1]["pk"]))
    if found and more_newer:
        newer = link(params, before=encode_cursor(found[0][field_name], found[0]["pk"]))
    elif more_newer:
        newer = link(params)
    return Page(found, older, newer)


def recent_values(messages: LogMessageQuerySet, name: str) -> list[str]:
    """The values a filter's field took in the latest messages, for its suggestions (cheap: 500 rows)."""
    latest = messages.order_by("-created", "-id").values_list(name, flat=True)[:500]
    return sorted({value for value in latest if value})[:50]


def saved_searches(user: User, page: str) -> list[SavedSearch]:
    return list(SavedSearch.objects.filter(owner=user, page=page).order_by("name"))


def chosen_messages(user: User, params: QueryDict, now: datetime) -> tuple[LogMessageQuerySet, Range]:
    """The messages the page's filters choose (the API's filters, a preset range as its start time)."""
    rng = chosen_range(params, "since", "until", now)
    return filter_log_messages(LogMessage.objects.owned_by(user), with_range(params, rng, "since", "until")), rng


def log_bounds(params: QueryDict, rng: Range) -> tuple[datetime | None, datetime | None]:
    """The [from, to) of created that chosen_messages() filters on (as filter_log_messages reads it)."""
    query = with_range(params, rng, "since", "until")
    since, until = (parse_timestamp(query.get(name, "")) if query.get(name) else None for name in ("since", "until"))
    return since, until


UNROLLED_LOG_FILTERS = ("application", "category", "user", "q")  # what the rollup does not count by


def rolled_logs(user: User, params: QueryDict) -> Rolled | None:
    """The rollup's answer to the histogram of these filters, when it has one: time and severity alone."""
    if any(params.get(name) for name in UNROLLED_LOG_FILTERS):
        return None
    return Rolled(ROLLUPS["logs"], user.pk, int_param(params, "severity", 0, 6))


@refuse_nul
@login_required
@require_safe
def logs(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    params = request.GET
    rng = chosen_range(params, "since", "until", timezone.now())
    errors: list[str] = []
    page = Page([], None, None)
    try:
        messages, rng = chosen_messages(user, params, timezone.now())
        page = keyset_page(messages, params, "created", lambda rows: message_rows(rows, params.get("q", "")))
    except exceptions.ValidationError as error:
        errors = errors_of(error)
    top = page.rows[0] if page.rows and not page.newer else None
    mine = LogMessage.objects.owned_by(user)
    context = {
        "params": params,
        "page": page,
        "errors": errors,
        "rng": rng,
        "presets": [(p, link(params, ("since", "until"), range=p.key), p.key == rng.preset) for p in PRESETS],
        "severities": list(enumerate(SEVERITIES)),
        "severity": params.get("severity", ""),
        "suggest": [
            (name, params.get(name, ""), recent_values(mine, name)) for name in ("application", "category", "user")
        ],
        "saved": saved_searches(user, SavedSearch.Page.LOGS),
        "search": search_of(params),
        "cursor": encode_cursor(top["created"], top["pk"]) if top else "",
        "can_follow": not page.newer and rng.end is None,
        "follow": params.get("follow") == "1",
    }
    return render(request, "events/explorer/logs.html", context)


@refuse_nul
@login_required
@require_safe
def logs_histogram(request: HttpRequest) -> HttpResponse:
    """/logs/'s histogram, which the page fetches after it is shown: counting a week of a million messages costs
    more than the rest of the page, and the list need not wait for it."""
    now = timezone.now()
    user, params = signed_in(request), request.GET
    try:
        messages, rng = chosen_messages(user, params, now)
        bounds = log_bounds(params, rng)
        rolled = rolled_logs(user, params)
        chart = histogram(messages, rolled, "created", LOG_SERIES, rng, bounds, now, params, "since", "until")
    except exceptions.ValidationError as error:
        return HttpResponse("; ".join(errors_of(error)), status=400, content_type="text/plain")
    context = {"chart": chart, "rng": rng, "series": LOG_SERIES, "noun": "message", "title": "Log messages by severity"}
    return render(request, "events/explorer/_chart.html", context)


@refuse_nul
@login_required
@require_safe
def logs_tail(request: HttpRequest) -> HttpResponse:
    """The live tail's poll: the messages newer than `after` (a cursor) that match the page's filters, as the
    list's rows (HTML) and the cursor to ask with next. One index range scan; it holds no worker between polls.

    The answer goes back TAIL_OVERLAP before the cursor, for a message committed late with an earlier time; its
    `ids` are all the messages of that window, and the page sends them back as `seen`, so only the ones it does not
    have yet are drawn (a steady stream of messages is not drawn again at every poll)."""
    user = signed_in(request)
    params = request.GET
    rng = chosen_range(params, "since", "until", timezone.now())
    try:
        messages = filter_log_messages(LogMessage.objects.owned_by(user), with_range(params, rng, "since", "until"))
        after = params.get("after")
        if after:
            moment, pk = decode_cursor(after, "after")
            earliest = datetime.min.replace(tzinfo=UTC) + TAIL_OVERLAP
            messages = messages.filter(created__gte=max(moment, earliest) - TAIL_OVERLAP)
        window = list(
            messages.order_by("-created", "-pk").values(
                *ROW_FIELDS, head=Left("message", HEAD_CHARS), exception_head=Left("exception", 200)
            )[:PER_PAGE]
        )
        seen = {int(part) for part in params.get("seen", "").split(",")[:TAIL_SEEN_MAX] if part.isdigit()}
        rows = dressed([row for row in window if row["pk"] not in seen], params.get("q", ""))
    except exceptions.ValidationError as error:
        return JsonResponse({"errors": errors_of(error)}, status=400)
    cursor = after or ""
    if window and (not after or (window[0]["created"], window[0]["pk"]) > (moment, pk)):
        cursor = encode_cursor(window[0]["created"], window[0]["pk"])
    html = render_to_string("events/explorer/_log_rows.html", {"rows": rows, "params": params}, request=request)
    return JsonResponse({"html": html, "ids": [row["pk"] for row in window], "cursor": cursor})


FRAME = re.compile(r'^\s*(at |File "|\.\.\. \d+ more|--- End of)')


def trace_lines(text: str) -> list[dict[str, Any]]:
    """A stack trace's lines, the frames told apart from the messages between them (.NET, Java and Python)."""
    return [{"text": line, "frame": bool(FRAME.match(line))} for line in text.splitlines()]


@refuse_nul
@login_required
@require_safe
def log_message(request: HttpRequest, message_id: int) -> HttpResponse:
    user = signed_in(request)
    mine = LogMessage.objects.owned_by(user).defer("search")
    message = get_object_or_404(mine, pk=message_id)
    same_app = mine.filter(application=message.application).values(*ROW_FIELDS, head=Left("message", HEAD_CHARS))
    before = list(
        same_app.filter(newer_than("created", message.created, message.pk)).order_by("created", "pk")[:AROUND]
    )
    after = list(
        same_app.filter(older_than("created", message.created, message.pk)).order_by("-created", "-pk")[:AROUND]
    )
    around = [*before[::-1], *after]
    for row in around:
        row["severity_name"] = severity_name(row["severity"])
    moment = message.created
    context = {
        "message": message,
        "severity_name": severity_name(message.severity),
        "exception_lines": trace_lines(message.exception),
        "stack_lines": trace_lines(message.stack_trace),
        "before": before[::-1],
        "after": after,
        "around": around,
        "permalink": request.build_absolute_uri(),
        "app_link": link(QueryDict(), application=message.application, range="all") if message.application else "",
        "moment_link": link(
            QueryDict(),
            application=message.application,
            since=f"{moment - timedelta(minutes=5):%Y-%m-%dT%H:%M}",
            until=f"{moment + timedelta(minutes=5):%Y-%m-%dT%H:%M}",
        ),
    }
    return render(request, "events/explorer/log.html", context)


# /events/ ---------------------------------------------------------------------------------------------------

DATA_PREVIEW = 240


def filter_data(events: EventQuerySet, text: str) -> EventQuerySet:
    """`data`: key=value finds events whose data holds that key with that value (JSON, or else a string);
    anything else is looked for in the data's JSON text."""
    key, equals, value = text.partition("=")
    if equals and key.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value.strip()
        wanted = Q(data__contains={key.strip(): parsed})
        if not isinstance(parsed, str):
            wanted |= Q(data__contains={key.strip(): value.strip()})
        return events.filter(wanted)
    return events.annotate(data_text=Cast("data", TextField())).filter(data_text__icontains=text)


def event_rows(events: EventQuerySet, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [dict(row) for row in events.values("pk", "uid", "name", "trace_id", "date", "data")]
    for row in rows:
        row["when"] = times(row["date"])
        text = json.dumps(row["data"], ensure_ascii=False, separators=(", ", ": "))
        row["preview"] = text if len(text) <= DATA_PREVIEW else text[: DATA_PREVIEW - 1] + "…"
        row["public_url"] = f"{prefix}{row['uid']}.json"
    return rows


EVENT_SERIES: list[tuple[str, str, Callable[[int], bool]]] = [("s-event", "Events", lambda _: True)]


def chosen_events(user: User, params: QueryDict, now: datetime) -> tuple[EventQuerySet, Range]:
    """The events the page's filters choose: the API's `start`, `end` and `name`, and `data`."""
    rng = chosen_range(params, "start", "end", now)
    query = with_range(params, rng, "start", "end")
    if rng.preset == "custom" and rng.end and "end" in query:
        query["end"] = iso(rng.end)  # an exact time: a day alone would be read as the whole day
    found = filter_events(Event.objects.owned_by(user), query)
    if params.get("data"):
        found = filter_data(found, params.get("data", ""))
    return found, rng


def event_bounds(params: QueryDict, rng: Range) -> tuple[datetime | None, datetime | None]:
    """The [from, to) of date that chosen_events() filters on (as event_date_filters reads it)."""
    query = with_range(params, rng, "start", "end")
    if rng.preset == "custom" and rng.end and "end" in query:
        query["end"] = iso(rng.end)
    filters = event_date_filters(query)
    until = filters.get("date__lt") or (
        filters["date__lte"] + timedelta(microseconds=1) if "date__lte" in filters else None
    )
    return filters.get("date__gte"), until


UNROLLED_EVENT_FILTERS = ("name", "data")


def rolled_events(user: User, params: QueryDict) -> Rolled | None:
    """The rollup's answer to the histogram of these filters, when it has one: time alone."""
    if any(params.get(name) for name in UNROLLED_EVENT_FILTERS):
        return None
    return Rolled(ROLLUPS["events"], user.pk)


@refuse_nul
@login_required
@require_safe
def events(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    params = request.GET
    rng = chosen_range(params, "start", "end", timezone.now())
    prefix = event_url_prefix(request)  # type: ignore[arg-type]
    errors: list[str] = []
    page = Page([], None, None)
    try:
        found, rng = chosen_events(user, params, timezone.now())
        page = keyset_page(found, params, "date", lambda rows: event_rows(rows, prefix))
    except exceptions.ValidationError as error:
        errors = errors_of(error)
    latest = Event.objects.owned_by(user).order_by("-date", "-id").values_list("name", flat=True)[:500]
    context = {
        "params": params,
        "page": page,
        "errors": errors,
        "rng": rng,
        "presets": [(p, link(params, ("start", "end"), range=p.key), p.key == rng.preset) for p in PRESETS],
        "names": sorted(set(latest))[:50],
        "saved": saved_searches(user, SavedSearch.Page.EVENTS),
        "search": search_of(params),
    }
    return render(request, "events/explorer/events.html", context)


@refuse_nul
@login_required
@require_safe
def events_histogram(request: HttpRequest) -> HttpResponse:
    """/events/'s histogram, fetched after the page (as logs_histogram)."""
    now = timezone.now()
    user, params = signed_in(request), request.GET
    try:
        found, rng = chosen_events(user, params, now)
        bounds = event_bounds(params, rng)
        rolled = rolled_events(user, params)
        chart = histogram(found, rolled, "date", EVENT_SERIES, rng, bounds, now, params, "start", "end")
    except exceptions.ValidationError as error:
        return HttpResponse("; ".join(errors_of(error)), status=400, content_type="text/plain")
    context = {"chart": chart, "rng": rng, "series": EVENT_SERIES, "noun": "event", "title": "Events over time"}
    return render(request, "events/explorer/_chart.html", context)


def duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{int(seconds // 86400)} d {int(seconds % 86400 // 3600)} h"


@refuse_nul
@login_required
@require_safe
def trace(request: HttpRequest, trace_id: str) -> HttpResponse:
    """A trace's events in time order on one axis: each a mark at its moment, the gap since the one before it
    drawn as a bar (a waterfall of what happened)."""
    user = signed_in(request)
    found = Event.objects.owned_by(user).filter(trace_id=trace_id)
    rows = event_rows(found.order_by("date", "id")[:TRACE_MAX], event_url_prefix(request))  # type: ignore[arg-type]
    if not rows:
        return render(request, "events/explorer/trace.html", {"trace_id": trace_id, "missing": True}, status=404)
    first, last = rows[0]["date"], rows[-1]["date"]
    span = (last - first) or timedelta(milliseconds=1)
    previous = first
    for row in rows:
        row["left"] = round((previous - first) / span * 100, 3)
        row["at"] = round((row["date"] - first) / span * 100, 3)
        row["width"] = round(row["at"] - row["left"], 3)
        row["offset"] = "start" if row["date"] == first else f"+{duration(row['date'] - first)}"
        row["gap"] = duration(row["date"] - previous) if row["date"] != first else ""
        row["pretty"] = json.dumps(row["data"], ensure_ascii=False, indent=2)
        previous = row["date"]
    context = {
        "trace_id": trace_id,
        "rows": rows,
        "span": duration(last - first),
        "first": first,
        "more": found.count() > TRACE_MAX if len(rows) == TRACE_MAX else False,
        "permalink": request.build_absolute_uri(),
    }
    return render(request, "events/explorer/trace.html", context)


# Saved searches ---------------------------------------------------------------------------------------------


@refuse_nul
@login_required
@require_POST
def save_search(request: HttpRequest, page: str) -> HttpResponse:
    """Save (or, by the same name, replace) the page's filters under a name; back to the page."""
    user = signed_in(request)
    name = request.POST.get("name", "").strip()[:100]
    query = QueryDict(request.POST.get("query", "")[:2000], mutable=True)
    for drop in (*PAGING, "follow"):
        query.pop(drop, None)
    if not name:
        return redirect(f"/{page}/?{query.urlencode()}")
    SavedSearch.objects.update_or_create(owner=user, page=page, name=name, defaults={"query": query.urlencode()})
    return redirect(f"/{page}/?{query.urlencode()}")


@refuse_nul
@login_required
@require_POST
def delete_search(request: HttpRequest, search_id: int) -> HttpResponse:
    search = get_object_or_404(SavedSearch, owner=signed_in(request), pk=search_id)
    search.delete()
    return redirect(f"/{search.page}/")
