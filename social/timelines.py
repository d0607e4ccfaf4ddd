"""The lists of logs and notifications a page slices, as prepared statements (logsvc.pagination.PreparedIds), each
counted from its counter.

The home timeline: one's own logs and those of everyone one follows, newest first, read on demand.

Two plans, chosen per page from the counters (no fan-out table, no worker):
- "scan": walk every log newest first (index on -created, -id) and keep the followed authors'. Cheap when
  they wrote a good share of all logs; it reads about page_end * all_logs / their_logs rows.
- "per author": take each followed author's newest page_end logs (index on user, -created, -id) and
  merge them. Cheap when few people are followed, or they post little; it reads at most
  sum(min(their_logs, page_end)) rows.
PostgreSQL cannot weigh these itself: it does not know how many logs the followed people wrote.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from logsvc.db import prepared_cursor
from logsvc.models import User
from logsvc.pagination import PreparedIds
from social.models import Activity, Counter, Follow, Log, LogTag, Tag

COUNTERS = Counter._meta.db_table
NEWEST_FIRST = "ORDER BY created DESC, id DESC"


# A list's count and the page asked for come in one statement: a round trip is ~0.1 ms of CPU on each side.
LOGS_IDS = f"SELECT id FROM {Log._meta.db_table} {{where}}{NEWEST_FIRST}"
PAGE = "ARRAY({ids} OFFSET %s LIMIT %s)"


def _counter(kind: Counter.Kind, key: str) -> str:
    return f"(SELECT value FROM {COUNTERS} WHERE kind = '{kind.value}' AND key = {key})"


def _read(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _listed(
    ids: str, params: list[Any], count: int | None, offset: int, limit: int, page: list[int]
) -> tuple[PreparedIds, int]:
    """The list, its page read with its count (None: no counter yet, so none)."""
    return PreparedIds(ids, params, read=(offset, limit, page)), count or 0


def all_logs(offset: int, limit: int) -> tuple[PreparedIds, int]:
    """Every log, newest first, and how many there are."""
    ids = LOGS_IDS.format(where="")
    row = _read(f"SELECT {_counter(Counter.Kind.LOGS, '0')}, {PAGE.format(ids=ids)}", [offset, limit])
    assert row is not None  # one row, always
    return _listed(ids, [], row[0], offset, limit, row[1])


def activity(user: User, offset: int, limit: int) -> tuple[PreparedIds, int]:
    """A user's notifications, newest first, and how many there are."""
    ids = f"SELECT id FROM {Activity._meta.db_table} WHERE recipient_id = %s {NEWEST_FIRST}"
    row = _read(
        f"SELECT {_counter(Counter.Kind.ACTIVITY, '%s')}, {PAGE.format(ids=ids)}", [user.pk, user.pk, offset, limit]
    )
    assert row is not None
    return _listed(ids, [user.pk], row[0], offset, limit, row[1])


def user_logs(username: str, offset: int, limit: int) -> tuple[PreparedIds, int] | None:
    """An author's logs and how many there are; None for no such user."""
    ids = LOGS_IDS.format(where="WHERE user_id = %s ")
    row = _read(
        f"SELECT u.id, {_counter(Counter.Kind.USER_LOGS, 'u.id')}, "
        f"{PAGE.format(ids=ids.replace('%s', 'u.id'))} FROM {User._meta.db_table} u WHERE u.username = %s",
        [offset, limit, username],
    )
    return None if row is None else _listed(ids, [row[0]], row[1], offset, limit, row[2])


def tag_logs(name: str, offset: int, limit: int) -> tuple[PreparedIds, int] | None:
    """A tag's logs (any case of its name) and how many there are; None for no such tag. LogTag holds each log's
    time: the page is a range of the (tag, -created, -log) index."""
    ids = f"SELECT log_id FROM {LogTag._meta.db_table} WHERE tag_id = %s ORDER BY created DESC, log_id DESC"
    row = _read(
        f"SELECT t.id, {_counter(Counter.Kind.TAG_LOGS, 't.id')}, "
        f"{PAGE.format(ids=ids.replace('%s', 't.id'))} FROM {Tag._meta.db_table} t WHERE lower(t.name) = %s",
        [offset, limit, name.lower()],  # lower(name) is what the unique index holds
    )
    return None if row is None else _listed(ids, [row[0]], row[1], offset, limit, row[2])


