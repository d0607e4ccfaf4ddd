"""The littlelogs page envelope: `?limit=&offset=` and `{count, next, previous, results}`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.request import Request

MAX_OFFSET = 2**63 - 1 - 1000  # room for OFFSET + LIMIT


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's limit/offset paging with a default of 20, at most 100 a page, and a cheap count.

    A view may define `get_count(queryset) -> int` to answer `count` from a denormalised counter
    instead of COUNT(*) over the whole filtered table; without one, the queryset is counted.
    Links are absolute (request.build_absolute_uri), so they stay https behind a proxy that says so.
    """

    default_limit = 20
    max_limit = 100

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        self.view = view
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        self.count = self.get_count(queryset)
        self.offset = self.get_offset(request)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        # Unlike DRF, always read the page: a counter that is behind must not hide rows that exist.
        return page_by_ids(queryset, self.offset, self.limit)

    def get_offset(self, request: Request) -> int:
        # PostgreSQL's OFFSET is a bigint: past it, any page is empty anyway (not a 500 "out of range").
        return min(super().get_offset(request), MAX_OFFSET)

    def get_count(self, queryset: QuerySet[Any] | list[Any]) -> int:
        counter = getattr(self.view, "get_count", None)
        if counter is not None:
            return counter(queryset)
        return super().get_count(queryset)


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


def fit_page(sizes: list[int], limit: int) -> int:
    """How many of the rows with these sizes (in page order) one page holds: at most limit, and no more than
    PAGE_MAX_BYTES of them once the first is in, so a page of a thousand 256 KB rows is not 256 MB."""
    total = 0
    for count, size in enumerate(sizes[:limit]):
        total += size
        if count and total > settings.PAGE_MAX_BYTES:
            return count
    return min(len(sizes), limit)
