"""Tables partitioned by time: the append-only tables that grow with traffic (hits, bot hits, log messages, events)
are PostgreSQL declarative partitions, one a month (UTC) of a time column, so retention drops a month whole
instead of deleting its rows, and a query over a time range reads only its months.

Apps register each such table and its column in their AppConfig.ready() (as with logsvc.retention); logsvc
imports none of them. Their migrations turn the plain table into a partitioned one (partition_table(), which
keeps every row, id and the id sequence's position) and create the months of the rows they hold and the months
ahead, so a fresh install and the test database work without a worker. The worker's retention pass (and
`manage.py prune`) first creates the months ahead (ensure_ahead()), then each app's purge drops the months that
hold only rows past their owners' rules (drop_before()) and deletes the others' rows in batches as before.

Why months: retention is counted in days, at least 31 for hits, typically 30 to 365; a month partition is gone
about a month after its last row passed the cut, and only the months straddling a cut are deleted row by row.
A lookup by id (the admin, Loggator's read by uid, the APIs' detail views) cannot know the row's month and
reads one index per partition: at a month each, a year is 12 index probes; by day it would be 365.

Django keeps its model as it was: a single `id` primary key. In the database the primary key is
(id, time column), as PostgreSQL wants every unique constraint of a partitioned table to hold the partition key;
ids still come from the one identity sequence, so they stay unique, and every partition has the index.

A row whose time has no partition (an import of years-old hits, a client's date far in the past or the future)
goes to the table's DEFAULT partition: nothing is refused, and the hot paths (the pixel, /api/v0/count, Logster,
Bytelog) never create a partition or wait for one. Creating a month moves that month's rows out of the default
in the same transaction (ensure()), and the importers create the months of the hits they bring before they
insert them (ensure_covering()), so the default keeps only the odd rows, which retention deletes row by row.
While a default partition exists PostgreSQL refuses DETACH PARTITION ... CONCURRENTLY; a month is dropped with
DROP TABLE instead, which holds the parent's ACCESS EXCLUSIVE lock for a moment: we wait for it at most
PARTITION_LOCK_TIMEOUT_MS at a time (the inserts queued behind us wait as long), and try again later.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

TABLES: dict[str, str] = {}  # registered table -> its time column
_known: dict[str, set[datetime]] = {}  # table -> months this process has seen a partition of (ensure_covering)
LOCK_NAMESPACE = 0x7074  # "pt": advisory xact lock (namespace, hashtext(table)): one change of a table at a time


@dataclass(frozen=True)
class Partition:
    table: str  # the partitioned table
    name: str
    start: datetime | None  # None for the default partition
    end: datetime | None

    @property
    def is_default(self) -> bool:
        return self.start is None


def register(table: str, column: str) -> None:
    TABLES[table] = column


def month_of(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, month: datetime) -> str:
    return f"{table}_{month:%Y%m}"


def default_name(table: str) -> str:
    return f"{table}_default"


def _literal(moment: datetime) -> str:
    return f"'{moment.astimezone(UTC).isoformat()}'"


BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def _timestamp(text: str) -> datetime:
    # PostgreSQL writes '2026-01-01 00:00:00+00'; fromisoformat wants the zone as +00:00 (or takes +00 on 3.11+)
    return datetime.fromisoformat(text).astimezone(UTC)


def partitions(table: str, cursor: Any = None) -> list[Partition]:
    """The table's partitions, months by start, the default (if any) last; [] for a table not partitioned."""
    sql = """
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass(%s)
    """
    if cursor is None:
        with connection.cursor() as own:
            own.execute(sql, [table])
            rows = own.fetchall()
    else:
        cursor.execute(sql, [table])
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = BOUNDS.search(bound)
        if match:
            found.append(Partition(table, name, _timestamp(match[1]), _timestamp(match[2])))
        else:
            found.append(Partition(table, name, None, None))
    return sorted(found, key=lambda p: (p.start is None, p.start or datetime.min.replace(tzinfo=UTC)))


def is_partitioned(table: str, cursor: Any) -> bool:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
    row = cursor.fetchone()
    return row is not None and row[0] == "p"


def _columns(table: str, cursor: Any) -> list[tuple[str, str, str]]:
    """(name, attgenerated, attidentity) of the table's columns, in order."""
    cursor.execute(
        """SELECT attname, attgenerated, attidentity FROM pg_attribute
           WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum""",
        [table],
    )
    return cursor.fetchall()


