"""The explorer's histograms read rollups, not rows: LogCount (an owner's Logster messages by time bucket and
severity) and EventCount (an owner's Bytelog events by time bucket), so counting a week of a million messages costs
what counting a week of ten thousand does.

Each row is counted in a bucket of every span of LEVELS (a minute, 15 minutes, 3 hours, a day, all aligned on EPOCH,
the histogram's own origin): a histogram's bars are made of whole buckets of the largest span that divides its bar,
with finer ones at the ends of its range and the rows themselves for the part of a minute at each end (see
explorer.rolled_counts).

How rows get in, without ingestion paying for it: the worker folds new rows in (roll_up, scheduled by the requests
that store them, at most once per EXPLORER_ROLLUP_SECONDS per process), by id from a cursor (RollupCursor), as
analytics.rollups does for hits. Ids are handed out when a row is inserted, not when it commits, so the fold reads up
to the highest id below which every row has committed (committed_bound: it waits for the writes in flight, seen in
pg_locks, and makes none wait: ingestion only asks for folds). A row is counted in the bucket of its own time,
however old: a back-dated event lands in its day's bucket. Rows above the cursor, not yet folded, are counted
directly by the histogram (an index range on id: the seconds since the last fold).

How rows get out: triggers on the tables (migration 0006) take deleted rows (retention, an account's deletion, the
admin, a cascade) and updated ones (the admin) out of the buckets they were counted in, and add the new version, for
the rows at or below the cursor (those above were never counted). Each trigger holds the cursor's row FOR SHARE while
it does, and a fold holds it FOR UPDATE from before it reads rows until it commits, so a row deleted while a fold
runs is taken out exactly when that fold counted it. A TRUNCATE empties the rollup and rewinds the cursor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.tasks import task
from django.utils import timezone

from events.models import Event, EventCount, LogCount, LogMessage, RollupCursor
from logsvc.nudge import Nudge
from logsvc.partitions import Partition

logger = logging.getLogger(__name__)

EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday: the histogram's week buckets start on Mondays
LEVELS = (60, 15 * 60, 3 * 3600, 86400)  # seconds; each divides the next, and every bar size of the explorer
MINUTE = timedelta(seconds=LEVELS[0])
LOCK = (0x6578, 0x726F)  # "ex" "ro": one fold at a time (any process)
STEP = 250_000  # rows folded per transaction
WAIT_SECONDS = 5.0  # the longest a fold waits for the inserts in flight; then the next fold tries again


@dataclass(frozen=True)
class Rollup:
    name: str  # RollupCursor.name
    table: str  # the rows'
    time: str  # the rows' time column
    counts: str  # the rollup's table
    group: tuple[str, ...]  # what else a bucket is counted by


ROLLUPS = {
    "logs": Rollup("logs", LogMessage._meta.db_table, "created", LogCount._meta.db_table, ("severity",)),
    "events": Rollup("events", Event._meta.db_table, "date", EventCount._meta.db_table, ()),
}


def fold_sql(rollup: Rollup) -> str:
    """Add the rows from_id < id <= to_id to the rollup: per minute first, then to every level. Rows are added in key
    order, so two writers of the same buckets lock them in the same order."""
    group = "".join(f", {column}" for column in rollup.group)
    keys = ", ".join(["owner_id", "span", "bucket", *rollup.group])
    n = len(rollup.group)
    return f"""
        INSERT INTO {rollup.counts} ({keys}, n)
        SELECT owner_id, s.span, date_bin(make_interval(secs => s.span), minute, %(epoch)s){group}, sum(n)
        FROM (
            SELECT owner_id, date_bin('1 minute', {rollup.time}, %(epoch)s) AS minute{group}, count(*) AS n
            FROM {rollup.table} WHERE id > %(from_id)s AND id <= %(to_id)s
            GROUP BY 1, 2{"".join(f", {3 + i}" for i in range(n))}
        ) m CROSS JOIN unnest(%(levels)s::int[]) AS s (span)
        GROUP BY 1, 2, 3{"".join(f", {4 + i}" for i in range(n))}
        ORDER BY 1, 2, 3{"".join(f", {4 + i}" for i in range(n))}
        ON CONFLICT ({keys}) DO UPDATE SET n = {rollup.counts}.n + EXCLUDED.n
    """


def committed_bound(rollup: Rollup, start: int) -> int | None:
    """The highest id below which every row of the table has committed (start when none is newer), or None when the
    inserts in flight did not finish within WAIT_SECONDS (the next fold tries again).

    The highest id committed is read first; then the transactions that hold ROW EXCLUSIVE on the table or on its
    ids' sequence are waited for, by watching pg_locks until they are gone. A row with a lower id that had not
    committed was given its id before that highest one was, by nextval(), which takes that lock on the sequence
    until its transaction ends (an INSERT or a COPY takes it on the table too, and Logster's hot path, which takes
    its ids before its COPY, on the sequence): so its transaction held the lock by then, and is one of those
    waited for. (This needs the sequence to hand ids out one at a time, CACHE 1, as Django makes it.) Nobody waits
    for the fold: unlike a SHARE lock (analytics' way), this holds up no insert, and no VACUUM holds it up."""
    table = rollup.table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(id) FROM {table} WHERE id > %s", [start])
        bound = cursor.fetchone()[0] or start
        cursor.execute(
            "SELECT array_agg(DISTINCT virtualtransaction) FROM pg_locks WHERE locktype = 'relation'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND relation IN (%s::regclass, pg_get_serial_sequence(%s, 'id')::regclass)"
            " AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid()",
            [table, table],
        )
        writers = cursor.fetchone()[0]
        deadline = time.monotonic() + WAIT_SECONDS
        while writers:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)
            cursor.execute(
                "SELECT array_agg(DISTINCT virtualtransaction) FROM pg_locks WHERE virtualtransaction = ANY(%s)",
                [writers],
            )
            writers = cursor.fetchone()[0]
    return bound


