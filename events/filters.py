"""The filters that the Logster and Bytelog read APIs (events.views) and the explorer's pages (events.explorer)
share: one reading of `severity`, `q`, `since`, `start`, a cursor..., so a page and the API never disagree on
what a query means. They read a QueryDict and raise DRF's ValidationError, which the API renders in its family's
envelope and a page shows above its list.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta

from django.contrib.postgres.search import SearchQuery
from django.db.models import Q
from django.http import QueryDict
from rest_framework import exceptions

from events.models import SEARCH_CONFIG, SEARCH_SEPARATORS, EventQuerySet, LogMessageQuerySet
from events.validation import parse_timestamp

SEARCH_SPACES = str.maketrans(SEARCH_SEPARATORS, " " * len(SEARCH_SEPARATORS))


def int_param(params: QueryDict, name: str, default: int, maximum: int, minimum: int = 0) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if not minimum <= value <= maximum:
        raise exceptions.ValidationError({name: [f"Must be a whole number from {minimum} to {maximum}."]})
    return value


def text_search(words: str) -> SearchQuery:
    """`q` as the web search syntax (quotes, or, -word), over the words LogMessage.search holds."""
    return SearchQuery(words.translate(SEARCH_SPACES), config=SEARCH_CONFIG, search_type="websearch")


def filter_log_messages(messages: LogMessageQuerySet, params: QueryDict) -> LogMessageQuerySet:
    """Logster's read filters: minimum `severity`, `application`, `category`, `user`, `since` (included) and
    `until` (excluded) as ISO 8601, and `q`, a full-text search."""
    if "severity" in params:
        messages = messages.filter(severity__gte=int_param(params, "severity", 0, 6))
    for field in ("application", "category", "user"):
        if params.get(field):
            messages = messages.filter(**{field: params.get(field)})
    for name, lookup in (("since", "created__gte"), ("until", "created__lt")):
        if name in params:  # an empty one too: the document says a date-time
            moment = parse_timestamp(params.get(name, ""))
            if moment is None:
                raise exceptions.ValidationError({name: ["Use ISO 8601, such as 2026-01-31T12:00:00Z."]})
            messages = messages.filter(**{lookup: moment})
    if params.get("q"):
        messages = messages.filter(search=text_search(params.get("q", "")))
    return messages


# Keyset cursors: a row's (time, id), newest first, so that page 50 costs what page 1 does ---------------------


def encode_cursor(moment: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{pk}".encode()).decode()


def decode_cursor(cursor: str, name: str = "cursor") -> tuple[datetime, int]:
    try:
        moment, _, pk = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        parsed = datetime.fromisoformat(moment)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed, int(pk)  # stored times are UTC
    except ValueError:
        raise exceptions.ValidationError({name: ["Use the Next link of a previous page."]}) from None


def older_than(field: str, moment: datetime, pk: int) -> Q:
    """The rows after (moment, pk) in newest-first order."""
    return Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "pk__lt": pk})


def newer_than(field: str, moment: datetime, pk: int) -> Q:
    """The rows before (moment, pk) in newest-first order."""
    return Q(**{f"{field}__gt": moment}) | Q(**{field: moment, "pk__gt": pk})


# Bytelog ----------------------------------------------------------------------------------------------------


def event_date_filters(params: QueryDict) -> dict[str, datetime]:
    """`start` and `end` as days (YYYY-MM-DD, both included whole) or exact ISO 8601 times."""
    filters = {}
    for name in ("start", "end"):
        if name not in params:
            continue
        raw = params.get(name, "").strip()  # an empty one is refused: the document says a date
        moment = parse_timestamp(raw)
        if moment is None:
            raise exceptions.ValidationError({name: ["Use a date as YYYY-MM-DD (or an ISO 8601 time)."]})
        if name == "start":
            filters["date__gte"] = moment
        elif "T" not in raw.upper() and " " not in raw:  # a day (2021-08-15, 20210815), not a time
            if moment.date() < date.max:  # end=9999-12-31 has no day after it: no upper bound
                filters["date__lt"] = moment + timedelta(days=1)  # end=2021-08-15 includes all of that day
        else:
            filters["date__lte"] = moment
    return filters


def filter_events(events: EventQuerySet, params: QueryDict) -> EventQuerySet:
    """Bytelog's list filters: `start`, `end` and `name`."""
    events = events.filter(**event_date_filters(params))
    if name := params.get("name"):
        events = events.filter(name=name)
    return events
