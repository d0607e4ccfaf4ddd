#!/usr/bin/env python
"""Retention benchmark: how fast a pass deletes old hits and log messages, and what it costs ingestion meanwhile.

A year of hits of one site (ids in time order, marked as rolled up) and of log messages are COPY'd in; then one
thread stores hits one per transaction, as the pixel does (analytics.services.record_hits), first alone and then
while the purges of logsvc.retention run beside it (the site's data_retention and the owner's LogRetention delete
a quarter of each, twice: without a pause between batches, then with RETENTION_PAUSE_PERCENT's). Printed: rows
deleted per second, and the ingestion rate and latency without and during each pass. Not a test. Run it with
`.venv/bin/python bench/retention.py` (`--quick` for a smoke run, `--help`); it recreates the database
logsvc_bench_retention on the local PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/retention.py` puts bench/ first on the path, not the project

from bench.ingest import LOCAL_PG, recreate_database  # after the path fix above

DATABASE = os.getenv("BENCH_DB_NAME", "logsvc_bench_retention")  # another name: two runs side by side
NOW = datetime.now(UTC)
PATHS = 200


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def populate(hits: int, messages: int) -> tuple[Any, Any]:
    """The site and its owner, with a year of hits and of log messages, oldest first."""
    from django.db import connection

    from analytics.models import Hit, Path, RollupState, Site
    from analytics.services import HIT_COLUMNS, CleanHit, hit_row
    from events.models import LogMessage
    from logsvc import partitions
    from logsvc.models import User

    owner = User.objects.create(username="bench")
    site = Site.objects.create(code="bench", owner=owner)
    paths = Path.objects.bulk_create([Path(site=site, path=f"/page/{n}") for n in range(PATHS)])
    year = timedelta(days=365).total_seconds()
    # The year's months get their partitions first (logsvc.partitions), as an import's and a migrated table's have.
    months = [partitions.month_of(NOW - timedelta(days=365))]
    while months[-1] < partitions.month_of(NOW):
        months.append(partitions.add_months(months[-1], 1))
    for table in (Hit._meta.db_table, LogMessage._meta.db_table):
        partitions.ensure(table, months)
    with connection.cursor() as cursor:
        sql = f"COPY {Hit._meta.db_table} ({', '.join(HIT_COLUMNS)}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for n in range(hits):
                at = NOW - timedelta(seconds=year * (1 - n / hits))
                hit = CleanHit(path="", visitor=uuid.uuid4(), browser="Firefox 131", created_at=at)
                copy.write_row(hit_row(site.pk, paths[n % PATHS].pk, hit, n % 3 == 0, at))
        columns = 'owner_id, message, exception, stack_trace, severity, category, application, "user", created'
        with cursor.cursor.copy(f"COPY {LogMessage._meta.db_table} ({columns}) FROM STDIN") as copy:
            for n in range(messages):
                at = NOW - timedelta(seconds=year * (1 - n / messages))
                text = f"Order {n} could not be shipped: the carrier is down"
                copy.write_row((owner.pk, text, "", "", n % 7, "Shipping", "shop", "", at))
    # The messages counted in the explorer's histograms, as the worker would have done within seconds of their
    # commit: the pass takes each deleted one out of them (events.rollups' triggers), which is part of its cost.
    from events.rollups import roll_up

    roll_up()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Hit._meta.db_table}")
        cursor.execute(f"VACUUM ANALYZE {LogMessage._meta.db_table}")
    # Marked as folded in: the pass deletes only rolled-up hits, and the rollups themselves are not measured here.
    last = Hit.objects.order_by("-id").values_list("id", flat=True).first() or 0
    RollupState.objects.update_or_create(name="hits", defaults={"last_hit_id": last})
    return owner, site


class Ingestion(threading.Thread):
    """Stores one hit a transaction until stopped; keeps each one's latency."""

    def __init__(self, site: Any) -> None:
        super().__init__(daemon=True)
        self.site = site
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.seconds = 0.0

    def run(self) -> None:
        from django.db import connection, transaction

        from analytics.services import CleanHit, record_hits

        start = time.perf_counter()
        n = 0
        while not self.stop.is_set():
            hit = CleanHit(path=f"/page/{n % PATHS}", visitor=uuid.uuid4(), browser="Firefox 131")
            began = time.perf_counter()
            with transaction.atomic():
                record_hits(self.site, [hit])
            self.latencies.append(time.perf_counter() - began)
            n += 1
        self.seconds = time.perf_counter() - start
        connection.close()

    def figures(self) -> tuple[float, float, float]:
        """Hits a second, median and 99th percentile latency in ms."""
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return len(ordered) / self.seconds, statistics.median(ordered) * 1000, p99 * 1000


