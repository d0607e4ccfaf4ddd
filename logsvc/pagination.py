"""The littlelogs page envelope: `?limit=&offset=` and `{count, next, previous, results}`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from rest_framework import exceptions, pagination
from rest_framework.request import Request

from logsvc.db import prepared_cursor

MAX_OFFSET = 2**63 - 1 - 1000  # room for OFFSET + LIMIT


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's limit/offset paging with a default of 20, at most 100 a page, and a cheap count.

    A view may define `get_count(queryset) -> int` to answer `count` from a denormalised counter
    instead of COUNT(*) over the whole filtered table; without one, the queryset is counted.
    Links are absolute (request.build_absolute_uri), so they stay https behind a proxy that says so.
    """

    default_limit = 20
    max_limit = 100
    limit: int  # our get_limit() and get_offset() always give one
    offset: int

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        self.read_page_parameters(queryset, request, view)
        # Unlike DRF, always read the page: a counter that is behind must not hide rows that exist.
        return page_by_ids(queryset, self.offset, self.limit)

    def paginate_ids(self, queryset: Any, request: Request, view: Any = None) -> list[int]:
        """Only the page's ids, for views that build their rows themselves (social.pages): of a QuerySet of
        models, their pks; of a flat values_list() or anything else that slices, what its slice holds."""
        self.read_page_parameters(queryset, request, view)
        if not isinstance(queryset, QuerySet):
            return list(queryset[self.offset : self.offset + self.limit])
        if not queryset._fields:  # type: ignore[attr-defined]  # private: what values() or values_list() chose
            queryset = queryset.values_list("pk", flat=True)
        sql, params = queryset[self.offset : self.offset + self.limit].query.sql_with_params()
        with prepared_cursor(queryset.db) as cursor:  # a page's SQL is the same for every request of its kind
            cursor.execute(sql, params)
            return [row[0] for row in cursor.fetchall()]

    def read_page_parameters(self, queryset: Any, request: Request, view: Any) -> None:
        self.view = view
        self.request = request
        self.limit = self.get_limit(request)
        self.count = self.get_count(queryset)
        self.offset = self.get_offset(request)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True

    def get_limit(self, request: Request) -> int:
        """1 or more (more than max_limit gives max_limit, as DRF does); anything else is a 400, not ignored."""
        raw = request.query_params.get(self.limit_query_param, "")
        if raw == "":
            return self.default_limit
        value = _whole_number(raw)
        if value is None or value < 1:
            raise exceptions.ValidationError({self.limit_query_param: ["Must be a whole number, 1 or more."]})
        return min(value, self.max_limit)

    def get_offset(self, request: Request) -> int:
        """0 to MAX_OFFSET: PostgreSQL's OFFSET is a bigint; anything else is a 400, not page one."""
        raw = request.query_params.get(self.offset_query_param, "")
        if raw == "":
            return 0
        value = _whole_number(raw)
        if value is None or not 0 <= value <= MAX_OFFSET:
            raise exceptions.ValidationError(
                {self.offset_query_param: [f"Must be a whole number from 0 to {MAX_OFFSET}."]}
            )
        return value

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results per page, default {self.default_limit}; more than {self.max_limit} gives {self.max_limit}."
                )
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}
        return parameters

    def get_count(self, queryset: QuerySet[Any] | Sequence[Any]) -> int:
        counter = getattr(self.view, "get_count", None)
        if counter is not None:
            return counter(queryset)
        return super().get_count(queryset)


class PreparedIds:
    """The ids that a fixed statement selects, in its order, for paginate_ids to slice: a page is that statement
    with OFFSET and LIMIT, prepared. (Compiling the same page from an ORM queryset cost ~0.2 ms of CPU, more
    than PostgreSQL took to run it.) A page already read with its count (`read`: offset, limit, ids) is not
    read again."""

    def __init__(
        self,
        sql: str,
        params: Sequence[Any] = (),
        using: str | None = None,  # None: logsvc.replica.reads(), when the page is read
        read: tuple[int, int, list[int]] | None = None,
    ) -> None:
        self.sql, self.params, self.using, self.read = sql, list(params), using, read

    def __getitem__(self, page: slice) -> list[int]:
        offset = page.start or 0
        if self.read is not None and self.read[:2] == (offset, page.stop - offset):
            return self.read[2]
        with prepared_cursor(self.using) as cursor:
            cursor.execute(f"{self.sql} OFFSET %s LIMIT %s", [*self.params, offset, page.stop - offset])
            return [row[0] for row in cursor.fetchall()]


def _whole_number(raw: str) -> int | None:
    """An ASCII decimal integer (no "١", no "1_000", no spaces), else None."""
    if not raw.lstrip("-").isascii() or not raw.lstrip("-").isdigit() or len(raw) > 40:
        return None
    return int(raw)


def page_by_ids(queryset: QuerySet[Any] | list[Any], offset: int, limit: int) -> list[Any]:
    """The rows of one page, found by their ids first: the OFFSET walks a narrow index and only the
    page's rows get their joins (joining every skipped row made deep pages grow with the table)."""
    if not isinstance(queryset, QuerySet):
        return list(queryset[offset : offset + limit])
    ids = list(queryset.values_list("pk", flat=True)[offset : offset + limit])
    if not ids:
        return []
    by_id = {row.pk: row for row in queryset.filter(pk__in=ids).order_by()}
    return [by_id[pk] for pk in ids if pk in by_id]


def fit_page(rows: Sequence[tuple[Any, ...]], limit: int) -> list[int]:
    """The ids of the (id, size, ...) rows, in page order, that one page holds: at most limit, and no more than
    PAGE_MAX_BYTES of them once the first is in, so a page of a thousand 256 KB rows is not 256 MB."""
    total = 0
    for count, row in enumerate(rows[:limit]):
        total += row[1]
        if count and total > settings.PAGE_MAX_BYTES:
            return [row[0] for row in rows[:count]]
    return [row[0] for row in rows[:limit]]


def page_filter(rows: list[tuple[int, int, datetime]], limit: int, time: str) -> dict[str, Any]:
    """fit_page() of (id, size, time) rows, as filter arguments: the page's ids and the span of their times. A table
    partitioned by that time is then read in the page's months alone; by the ids alone PostgreSQL looks them up in
    every month's index (a Logster search's page at 1M messages over four months: 0.7 ms of planning and probing
    more a request)."""
    chosen = fit_page(rows, limit)
    times = [row[2] for row in rows[: len(chosen)]]
    if not times:
        return {"pk__in": []}
    return {"pk__in": chosen, f"{time}__gte": min(times), f"{time}__lte": max(times)}
