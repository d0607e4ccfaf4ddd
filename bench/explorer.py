#!/usr/bin/env python
"""The explorer's pages (events/explorer.py) at 10,000 and at 1,000,000 log messages and events (issue 14).

For each size: one user's messages and events spread over the last 7 days (bench.ingest's factories, by COPY),
then the time per request of /logs/ (the default range, 24 hours), a full-text search, a page 50 pages in (by
its cursor), /events/, a trace's page, the live tail's poll (/logs/tail) and the histograms the pages fetch after
they are shown (/logs/histogram, /events/histogram: from the rollups, events.rollups; a search's is counted from its
rows), each served in this process
by Django's test client (every middleware, the session login, no HTTP server): the median wall time, this
process' CPU and the database backend's CPU per request. The tail's cost per open page per second is its poll's
server CPU (app + database) over the page's poll interval (1.5 s). Not a test: it prints a table against the
target (1M over 10k <= 1.5). Run it with `.venv/bin/python bench/explorer.py` (`--quick` for 10k and 100k).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # after the path fix above
    EVENT_COLUMNS,
    LOG_COLUMNS,
    SEARCH_WORD,
    Database,
    EventFactory,
    LogFactory,
    first_value,
    human,
    log,
    prepare_database,
    process_cpu,
    table_lines,
)

DB_NAME = "logsvc_bench_explorer"
TARGET_RATIO = 1.5
POLL_SECONDS = 1.5  # events/static/events/explorer.js
DEEP_PAGES = 50
PER_PAGE = 50  # events.explorer.PER_PAGE
TRACE = "bench-trace-0001"
TRACE_EVENTS = 40
CASES = (
    "list",
    "search",
    "search_7d",
    "deep",
    "events",
    "trace",
    "tail",
    "histogram",
    "histogram_7d",
    "events_histogram",
    "events_histogram_7d",
    "histogram_q",
)
TITLES = {
    "list": "/logs/ (last 24 h)",
    "search": f"/logs/?q={SEARCH_WORD}",
    "search_7d": f"/logs/?q={SEARCH_WORD}&range=7d (50 rows at both)",
    "deep": f"/logs/?range=all {DEEP_PAGES} pages in (cursor)",
    "events": "/events/ (last 24 h)",
    "trace": f"/events/trace/<id> ({TRACE_EVENTS} events)",
    "tail": "/logs/tail (live tail's poll)",
    "histogram": "/logs/histogram (24 h, fetched after)",
    "histogram_7d": "/logs/histogram?range=7d (every row)",
    "events_histogram": "/events/histogram (24 h)",
    "events_histogram_7d": "/events/histogram?range=7d",
    "histogram_q": f"/logs/histogram?q={SEARCH_WORD} (rows counted)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,1000000", help="rows of each table, small then large")
    p.add_argument("--requests", type=int, default=15, help="measured requests per page and size")
    p.add_argument("--quick", action="store_true", help="10k and 100k rows, 5 requests")
    p.add_argument("--database", choices=("auto", "local", "embedded"), default="auto")
    p.add_argument("--reuse", action="store_true", help=f"keep {DB_NAME} and a size already loaded in it (local)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.requests = "10000,100000", 5
    args.sizes = [int(n) for n in args.sizes.split(",")]
    return args


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsvc.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)


def load(db: Database, owner_id: int, size: int, reuse: bool) -> None:
    """size messages and size events over the last 7 days, and one trace of TRACE_EVENTS events; then the worker's
    fold of them into the histograms' rollups (events.rollups), as it runs within seconds of their commit."""
    if reuse and db.scalar("SELECT count(*) FROM events_logmessage") == size:
        log(f"Kept the {human(size)} messages and events loaded before")
        roll_up()
        return
    db.conn.execute("TRUNCATE events_logmessage, events_event RESTART IDENTITY")
    now = datetime.now(UTC)
    started = time.monotonic()
    # In a process of its own: making a million rows here would leave this process' memory (which serves and
    # measures the pages) fragmented, and its requests ~15% slower in CPU at 1M than at 10k for no reason of theirs.
    child = multiprocessing.get_context("fork").Process(target=copy_rows, args=(db.url, owner_id, size, now))
    child.start()
    child.join()
    if child.exitcode != 0:
        sys.exit(f"Loading the rows failed (exit code {child.exitcode})")
    from events.models import Event

    start = now - timedelta(hours=2)
    Event.objects.bulk_create(
        Event(owner_id=owner_id, name=f"step_{n}", trace_id=TRACE, date=start + timedelta(milliseconds=137 * n * n))
        for n in range(TRACE_EVENTS)
    )
    log(f"Loaded {human(size)} messages and {human(size)} events in {time.monotonic() - started:.0f} s")
    roll_up()
    db.vacuum_analyze("events_logmessage", "events_event", "events_logcount", "events_eventcount")


def copy_rows(url: str, owner_id: int, size: int, now: datetime) -> None:
    """load()'s rows, by COPY on a connection of this (forked) process' own."""
    db = Database(url)
    rng = random.Random(3)
    moments = sorted(now - timedelta(seconds=rng.uniform(60, 7 * 86_400)) for _ in range(size))
    db.copy(db.conn, "events_logmessage", LOG_COLUMNS, LogFactory(seed=4).rows(owner_id, moments))
    db.copy(db.conn, "events_event", EVENT_COLUMNS, EventFactory(seed=5).rows(owner_id, moments, now))
    db.conn.close()


def roll_up() -> None:
    from events.rollups import roll_up

    started = time.monotonic()
    folded = roll_up()
    log(f"The worker's fold into the rollups: {folded} in {time.monotonic() - started:.1f} s")


