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

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Count, DateTimeField, F, Func, Q, TextField, Value
from django.db.models.functions import Cast, Left
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST, require_safe
from rest_framework import exceptions

from events.filters import (
    decode_cursor,
    encode_cursor,
    filter_events,
    filter_log_messages,
    newer_than,
    older_than,
)
from events.models import SEARCH_CONFIG, Event, EventQuerySet, LogMessage, LogMessageQuerySet, SavedSearch
from events.validation import parse_timestamp
from events.views import event_url_prefix, iso
from logsvc.models import User

PER_PAGE = 50
AROUND = 5  # the messages of the same application either side of one, on its page
TRACE_MAX = 1000  # events drawn on a trace's page
TAIL_OVERLAP = timedelta(seconds=2)  # a message committed late with an earlier time is still caught (the page dedups)
SEVERITIES = ["Trace", "Debug", "Info", "Warning", "Error", "Critical", "Fatal"]
PAGING = ("cursor", "before")  # the parameters that are a page's position, not its search


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
EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday: week buckets start on Mondays
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


def bucket_label(size: timedelta) -> str:
    seconds = int(size.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def histogram(
    rows: Any,
    field_name: str,
    series: list[tuple[str, str, Callable[[int], bool]]],
    rng: Range,
    now: datetime,
    params: QueryDict,
    start_name: str,
    end_name: str,
) -> Chart | None:
    """Bars of counts per bucket over the range, stacked by series (css class, label, which severities); each bar
    links to its bucket as a custom range. One GROUP BY query; None when nothing matches."""
    end = min(rng.end or now, now)
    start = rng.start
    if start is None:
        first = rows.order_by(field_name).values_list(field_name, flat=True).first()
        if first is None:
            return None
        start = first
    start = max(start, HISTORY_START)
    if end <= start:
        return None  # a range in the future (or ending before 1970): nothing to draw
    size = bucket_size(start, end)
    first_bucket = EPOCH + ((start - EPOCH) // size) * size
    n = int((end - first_bucket) / size) + 1
    bucket = Func(Value(size), F(field_name), Value(EPOCH), function="date_bin", output_field=DateTimeField())
    group = "severity" if len(series) > 1 else None  # one series: every row counts in it
    counted = rows.order_by().annotate(bucket=bucket).values("bucket", *([group] if group else []))
    counts: dict[int, list[int]] = {}
    total = 0
    for row in counted.annotate(n=Count("*")):
        index = int((row["bucket"] - first_bucket) / size)
        if not 0 <= index < n:
            continue
        per = counts.setdefault(index, [0] * len(series))
        for s, (_, _, matches) in enumerate(series):
            if group is None or matches(row[group]):
                per[s] += row["n"]
                break
        total += row["n"]
    if total == 0:
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
    return Chart(mark_safe("".join(parts)), n, ticks, labels, total, bucket_label(size))


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
    if not wanted:
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
    rows = list(messages.values(*ROW_FIELDS, head=Left("message", HEAD_CHARS), exception_head=Left("exception", 200)))
    mark = highlighter(q, [row["head"] for row in rows])
    for row in rows:
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
    try:
        messages, rng = chosen_messages(signed_in(request), request.GET, now)
        chart = histogram(messages, "created", LOG_SERIES, rng, now, request.GET, "since", "until")
    except exceptions.ValidationError as error:
        return HttpResponse("; ".join(errors_of(error)), status=400, content_type="text/plain")
    context = {"chart": chart, "rng": rng, "series": LOG_SERIES, "noun": "message", "title": "Log messages by severity"}
    return render(request, "events/explorer/_chart.html", context)


@refuse_nul
@login_required
@require_safe
def logs_tail(request: HttpRequest) -> HttpResponse:
    """The live tail's poll: the messages newer than `after` (a cursor) that match the page's filters, as the
    list's rows (HTML) and the cursor to ask with next. One index range scan; it holds no worker between polls."""
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
        rows = message_rows(messages.order_by("-created", "-pk")[:PER_PAGE], params.get("q", ""))
    except exceptions.ValidationError as error:
        return JsonResponse({"errors": errors_of(error)}, status=400)
    cursor = after or ""
    if rows and (not after or (rows[0]["created"], rows[0]["pk"]) > (moment, pk)):
        cursor = encode_cursor(rows[0]["created"], rows[0]["pk"])
    html = render_to_string("events/explorer/_log_rows.html", {"rows": rows, "params": params}, request=request)
    return JsonResponse({"html": html, "ids": [row["pk"] for row in rows], "cursor": cursor})


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
    try:
        found, rng = chosen_events(signed_in(request), request.GET, now)
        chart = histogram(found, "date", EVENT_SERIES, rng, now, request.GET, "start", "end")
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