def ingest_alone(site: Any, seconds: float) -> Ingestion:
    thread = Ingestion(site)
    thread.start()
    time.sleep(seconds)
    thread.stop.set()
    thread.join()
    return thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=1_000_000, help="hits over a year (default 1M)")
    parser.add_argument("--messages", type=int, default=200_000, help="log messages over a year (default 200k)")
    parser.add_argument("--batch", type=int, default=5000, help="RETENTION_BATCH (default 5000)")
    parser.add_argument("--quick", action="store_true", help="100k hits, 20k messages")
    args = parser.parse_args()
    if args.quick:
        args.hits, args.messages = 100_000, 20_000

    url = recreate_database(
        f"postgres://{os.getenv('PGUSER', 'postgres')}@{LOCAL_PG[0]}:{LOCAL_PG[1]}/postgres", DATABASE
    )
    os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="logsvc.settings", RETENTION_BATCH=str(args.batch))
    os.environ.setdefault("SECRET_KEY", "bench-only")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from analytics.models import Hit, Site
    from analytics.retention import purge_hits
    from events.models import LogMessage, LogRetention
    from events.retention import purge_log_messages

    call_command("migrate", verbosity=0)
    log(f"Storing {args.hits:,} hits and {args.messages:,} log messages over a year ...")
    owner, site = populate(args.hits, args.messages)

    log("Ingestion alone ...")
    alone = [ingest_alone(site, 10)]
    passes = []
    # Two passes, each deleting about a quarter of the hits and of the messages: without a pause between
    # batches, then with RETENTION_PAUSE_PERCENT's default.
    for pause, hit_days, message_days in ((0, 274, 274), (settings.RETENTION_PAUSE_PERCENT, 183, 183)):
        settings.RETENTION_PAUSE_PERCENT = pause
        Site.objects.filter(pk=site.pk).update(data_retention=hit_days)
        LogRetention.objects.update_or_create(
            owner=owner, application="", up_to_severity=None, defaults={"days": message_days}
        )
        log(f"Ingestion during a pass, pause {pause}% ...")
        during = Ingestion(site)
        during.start()
        began = time.perf_counter()
        hits_deleted = purge_hits(NOW)
        hits_seconds = time.perf_counter() - began
        began = time.perf_counter()
        messages_deleted = purge_log_messages(NOW)
        messages_seconds = time.perf_counter() - began
        during.stop.set()
        during.join()
        passes.append((pause, hits_deleted, hits_seconds, messages_deleted, messages_seconds, during))
        log("Ingestion alone ...")
        alone.append(ingest_alone(site, 10))

    print(
        f"\nRetention passes, batches of {args.batch} rows, over {args.hits:,} hits and {args.messages:,} messages of a year"
    )
    print(f"{'pause':>6} {'hits deleted':>13} {'s':>6} {'hits/s':>9} {'msgs deleted':>13} {'s':>6} {'msgs/s':>9}")
    for pause, hits_deleted, hits_seconds, messages_deleted, messages_seconds, _ in passes:
        print(f"{pause:>5}% {hits_deleted:>13,} {hits_seconds:>6.1f} {hits_deleted / hits_seconds:>9,.0f} "
              f"{messages_deleted:>13,} {messages_seconds:>6.1f} {messages_deleted / messages_seconds:>9,.0f}")  # fmt: skip
    print("(a pass walks all the site's hits, and the messages older than the owner's shortest rule)")
    print(
        f"\nIngestion, one hit a transaction (record_hits)   {'hits/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'vs alone':>8}"
    )
    rates = [thread.figures()[0] for thread in alone]
    base = statistics.mean(rates)
    for n, thread in enumerate(alone):
        rate, p50, p99 = thread.figures()
        print(f"{f'alone, run {n + 1} (10 s)':47} {rate:>8,.0f} {p50:>7.2f} {p99:>7.2f} {rate / base:>8.2f}")
    for pause, *_, during in passes:
        rate, p50, p99 = during.figures()
        label = f"during the pass, pause {pause}% ({during.seconds:.0f} s)"
        print(f"{label:47} {rate:>8,.0f} {p50:>7.2f} {p99:>7.2f} {rate / base:>8.2f}")
    print(f"\nLeft: {Hit.objects.count():,} hits, {LogMessage.objects.count():,} log messages")


if __name__ == "__main__":
    main()