class HomeTimeline:
    """A user's home timeline as something the paginator can count and slice. Its counters (the count, and what
    the plan is chosen by) and a page's ids come in one statement; the page the request asks for is read with
    the count (offset, limit), any other when sliced."""

    force_plan = ""  # "scan" or "per author" instead of the cheaper (tests)

    def __init__(self, user: User, offset: int = 0, limit: int = 20) -> None:
        self.user = user
        self.offset, self.limit = offset, limit

    def count(self) -> int:
        return sum(self._page[0])

    def plan(self, page_end: int) -> str:
        return self.read(max(page_end - 1, 0), 1)[2]

    def __getitem__(self, page: slice) -> list[int]:
        """The ids of a page's logs."""
        offset = page.start or 0
        limit = (page.stop or offset) - offset
        return self._page[3] if (offset, limit) == (self.offset, self.limit) else self.read(offset, limit)[3]

    @cached_property
    def _page(self) -> tuple[list[int], int, str, list[int]]:
        return self.read(self.offset, self.limit)

    def read(self, offset: int, limit: int) -> tuple[list[int], int, str, list[int]]:
        """(how many logs each author wrote, how many logs there are, the plan, the ids of the page)."""
        params: dict[str, int | str] = {
            "me": self.user.pk,
            "end": offset + limit,
            "offset": offset,
            "limit": limit,
            "plan": self.force_plan,
        }
        with prepared_cursor() as cursor:
            cursor.execute(HOME_SQL, params)
            per_author, everyone, plan, ids = cursor.fetchone()
        return per_author, everyone, plan, ids


FOLLOWED = f"SELECT followee_id FROM {Follow._meta.db_table} WHERE follower_id = %(me)s"
LOGS = Log._meta.db_table
# The counters in one index range (`key IN (subquery)` had PostgreSQL read every counter); the plan as
# this module's docstring says (the per-author rows it reads against the scan's); then the page's ids by that
# plan alone (each ARRAY is run only when its branch is taken). MATERIALIZED: each counter is read once, not once
# a mention of it.
HOME_SQL = f"""
WITH authors AS ({FOLLOWED} UNION ALL SELECT %(me)s),
counts AS MATERIALIZED (
    SELECT ARRAY(
        SELECT value FROM {COUNTERS} WHERE kind = '{Counter.Kind.USER_LOGS.value}'
        AND key = ANY(ARRAY(SELECT * FROM authors))
    ) AS per_author,
    (SELECT COALESCE(MAX(value), 0) FROM {COUNTERS} WHERE kind = '{Counter.Kind.LOGS.value}' AND key = 0) AS everyone
),
chosen AS MATERIALIZED (
    SELECT per_author, everyone, CASE
        WHEN %(plan)s <> '' THEN %(plan)s
        WHEN (SELECT COALESCE(sum(least(v, %(end)s)), 0) FROM unnest(per_author) AS v)
            < %(end)s::float8 * everyone / greatest((SELECT COALESCE(sum(v), 0) FROM unnest(per_author) AS v), 1)
        THEN 'per author'
        ELSE 'scan'
    END AS plan
    FROM counts
)
SELECT per_author, everyone, plan, CASE WHEN plan = 'per author' THEN ARRAY(
    SELECT l.id FROM authors AS a(uid) CROSS JOIN LATERAL (
        SELECT id, created FROM {LOGS} WHERE user_id = a.uid {NEWEST_FIRST} LIMIT %(end)s
    ) AS l ORDER BY l.created DESC, l.id DESC OFFSET %(offset)s LIMIT %(limit)s
) ELSE ARRAY(
    SELECT id FROM {LOGS} WHERE user_id = %(me)s OR user_id IN ({FOLLOWED}) {NEWEST_FIRST} OFFSET %(offset)s LIMIT %(limit)s
) END
FROM chosen
"""