def _stored_columns(table: str, cursor: Any) -> str:
    """The columns an INSERT ... SELECT copies: all but the generated ones (PostgreSQL computes those)."""
    return ", ".join(f'"{name}"' for name, generated, _ in _columns(table, cursor) if not generated)


def _create_month(table: str, column: str, month: datetime, cursor: Any) -> None:
    """Create the month's partition, taking its rows out of the default partition; in the caller's transaction,
    which holds the table's advisory lock."""
    start, end = month, add_months(month, 1)
    name, default = partition_name(table, month), default_name(table)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [default])
    has_default = cursor.fetchone()[0]
    moving = False
    if has_default:
        # Inserts wait from here until the commit: keep the default's scan short (it holds odd rows only).
        cursor.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        cursor.execute(
            f'SELECT EXISTS (SELECT FROM "{default}" WHERE "{column}" >= %s AND "{column}" < %s)', [start, end]
        )
        moving = cursor.fetchone()[0]
    if moving:
        cursor.execute(
            f"""CREATE TEMPORARY TABLE partition_move ON COMMIT DROP AS
                WITH moved AS (DELETE FROM "{default}" WHERE "{column}" >= %s AND "{column}" < %s RETURNING *)
                SELECT * FROM moved""",
            [start, end],
        )
    cursor.execute(
        f'CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})'
    )
    if moving:
        columns = _stored_columns(table, cursor)
        cursor.execute(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM partition_move')
        cursor.execute("DROP TABLE partition_move")
        logger.info("Moved the rows of %s out of %s", name, default)


def _lock_timeout(cursor: Any) -> None:
    cursor.execute(f"SET LOCAL lock_timeout = {int(settings.PARTITION_LOCK_TIMEOUT_MS)}")


def _retrying(work: Callable[[], Any], what: str) -> Any:
    """work() in a transaction with PARTITION_LOCK_TIMEOUT_MS to get each lock, tried up to PARTITION_LOCK_TRIES
    times; None when every try timed out."""
    for attempt in range(settings.PARTITION_LOCK_TRIES):
        try:
            with transaction.atomic():
                return work()
        except DatabaseError as error:  # lock_timeout (55P03), a deadlock (40P01)
            code = getattr(getattr(error, "__cause__", None), "sqlstate", None)
            if code not in ("55P03", "40P01"):
                raise
            logger.warning("%s: %s (try %d)", what, error, attempt + 1)
            time.sleep(0.05 * 2**attempt)
    return None


def ensure(table: str, months: Iterable[datetime]) -> list[str]:
    """Create the table's partitions of these months (each month_of()'d) that are missing; their names."""
    column = TABLES[table]
    wanted = sorted({month_of(month) for month in months})
    created: list[str] = []

    def create(month: datetime) -> None:
        with connection.cursor() as cursor:
            _lock_timeout(cursor)
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, table])
            if any(p.start == month for p in partitions(table, cursor)):
                return
            _create_month(table, column, month, cursor)
            created.append(partition_name(table, month))

    existing = {p.start for p in partitions(table) if p.start is not None}
    for month in wanted:
        if month not in existing:
            _retrying(functools.partial(create, month), f"Creating {partition_name(table, month)}")
    _known.setdefault(table, set()).update(existing | set(wanted))
    return created


def ensure_ahead(now: datetime | None = None) -> list[str]:
    """Every registered table's partitions of this month and PARTITIONS_AHEAD months after it; those created."""
    month = month_of(now or timezone.now())
    ahead = [add_months(month, n) for n in range(settings.PARTITIONS_AHEAD + 1)]
    created = []
    for table in TABLES:
        created += ensure(table, ahead)
    return created


def ensure_covering(table: str, moments: Iterable[datetime | None]) -> None:
    """Make sure the months of these times have partitions, before rows of them are inserted (imports of old
    hits): what this process already knows costs a set lookup; an unknown month a look at the catalog, and a
    missing one its creation. Not for the hot paths, which leave such rows to the default partition."""
    known = _known.setdefault(table, set())
    times = [moment for moment in moments if moment is not None]
    if not times:
        return
    first, last = month_of(min(times)), month_of(max(times))
    # Times of one month or two in a row (a log's batch): those two, without a look at each time
    months = {first, last} if add_months(first, 1) >= last else {month_of(moment) for moment in times}
    missing = months - known
    if missing:
        ensure(table, missing)


