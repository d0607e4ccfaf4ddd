#!/usr/bin/env python
"""Partitions benchmark: retention dropping a month of hits, log messages and events (logsvc.partitions) beside a
DELETE of the same rows, the migration from the plain tables, and the bytes each stored row takes on disk.

In one run, on one database: the plain tables of before the partitioning (analytics 0007, events 0005) are
filled with a year of hits (default 10M), log messages (1M) and events (1M), from the first day of the month a
year ago to now, by INSERT ... generate_series in PostgreSQL; the hits are marked rolled up. Then:

1. bytes per row of each plain table (heap and TOAST, and indexes);
2. a DELETE of the oldest month's rows of each table, timed, in a transaction rolled back (the table's size
   after it, before the rollback: a DELETE gives no space back; VACUUM makes it reusable, not smaller);
   (the plain tables' indexes are rebuilt first, as the migration builds the partitioned ones, so that the
   sizes compare like with like);
3. the migrations to partitioned tables (analytics 0008, events 0006), timed;
4. bytes per row again, partitioned;
5. a retention pass of each (analytics.retention.purge_hits, events.retention.purge_log_messages and
   purge_events) whose cut is the end of the oldest month: it drops that month whole; timed, with the table's
   size before and after.

First, before the rows are stored: the database side of each hot path's write (the pixel's record_one_hit,
record_hits' COPY of 500, Logster's one and 500 messages, Bytelog's one event and COPY of 500), timed in this
process on the plain tables and on the partitioned ones in alternating rounds, the migrations switching between
them: what routing rows to their month costs, without HTTP and the other benchmarks' noise. The whole stack's
rates and the query ratios are the other benchmarks' (bench/ingest.py, bench/analytics.py, bench/stats.py), run
on a checkout of before and of after. Not a test: `.venv/bin/python bench/partitions.py
--help` (`--quick`: 1M hits, 100k messages and events). It recreates the database logsvc_bench_partitions on the
local PostgreSQL (or the embedded one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/partitions.py` puts bench/ first on the path, not the project

from bench.ingest import log, prepare_database  # after the path fix above

DATABASE = "logsvc_bench_partitions"
PATHS = 300
CHUNK = 1_000_000  # rows an INSERT


def seed(
    cursor: Any, site_id: int, paths: list[int], owner_id: int, start: datetime, end: datetime, counts: dict
) -> None:
    """counts' rows of each table, evenly from start to end, in id order."""
    span = end - start
    hits, messages, events = counts["hits"], counts["log messages"], counts["events"]
    for first in range(0, hits, CHUNK):
        cursor.execute(
            """INSERT INTO analytics_hit (site_id, path_id, visitor, first_visit, ref, ref_scheme, campaign, browser,
                   system, size, location, language, created_at)
               SELECT %(site)s, (%(paths)s::bigint[])[1 + n %% cardinality(%(paths)s::bigint[])], gen_random_uuid(),
                   n %% 3 = 0, CASE WHEN n %% 5 = 0 THEN 'https://news.example.com/' ELSE '' END,
                   CASE WHEN n %% 5 = 0 THEN 'h' ELSE '' END, '', 'Firefox 133', 'Linux', 1920, 'NL', 'en',
                   %(start)s + n * (%(span)s / %(count)s)
               FROM generate_series(%(first)s, %(last)s) n""",
            {"site": site_id, "paths": paths, "start": start, "span": span, "count": hits, "first": first,
             "last": min(first + CHUNK, hits) - 1},
        )  # fmt: skip
        log(f"  {min(first + CHUNK, hits):,} hits")
    for first in range(0, messages, CHUNK):
        cursor.execute(
            """INSERT INTO events_logmessage (owner_id, message, exception, stack_trace, severity, category,
                   application, "user", created)
               SELECT %(owner)s, 'Order ' || n || ' could not be shipped: the carrier answered 503', '', '', n %% 7,
                   'Shipping', 'shop', '', %(start)s + n * (%(span)s / %(count)s)
               FROM generate_series(%(first)s, %(last)s) n""",
            {"owner": owner_id, "start": start, "span": span, "count": messages, "first": first,
             "last": min(first + CHUNK, messages) - 1},
        )  # fmt: skip
        log(f"  {min(first + CHUNK, messages):,} log messages")
    for first in range(0, events, CHUNK):
        cursor.execute(
            """INSERT INTO events_event (owner_id, uid, client_id, name, trace_id, date, data, size, created)
               SELECT %(owner)s, substr(md5(n::text || random()::text), 1, 16), to_jsonb(n), 'order.shipped',
                   lpad(to_hex(n / 3), 8, '0'), %(start)s + n * (%(span)s / %(count)s),
                   jsonb_build_object('order', n, 'carrier', 'DHL'), 30, %(start)s + n * (%(span)s / %(count)s)
               FROM generate_series(%(first)s, %(last)s) n""",
            {"owner": owner_id, "start": start, "span": span, "count": events, "first": first,
             "last": min(first + CHUNK, events) - 1},
        )  # fmt: skip
        log(f"  {min(first + CHUNK, events):,} events")


