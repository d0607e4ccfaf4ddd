"""The home timeline: one's own logs and those of everyone one follows, newest first, read on demand.

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

from logsvc.db import prepared_cursor
from logsvc.models import User
from social.models import Counter, Follow, Log


def _authors_sql() -> str:
    return f"SELECT followee_id FROM {Follow._meta.db_table} WHERE follower_id = %(me)s UNION ALL SELECT %(me)s"


class HomeTimeline:
    """A user's home timeline as something the paginator can count and slice."""

    def __init__(self, user: User) -> None:
        self.user = user

    def count(self) -> int:
        return sum(self._counters[0])

    @cached_property
    def _counters(self) -> tuple[list[int], int]:
        """(how many logs each author wrote, how many logs there are), from the counters in one query (an index
        range: `key IN (subquery)` had PostgreSQL read every counter)."""
        counters = Counter._meta.db_table
        with prepared_cursor() as cursor:
            cursor.execute(
                f"SELECT ARRAY(SELECT value FROM {counters} WHERE kind = 'user_logs' "
                f"AND key = ANY(ARRAY({_authors_sql()}))), "
                f"(SELECT COALESCE(MAX(value), 0) FROM {counters} WHERE kind = 'logs' AND key = 0)",
                {"me": self.user.pk},
            )
            per_author, everyone = cursor.fetchone()
        return [int(value) for value in per_author], int(everyone)

    def plan(self, page_end: int) -> str:
        per_author, everyone = self._counters
        scan = page_end * everyone / max(sum(per_author), 1)
        return "per author" if sum(min(value, page_end) for value in per_author) < scan else "scan"

    def ids(self, offset: int, limit: int) -> list[int]:
        logs = Log._meta.db_table
        order = "ORDER BY created DESC, id DESC"
        if self.plan(offset + limit) == "per author":
            sql = (
                f"SELECT l.id FROM ({_authors_sql()}) AS a(uid) CROSS JOIN LATERAL "
                f"(SELECT id, created FROM {logs} WHERE user_id = a.uid {order} LIMIT %(end)s) AS l "
                f"ORDER BY l.created DESC, l.id DESC OFFSET %(offset)s LIMIT %(limit)s"
            )
        else:
            followed = f"SELECT followee_id FROM {Follow._meta.db_table} WHERE follower_id = %(me)s"
            sql = (
                f"SELECT id FROM {logs} WHERE user_id = %(me)s OR user_id IN ({followed}) "
                f"{order} OFFSET %(offset)s LIMIT %(limit)s"
            )
        params = {"me": self.user.pk, "end": offset + limit, "offset": offset, "limit": limit}
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            return [row[0] for row in cursor.fetchall()]

    def __getitem__(self, page: slice) -> list[int]:
        """The ids of a page's logs."""
        offset = page.start or 0
        return self.ids(offset, (page.stop or offset) - offset)