def fold(rollup: Rollup, step: int = STEP) -> int:
    """Fold the committed rows of one table not yet in its rollup into it; returns how many ids it moved over.
    The caller holds LOCK."""
    RollupCursor.objects.get_or_create(name=rollup.name)  # committed before the bound is read (see the triggers)
    start = RollupCursor.objects.values_list("last_id", flat=True).get(name=rollup.name)
    bound = committed_bound(rollup, start)
    if bound is None:
        logger.info("The %s rollup waited too long for the writes in flight; the next fold goes on", rollup.name)
        return 0
    folded = start
    sql = fold_sql(rollup)
    while folded < bound:
        upto = min(bound, folded + step)
        with transaction.atomic(), connection.cursor() as cursor:
            # From before the rows are read until the commit: a trigger taking deleted rows out waits, and then sees
            # the new cursor (see the module's docstring).
            cursor.execute(
                f"SELECT last_id FROM {RollupCursor._meta.db_table} WHERE name = %s FOR UPDATE", [rollup.name]
            )
            (current,) = cursor.fetchone()
            if current != folded:  # only under LOCK, so never; but never count a row twice
                raise RuntimeError(f"the {rollup.name} rollup's cursor moved from {folded} to {current}")
            cursor.execute(sql, {"from_id": folded, "to_id": upto, "epoch": EPOCH, "levels": list(LEVELS)})
            RollupCursor.objects.filter(name=rollup.name).update(last_id=upto, updated_at=timezone.now())
        folded = upto
    return folded - start


def roll_up(step: int = STEP) -> dict[str, int]:
    """Fold every committed log message and event not yet in the rollups into them; how many ids each moved over.
    Safe to run anywhere, any time (one at a time: the others return at once)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK)
        if not cursor.fetchone()[0]:
            return {}  # another process is at it; it will see these rows too
    try:
        return {name: fold(rollup, step) for name, rollup in ROLLUPS.items()}
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK)


@task()
def roll_up_explorer() -> dict[str, int]:
    return roll_up()


# Stored rows are folded in within about EXPLORER_ROLLUP_SECONDS (logsvc.nudge); until then the histogram counts
# them from the table.
schedule_roll_up = Nudge(roll_up_explorer, "EXPLORER_ROLLUP_SECONDS", "the explorer's rollup")


def forget_month(partition: Partition, cursor: Any) -> None:
    """A month of messages or events is dropped whole (events.retention): its owners' buckets go with it, in the
    drop's transaction (the DELETE triggers don't see a dropped partition). The table is locked (no fold is
    reading it, none can start) and no bucket straddles the month: the largest is a day, and both start at UTC
    midnight."""
    rollup = next(r for r in ROLLUPS.values() if r.table == partition.table)
    cursor.execute(
        f"""DELETE FROM {rollup.counts} WHERE owner_id IN (SELECT DISTINCT owner_id FROM "{partition.name}")
            AND span = ANY(%s) AND bucket >= %s AND bucket < %s""",
        [list(LEVELS), partition.start, partition.end],
    )