def drop_before(
    table: str,
    cut: datetime,
    may_drop: Callable[[Partition, Any], bool] | None = None,
    on_drop: Callable[[Partition, Any], None] | None = None,
) -> int:
    """Drop the table's partitions that end at or before cut and that may_drop(partition, cursor) allows; returns
    how many rows they held. may_drop is asked under the table's ACCESS EXCLUSIVE lock, so no row comes in
    between its answer and the drop: it must be quick (index probes). on_drop(partition, cursor) runs just before
    the drop, in its transaction (what is kept of the rows elsewhere goes with them). The default partition stays."""
    dropped = 0
    for partition in partitions(table):
        if partition.is_default or partition.end is None or partition.end > cut:
            continue
        with connection.cursor() as cursor:
            # A first look without the lock: a month someone keeps is passed over without being counted.
            if may_drop is not None and not may_drop(partition, cursor):
                continue
            # Counted before the lock, which inserts would wait behind.
            cursor.execute(f'SELECT count(*) FROM "{partition.name}"')
            rows = cursor.fetchone()[0]

        def drop(partition: Partition = partition) -> bool:
            with connection.cursor() as cursor:
                _lock_timeout(cursor)
                # Deferred foreign key checks of rows inserted earlier in this transaction (a caller's, a test's)
                # now: PostgreSQL refuses to drop a table with checks pending.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, table])
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition.name])
                if not cursor.fetchone()[0]:
                    return False
                # The parent's lock first, as an insert (and DROP TABLE) take them: no deadlock with an insert.
                cursor.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
                if may_drop is not None and not may_drop(partition, cursor):
                    return False
                if on_drop is not None:
                    on_drop(partition, cursor)
                cursor.execute(f'DROP TABLE "{partition.name}"')
                return True

        if _retrying(drop, f"Dropping {partition.name}"):
            dropped += rows
            _known.get(table, set()).discard(partition.start)
            logger.info("Dropped %s (%s rows)", partition.name, rows)
    return dropped


def health_check() -> str:
    """/healthz's word: "ok" while every registered table has next month's partition (the worker's passes
    create it ahead), else which ones lack it: rows of a month without a partition go to the default one."""
    next_month = add_months(month_of(timezone.now()), 1)
    missing = [table for table in TABLES if not any(p.start == next_month for p in partitions(table))]
    if not missing:
        return "ok"
    return (
        f"no partition for {next_month:%Y-%m} yet in {', '.join(missing)}: is the worker running its retention "
        "passes? (manage.py prune queues them)"
    )


@dataclass(frozen=True)
class Size:
    name: str
    rows: int  # PostgreSQL's estimate (pg_class.reltuples) unless counted
    table_bytes: int  # heap and TOAST
    index_bytes: int


def sizes(table: str, count: bool = False) -> list[Size]:
    """The size of each of the table's partitions (or of the table itself, not partitioned)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid)
               FROM pg_partition_tree(to_regclass(%s)) t JOIN pg_class c ON c.oid = t.relid
               WHERE t.isleaf ORDER BY c.relname""",
            [table],
        )
        found = [Size(*row) for row in cursor.fetchall()]
        if count:
            counted = []
            for size in found:
                cursor.execute(f'SELECT count(*) FROM "{size.name}"')
                counted.append(Size(size.name, cursor.fetchone()[0], size.table_bytes, size.index_bytes))
            found = counted
    return found


# Migrations: a plain table to a partitioned one and back, every row, id and the id sequence's position kept.