def deep_cursor(owner_id: int) -> str:
    """The cursor the Older link of page DEEP_PAGES holds (the default range's newest-first order)."""
    from events.filters import encode_cursor
    from events.models import LogMessage

    row = (
        LogMessage.objects.filter(owner_id=owner_id)
        .order_by("-created", "-id")
        .values_list("created", "pk")[DEEP_PAGES * PER_PAGE - 1]
    )
    return encode_cursor(*row)


def newest_cursor(owner_id: int) -> str:
    from events.filters import encode_cursor
    from events.models import LogMessage

    row = LogMessage.objects.filter(owner_id=owner_id).order_by("-created", "-id").values_list("created", "pk")[0]
    return encode_cursor(*row)


def steady_tail(client: Any, url: str) -> str:
    """An open page's poll once it follows: the newest cursor and the ids of its last answer (`seen`), as
    explorer.js asks (the messages of the last TAIL_OVERLAP are in the answer's ids, not drawn again)."""
    answer = client.get(url).json()
    return f"{url}&seen={','.join(str(pk) for pk in answer['ids'])}"


def shown(content: bytes) -> int:
    """How many rows a page drew (messages, events, a trace's events); -1 for a chart."""
    found = sum(
        content.count(f'class=\\"{css}\\"'.encode()) + content.count(f'class="{css}"'.encode()) for css in ROW_CLASSES
    )
    return found if found or b"<svg" not in content else -1


ROW_CLASSES = ("log-item", "event-item", "wf-row")


def measure(client: Any, url: str, requests: int, backend_pid: int) -> dict[str, float]:
    """Median wall ms, and mean app and database CPU ms, of GET url (after two unmeasured ones)."""
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:500])
    walls = []
    cpu0, db0 = time.process_time(), process_cpu(backend_pid)
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        walls.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return {
        "rows": shown(response.content),
        "ms": statistics.median(walls),
        "app_cpu": (time.process_time() - cpu0) * 1000 / requests,
        "db_cpu": (process_cpu(backend_pid) - db0) * 1000 / requests,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.reuse:
        url, where = f"postgres://{os.getenv('PGUSER', 'postgres')}@127.0.0.1:5432/{DB_NAME}", f"{DB_NAME}, kept"
    else:
        url, where = prepare_database(args.database, DB_NAME)
    log(f"Database: {where}")
    setup_django(url)
    from django.db import connection
    from django.test import Client

    from logsvc.models import User

    user, _ = User.objects.get_or_create(username="bench-explorer")
    client = Client()
    client.force_login(user)
    db = Database(url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = first_value(cursor)
    results: dict[int, dict[str, dict[str, float]]] = {}
    for size in args.sizes:
        load(db, user.pk, size, args.reuse)
        urls = {
            "list": "/logs/",
            "search": f"/logs/?q={SEARCH_WORD}",
            "search_7d": f"/logs/?q={SEARCH_WORD}&range=7d",
            "deep": f"/logs/?range=all&cursor={deep_cursor(user.pk)}",
            "events": "/events/",
            "trace": f"/events/trace/{TRACE}",
            "tail": steady_tail(client, f"/logs/tail?after={newest_cursor(user.pk)}"),
            "histogram": "/logs/histogram",
            "histogram_7d": "/logs/histogram?range=7d",
            "events_histogram": "/events/histogram",
            "events_histogram_7d": "/events/histogram?range=7d",
            "histogram_q": f"/logs/histogram?q={SEARCH_WORD}",
        }
        results[size] = {}
        for case in CASES:
            results[size][case] = measure(client, urls[case], args.requests, backend_pid)
            r = results[size][case]
            log(f"{human(size)} {case}: {r['ms']:.1f} ms (app CPU {r['app_cpu']:.1f} ms, db CPU {r['db_cpu']:.1f} ms)")
    db.conn.close()

    small, large = min(args.sizes), max(args.sizes)
    rows = []
    for case in CASES:
        a, b = results[small][case], results[large][case]
        ratio = b["ms"] / a["ms"]
        cpu_a, cpu_b = a["app_cpu"] + a["db_cpu"], b["app_cpu"] + b["db_cpu"]
        rows.append(
            (
                TITLES[case],
                "-" if a["rows"] < 0 else f"{a['rows']:.0f}/{b['rows']:.0f}",
                f"{a['ms']:.1f}",
                f"{b['ms']:.1f}",
                f"{ratio:.2f}",
                f"{cpu_a:.1f}",
                f"{cpu_b:.1f} ({b['app_cpu']:.1f} + {b['db_cpu']:.1f})",
                f"{cpu_b / cpu_a:.2f}" if cpu_a else "-",
            )
        )
    header = (
        "page",
        "rows",
        f"ms at {human(small)}",
        f"ms at {human(large)}",
        "ratio",
        f"CPU ms at {human(small)}",
        f"CPU ms at {human(large)} (app + db)",
        "CPU ratio",
    )
    print(f"Target: {human(large)} over {human(small)} <= {TARGET_RATIO}. Wall times are medians; CPU is a mean.")
    print("\n".join(table_lines(header, rows)))
    tail = results[large]["tail"]
    per_second = (tail["app_cpu"] + tail["db_cpu"]) / POLL_SECONDS
    print(
        f"\nLive tail: one open page polls every {POLL_SECONDS} s; a poll costs {tail['app_cpu']:.2f} ms app CPU + "
        f"{tail['db_cpu']:.2f} ms database CPU at {human(large)}: {per_second:.2f} ms of server CPU per open page per "
        f"second, {per_second * 50 / 1000 * 100:.0f}% of one core for 50 open tabs."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