TABLES = {"hits": ("analytics_hit", "created_at"), "log messages": ("events_logmessage", "created"),
          "events": ("events_event", "date")}  # fmt: skip


def sizes(cursor: Any, table: str) -> tuple[int, int, int]:
    """(rows, table bytes, index bytes) of the table, all its partitions summed."""
    cursor.execute(
        """SELECT coalesce(sum(pg_table_size(relid)), 0), coalesce(sum(pg_indexes_size(relid)), 0)
           FROM (SELECT relid FROM pg_partition_tree(%(t)s::regclass) WHERE isleaf
                 UNION SELECT %(t)s::regclass WHERE (SELECT relkind FROM pg_class WHERE oid = %(t)s::regclass) = 'r'
           ) leaves""",
        {"t": table},
    )
    table_bytes, index_bytes = cursor.fetchone()
    cursor.execute(f"SELECT count(*) FROM {table}")
    return cursor.fetchone()[0], int(table_bytes), int(index_bytes)


def human(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def per_row(size: tuple[int, int, int]) -> str:
    rows, table_bytes, index_bytes = size
    rows = max(rows, 1)
    return (
        f"{rows:>11,} rows {human(table_bytes):>9} + {human(index_bytes):>9} indexes = "
        f"{table_bytes / rows:>6.0f} + {index_bytes / rows:>4.0f} = {(table_bytes + index_bytes) / rows:>6.0f} B/row"
    )


def ingestion(rounds: int, seconds: float) -> list[tuple[str, list[float], list[float]]]:
    """The database side of each hot path's write, on the plain tables and on the partitioned ones, in
    alternating rounds on emptied tables (the migrations switch between them); per case, the median time of an
    operation in each round, plain then partitioned."""
    import uuid

    from django.core.management import call_command
    from django.db import connection, transaction

    from analytics.models import Path as SitePath
    from analytics.models import Site
    from analytics.services import CleanHit, record_hits, record_one_hit
    from events.services import ingest_events, ingest_log_messages
    from logsvc.models import User

    owner = User.objects.get_or_create(username="ingest")[0]
    site = Site.objects.get_or_create(code="ingest", owner=owner)[0]
    for n in range(PATHS):
        SitePath.objects.get_or_create(site=site, path=f"/p/{n}", event=False)
    message = {"message": "Order could not be shipped: the carrier answered 503", "severity": 4,
               "category": "Shipping", "application": "shop"}  # fmt: skip
    event = {"client_id": 7, "name": "order.shipped", "trace_id": "0377a690", "date": None,
             "data": {"order": 7}, "data_json": b'{"order": 7}'}  # fmt: skip

    def hits(k: int) -> list[CleanHit]:
        return [CleanHit(path=f"/p/{n % PATHS}", visitor=uuid.uuid4(), browser="Firefox 133") for n in range(k)]

    def batch_hits() -> None:
        with transaction.atomic():
            record_hits(site, hits(500))

    cases = {
        "pixel: one hit (record_one_hit)": (1, lambda: record_one_hit(site, hits(1)[0])),
        "/api/v0/count: 500 hits (record_hits, COPY)": (500, batch_hits),
        "Logster: one message": (1, lambda: ingest_log_messages(owner=owner, items=[message])),
        "Logster: 500 messages (bulk_create)": (500, lambda: ingest_log_messages(owner=owner, items=[message] * 500)),
        "Bytelog: one event": (1, lambda: ingest_events(owner=owner, items=[event])),
        "Bytelog: 500 events (COPY)": (500, lambda: ingest_events(owner=owner, items=[event] * 500)),
    }
    timings: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in cases}

    def empty() -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE analytics_hit, events_logmessage, events_event, analytics_visitorpath")
            cursor.execute("CHECKPOINT")

    # ABBA: plain first in one round, partitioned first in the next, so neither always follows the other
    order = [kind for number in range(rounds) for kind in ((False, True) if number % 2 == 0 else (True, False))]
    for number, partitioned in enumerate(order):
        empty()
        call_command("migrate", "analytics", "0008" if partitioned else "0007", verbosity=0)
        call_command("migrate", "events", "0006" if partitioned else "0005", verbosity=0)
        empty()
        log(f"Ingestion round {number // 2 + 1}/{rounds}, {'partitioned' if partitioned else 'plain'} tables")
        for name, (_rows, operation) in cases.items():
            operation()  # warm: statements prepared, caches filled
            spent: list[float] = []
            until = time.perf_counter() + seconds
            while time.perf_counter() < until:
                began = time.perf_counter()
                operation()
                spent.append(time.perf_counter() - began)
            spent.sort()
            timings[name][partitioned].append(spent[len(spent) // 2])
    empty()
    return [(name, *timings[name]) for name in cases]


def print_ingestion(results: list[tuple[str, list[float], list[float]]], seconds: float) -> None:
    import statistics

    print(f"\nIngestion, the database side of each write (in this process, {seconds:.0f} s per case and round;")
    print("median time of one operation per round, median of the rounds; rounds alternate plain and partitioned, ABBA)")
    print(f"{'':46} {'plain ms':>9} {'partitioned ms':>15} {'ratio':>6}  rounds' ratios")
    for name, plain, partitioned in results:
        ratios = [p / q for p, q in zip(partitioned, plain, strict=True)]
        print(f"{name:46} {statistics.median(plain) * 1000:>9.3f} {statistics.median(partitioned) * 1000:>15.3f} "
              f"{statistics.median(ratios):>6.2f}  {' '.join(f'{r:.2f}' for r in ratios)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=10_000_000, help="hits over a year (default 10M)")
    parser.add_argument("--messages", type=int, default=1_000_000, help="log messages over a year (default 1M)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events over a year (default 1M)")
    parser.add_argument("--quick", action="store_true", help="1M hits, 100k log messages and events")
    parser.add_argument("--db", choices=["auto", "local", "embedded"], default="auto", help="where the database runs")
    parser.add_argument("--name", default=DATABASE, help=f"database (recreated), default {DATABASE}")
    parser.add_argument("--rounds", type=int, default=3, help="ingestion rounds of each kind of table (default 3)")
    parser.add_argument("--seconds", type=float, default=3, help="seconds per ingestion case and round (default 3)")
    parser.add_argument("--skip-ingestion", action="store_true", help="only the months, the DELETE and the sizes")
    parser.add_argument("--skip-months", action="store_true", help="only the ingestion")
    args = parser.parse_args()
    if args.quick:
        args.hits, args.messages, args.events = 1_000_000, 100_000, 100_000
    url, where = prepare_database(args.db, args.name)
    os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="logsvc.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from analytics.models import Path as SitePath
    from analytics.models import RollupState, Site
    from analytics.retention import purge_hits
    from events.models import EventRetention, LogRetention
    from events.retention import purge_events, purge_log_messages
    from logsvc import partitions
    from logsvc.models import User

    log(f"Database: {where}")
    call_command("migrate", verbosity=0)
    ingested = [] if args.skip_ingestion else ingestion(args.rounds, args.seconds)
    if args.skip_months:
        print_ingestion(ingested, args.seconds)
        return
    call_command("migrate", "analytics", "0007", verbosity=0)  # the plain tables, as before the partitioning
    call_command("migrate", "events", "0005", verbosity=0)

    now = datetime.now(UTC)
    start = partitions.add_months(partitions.month_of(now), -12)
    cut = partitions.add_months(start, 1)  # the oldest month is what retention takes
    owner = User.objects.create(username="bench")
    site = Site.objects.create(code="bench", owner=owner)
    paths = [p.pk for p in SitePath.objects.bulk_create([SitePath(site=site, path=f"/p/{n}") for n in range(PATHS)])]
    counts = {"hits": args.hits, "log messages": args.messages, "events": args.events}
    log(f"Storing {args.hits:,} hits, {args.messages:,} log messages and {args.events:,} events from {start:%Y-%m-%d}")
    began = time.perf_counter()
    with connection.cursor() as cursor:
        seed(cursor, site.pk, paths, owner.pk, start, now, counts)
        cursor.execute("SELECT max(id) FROM analytics_hit")
        RollupState.objects.update_or_create(name="hits", defaults={"last_hit_id": cursor.fetchone()[0] or 0})
        for table, _ in TABLES.values():
            # Indexes built once, as the migration builds them, so the sizes compare like with like.
            cursor.execute(f"REINDEX TABLE {table}")
            cursor.execute(f"VACUUM ANALYZE {table}")
    log(f"Stored in {time.perf_counter() - began:.0f} s")

    results: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
    with connection.cursor() as cursor:
        for name, (table, column) in TABLES.items():
            results[name]["plain"] = sizes(cursor, table)
            log(f"DELETE of {name} before {cut:%Y-%m-%d} (rolled back) ...")
            with transaction.atomic():
                began = time.perf_counter()
                cursor.execute(f"DELETE FROM {table} WHERE {column} < %s", [cut])
                results[name]["delete"] = (cursor.rowcount, time.perf_counter() - began)
                results[name]["after delete"] = sizes(cursor, table)
                transaction.set_rollback(True)

    log("Migrating to partitioned tables ...")
    began = time.perf_counter()
    call_command("migrate", "analytics", "0008", verbosity=0)
    migrated_hits = time.perf_counter() - began
    began = time.perf_counter()
    call_command("migrate", "events", "0006", verbosity=0)
    migrated_events = time.perf_counter() - began

    days = 40
    then = cut + timedelta(days=days)  # a pass whose cut is the end of the oldest month
    Site.objects.filter(pk=site.pk).update(data_retention=days)
    LogRetention.objects.create(owner=owner, days=days)
    EventRetention.objects.create(owner=owner, days=days)
    purges = {"hits": purge_hits, "log messages": purge_log_messages, "events": purge_events}
    with connection.cursor() as cursor:
        for name, (table, _) in TABLES.items():
            results[name]["partitioned"] = sizes(cursor, table)
            log(f"Retention of {name} ...")
            began = time.perf_counter()
            deleted = purges[name](then)
            results[name]["drop"] = (deleted, time.perf_counter() - began)
            results[name]["after drop"] = sizes(cursor, table)
            cursor.execute("SELECT count(*) FROM pg_partition_tree(%s::regclass) WHERE isleaf", [table])
            results[name]["partitions"] = cursor.fetchone()[0]

    print(f"\nPartitions: {args.hits:,} hits, {args.messages:,} log messages, {args.events:,} events over a year")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"Database: {where}; PostgreSQL {version}; load average {os.getloadavg()[0]:.1f}")
    print(f"Migration to partitioned tables: hits and bot hits {migrated_hits:.1f} s, log messages and events "
          f"{migrated_events:.1f} s")  # fmt: skip
    print(f"\nRemoving the oldest month (before {cut:%Y-%m-%d}):")
    print(f"{'':14} {'rows':>11} {'DELETE s':>9} {'plain size':>11} {'after DELETE':>13} {'retention s':>12} "
          f"{'partitioned':>12} {'after drop':>11}")  # fmt: skip
    for name, r in results.items():
        rows, delete_seconds = r["delete"]
        dropped, drop_seconds = r["drop"]
        assert dropped == rows, (name, dropped, rows)
        total = lambda size: human(size[1] + size[2])
        print(f"{name:14} {rows:>11,} {delete_seconds:>9.2f} {total(r['plain']):>11} {total(r['after delete']):>13} "
              f"{drop_seconds:>12.3f} {total(r['partitioned']):>12} {total(r['after drop']):>11}")  # fmt: skip
    print("(the DELETE is one statement, rolled back: its table keeps its size, its dead rows for VACUUM;")
    print(" retention drops the month's partition: its bytes go back to the system at once, no dead rows left)")
    if ingested:
        print_ingestion(ingested, args.seconds)
    print("\nBytes on disk per row (table with TOAST + indexes):")
    for name, r in results.items():
        print(f"{name:14} plain       {per_row(r['plain'])}")
        print(f"{'':14} partitioned {per_row(r['partitioned'])} ({r['partitions']} partitions after the drop)")


if __name__ == "__main__":
    main()