def _quote_list(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _rebuild(
    cursor: Any, table: str, column: str, partitioned: bool, ahead: int = 2, now: datetime | None = None
) -> None:
    """Rebuild table as a partitioned table by month of column (partitioned) or as a plain one: a new table of
    the same columns, defaults, checks, generated columns and identity takes the old one's name, its rows, its
    indexes, its foreign keys and its sequence's position, and the old one is dropped. Every unique constraint
    gets column added (removed, back), as PostgreSQL wants of a partitioned table."""
    old = f"{table}__old"
    cursor.execute(
        """SELECT count(*) FROM pg_constraint WHERE confrelid = to_regclass(%s) AND conrelid <> confrelid""", [table]
    )
    if cursor.fetchone()[0]:
        raise RuntimeError(f"{table}: foreign keys point into it; a partitioned table would need them rebuilt")
    # What the old table has, named as it is now.
    cursor.execute(
        """SELECT conname, contype, pg_get_constraintdef(oid),
                  ARRAY(SELECT attname FROM unnest(conkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k.n ORDER BY k.i)
           FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u', 'f') ORDER BY conname""",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE i.indrelid = to_regclass(%s)
             AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
           ORDER BY c.relname""",
        [table],
    )
    indexes = cursor.fetchall()
    columns = _columns(table, cursor)
    identities = [(name, kind) for name, _, kind in columns if kind]
    positions = {}
    for name, _kind in identities:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, name])
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
        positions[name] = cursor.fetchone()

    # Out of the way: the old table, its index names (they are the schema's), its identity (and so its sequence).
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    cursor.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(%s)",
        [old],
    )
    for number, (index,) in enumerate(cursor.fetchall()):
        cursor.execute(f'ALTER INDEX "{index}" RENAME TO "{table[:40]}__old_{number}"')
    for name, _kind in identities:
        cursor.execute(f'ALTER TABLE "{old}" ALTER COLUMN "{name}" DROP IDENTITY')

    like = "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION"
    by = f' PARTITION BY RANGE ("{column}")' if partitioned else ""
    cursor.execute(f'CREATE TABLE "{table}" (LIKE "{old}" {like}){by}')
    for name, kind in identities:
        always = "ALWAYS" if kind == "a" else "BY DEFAULT"
        cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{name}" ADD GENERATED {always} AS IDENTITY')
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, name])
        sequence = cursor.fetchone()[0]
        last_value, is_called = positions[name]
        cursor.execute("SELECT setval(%s, %s, %s)", [sequence, last_value, is_called])

    if partitioned:
        cursor.execute(
            f"""SELECT DISTINCT date_trunc('month', "{column}" AT TIME ZONE 'UTC') FROM "{old}"
                WHERE "{column}" IS NOT NULL"""
        )
        months = {month.replace(tzinfo=UTC) for (month,) in cursor.fetchall()}
        this_month = month_of(now or timezone.now())
        months |= {add_months(this_month, n) for n in range(ahead + 1)}
        for month in sorted(months):
            cursor.execute(
                f'CREATE TABLE "{partition_name(table, month)}" PARTITION OF "{table}" '
                f"FOR VALUES FROM ({_literal(month)}) TO ({_literal(add_months(month, 1))})"
            )
        cursor.execute(f'CREATE TABLE "{default_name(table)}" PARTITION OF "{table}" DEFAULT')

    stored = _stored_columns(old, cursor)
    cursor.execute(f'INSERT INTO "{table}" ({stored}) OVERRIDING SYSTEM VALUE SELECT {stored} FROM "{old}"')

    # Indexes after the rows: built once, not row by row.
    for name, kind, definition, keys in constraints:
        if kind == "p" or kind == "u":
            keys = [key for key in keys if key != column] + ([column] if partitioned else [])
            if kind == "u":  # keep INCLUDE (...), NULLS NOT DISTINCT
                definition = re.sub(
                    r"UNIQUE (NULLS NOT DISTINCT )?\([^)]*\)", rf"UNIQUE \1({_quote_list(keys)})", definition
                )
            else:
                definition = f"PRIMARY KEY ({_quote_list(keys)})"
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for _name, definition in indexes:
        definition = re.sub(r" ON (ONLY )?\S+ ", f' ON "{table}" ', definition, count=1)
        cursor.execute(definition)
    cursor.execute(f'DROP TABLE "{old}" CASCADE')
    cursor.execute(f'ANALYZE "{table}"')


def partition_table(schema_editor: Any, table: str, column: str, ahead: int = 2) -> None:
    """A migration's step (RunPython): table, plain, becomes partitioned by month of column, with partitions for
    the months of its rows and for this month and `ahead` after it, and a default partition."""
    with schema_editor.connection.cursor() as cursor:
        if not is_partitioned(table, cursor):
            _rebuild(cursor, table, column, partitioned=True, ahead=ahead)


def unpartition_table(schema_editor: Any, table: str, column: str) -> None:
    """partition_table()'s way back: a plain table again, with the same rows."""
    with schema_editor.connection.cursor() as cursor:
        if is_partitioned(table, cursor):
            _rebuild(cursor, table, column, partitioned=False)
