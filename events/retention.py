"""Retention of Logster messages and Bytelog events, registered with logsvc.retention in EventsConfig.ready().

Each owner's rows are walked oldest first through the (owner, time, id) index the reads use, a batch per
statement: the statement reads the next RETENTION_BATCH rows older than the owner's shortest rule, looks up each
one's rule (LogRetention, EventRetention) and deletes those past it, in one short transaction. Rows kept by a
longer rule are stepped over by the walk, not read again by the next batch.

Before the walks, the months of the table (logsvc.partitions) whose rows are all past their owners' rules are
dropped whole: a month may go when every owner with rows in it has a rule for everything (any application and
every severity; any event name), no rule that keeps for ever, and the longest of its rules past the month's end.
The walks then delete the rest, reading only the months before each owner's shortest rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Min

from events import rollups
from events.models import Event, EventRetention, LogMessage, LogRetention
from logsvc import partitions, retention
from logsvc.partitions import Partition

BEGINNING = datetime(1, 1, 1, tzinfo=UTC)


def _walk(*, table: str, time: str, columns: str, rule: str, owner_id: int, oldest: datetime, now: datetime) -> int:
    """Delete the owner's rows of table whose rule (rule: a query of its `days` for batch row b) says they are past
    keeping, of those with time before oldest; returns how many."""
    sql = f"""
        WITH batch AS (
            SELECT id, {time}, {columns} FROM {table}
            WHERE owner_id = %(owner)s AND {time} < %(oldest)s
                AND {time} >= %(after_time)s AND ({time}, id) > (%(after_time)s, %(after_id)s)
            ORDER BY {time}, id LIMIT %(limit)s
        ), gone AS (
            DELETE FROM {table} t USING batch b CROSS JOIN LATERAL ({rule}) r
            WHERE t.id = b.id AND r.days > 0 AND b.{time} < %(now)s - r.days * interval '1 day'
            RETURNING t.id
        )
        SELECT {time}, id, (SELECT count(*) FROM gone) FROM batch ORDER BY {time} DESC, id DESC LIMIT 1
    """
    params: dict[str, Any] = {"owner": owner_id, "oldest": oldest, "now": now, "limit": settings.RETENTION_BATCH}
    after_time, after_id, deleted = BEGINNING, 0, 0
    while True:
        with retention.paused(), connection.cursor() as cursor:
            cursor.execute(sql, {**params, "after_time": after_time, "after_id": after_id})
            last = cursor.fetchone()
        if last is None:  # walked past the last old row
            return deleted
        after_time, after_id, gone = last
        deleted += gone


def purge_log_messages(now: datetime) -> int:
    """Delete the Logster messages their owners' LogRetention rules no longer keep; returns how many."""
    rules = LogRetention._meta.db_table
    rule = f"""
        SELECT days FROM {rules}
        WHERE owner_id = %(owner)s AND application IN (b.application, '')
            AND (up_to_severity IS NULL OR b.severity <= up_to_severity)
        ORDER BY application = '', up_to_severity NULLS LAST LIMIT 1
    """
    catch_all = "application = '' AND up_to_severity IS NULL"
    return _purge(LogRetention, LogMessage._meta.db_table, "created", "application, severity", rule, now, catch_all)


def purge_events(now: datetime) -> int:
    """Delete the Bytelog events (by their date) their owners' EventRetention rules no longer keep; returns how
    many. Loggator's public reads of them answer 404 from then on."""
    rules = EventRetention._meta.db_table
    rule = f"SELECT days FROM {rules} WHERE owner_id = %(owner)s AND name IN (b.name, '') ORDER BY name = '' LIMIT 1"
    return _purge(EventRetention, Event._meta.db_table, "date", "name", rule, now, "name = ''")


def _month_may_go(partition: Partition, cursor: Any, rules: Any, catch_all: str, now: datetime) -> bool:
    """Whether every row of the month is past its owner's rule: no owner who might keep one (no rule for
    everything, a rule for ever, or one that keeps rows of the month still) has a row in it (an index probe of
    the month per such owner)."""
    users = get_user_model()._meta.db_table
    cursor.execute(
        f"""WITH dropping AS (
                SELECT owner_id FROM {rules._meta.db_table} GROUP BY owner_id
                HAVING bool_or({catch_all}) AND min(days) > 0 AND %(end)s <= %(now)s - max(days) * interval '1 day'
            )
            SELECT NOT EXISTS (
                SELECT FROM {users} u
                WHERE u.id NOT IN (SELECT owner_id FROM dropping)
                    AND EXISTS (SELECT FROM "{partition.name}" t WHERE t.owner_id = u.id))""",
        {"end": partition.end, "now": now},
    )
    return cursor.fetchone()[0]


def _purge(rules: Any, table: str, time: str, columns: str, rule: str, now: datetime, catch_all: str) -> int:
    """Drop the months past every owner's rules, then _walk() the table for each owner with a rule that deletes
    (days > 0), from that owner's shortest rule on."""
    owners = rules.objects.filter(days__gt=0).values("owner_id").annotate(shortest=Min("days"))
    shortest = rules.objects.filter(days__gt=0).aggregate(days=Min("days"))["days"]
    if shortest is None:
        return 0
    deleted = partitions.drop_before(
        table,
        now - timedelta(days=shortest),
        lambda partition, cursor: _month_may_go(partition, cursor, rules, catch_all, now),
        on_drop=rollups.forget_month,
    )
    for owner in owners.order_by("owner_id"):
        deleted += _walk(
            table=table,
            time=time,
            columns=columns,
            rule=rule,
            owner_id=owner["owner_id"],
            oldest=now - timedelta(days=owner["shortest"]),
            now=now,
        )
    return deleted
