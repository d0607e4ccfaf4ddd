#!/usr/bin/env python
"""Deletion benchmark: a site with N hits (default 1M, --full 10M) deleted by the real worker, while another tenant
writes and reads.

Seeds the site's hits with one INSERT ... generate_series (a year of them, 300 paths) beside another site's 100k,
asks for the site's deletion as DELETE /api/v0/sites/<id> does (logsvc.deletion.request_deletion), and runs
`manage.py db_worker --batch` in a subprocess. Meanwhile this process inserts one hit at a time into the other site,
each in its own transaction, and reads its count: their latency before and during the deletion shows whether the
deletion blocks another tenant (target: the worst write during it under 100 ms). Prints hits deleted per second and
the table's size after. Not a test; `.venv/bin/python bench/deletion.py --help`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/deletion.py` puts bench/ first on the path, not the project

from bench.ingest import Database, human, log, prepare_database  # after the path fix above

OTHER_HITS = 100_000


def seed(db: Database, site_id: int, paths: list[int], hits: int) -> None:
    db.conn.execute(
        """INSERT INTO analytics_hit (site_id, path_id, visitor, first_visit, ref, ref_scheme, campaign, browser,
               system, size, location, language, created_at)
           SELECT %s, (%s::bigint[])[1 + n %% cardinality(%s::bigint[])], gen_random_uuid(), n %% 3 = 0,
               '', '', '', 'Firefox 133', 'Linux', 1920, 'NL', 'en',
               now() - interval '365 days' + n * (interval '365 days' / %s)
           FROM generate_series(1, %s) n""",
        [site_id, paths, paths, hits, hits],
    )


def latencies(db_url: str, site_id: int, path_id: int, stop: threading.Event, out: list[float]) -> None:
    """One hit a time into the other site, committed, and its count read: as a tenant's traffic."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        while not stop.is_set():
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO analytics_hit (site_id, path_id, first_visit, ref, ref_scheme, campaign, browser,"
                    " system, location, language, created_at) VALUES (%s, %s, true, '', '', '', '', '', '', '', now())",
                    [site_id, path_id],
                )
            conn.execute("SELECT count(*) FROM analytics_hit WHERE site_id = %s AND id > 0", [site_id]).fetchone()
            out.append((time.perf_counter() - started) * 1000)
            time.sleep(0.005)


def summary(ms: list[float]) -> str:
    if not ms:
        return "none"
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{len(ms)} writes, median {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=1_000_000, help="Hits of the site deleted.")
    parser.add_argument("--full", action="store_true", help="10,000,000 hits (the issue's size).")
    parser.add_argument("--db", choices=["auto", "local", "embedded"], default="auto")
    parser.add_argument("--name", default="del_bench", help="Database name (recreated) on the local PostgreSQL.")
    args = parser.parse_args()
    hits = 10_000_000 if args.full else args.hits
    url, where = prepare_database(args.db, args.name)
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": secrets.token_urlsafe(50), "DEBUG": "false",
           "REDIS_URL": "", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}  # fmt: skip
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input", "-v0"], env=env, check=True)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsvc.settings")
    import django

    django.setup()
    from django.conf import settings

    from analytics.models import Path as SitePath
    from analytics.models import Site
    from logsvc.deletion import request_deletion
    from logsvc.models import Deletion, User

    owner, _ = User.objects.get_or_create(username="deletionbench")
    other_owner, _ = User.objects.get_or_create(username="othertenant")
    doomed = Site.objects.create(code="bench-doomed", owner=owner)
    other = Site.objects.create(code="bench-other", owner=other_owner)
    db = Database(url)
    ids = {}
    for site in (doomed, other):
        made = SitePath.objects.bulk_create(SitePath(site=site, path=f"/page/{n}") for n in range(300))
        ids[site.pk] = [path.pk for path in made]
    log(f"Seeding {human(hits)} hits of the site to delete and {human(OTHER_HITS)} of another ({where})")
    started = time.perf_counter()
    seed(db, other.pk, ids[other.pk], OTHER_HITS)
    seed(db, doomed.pk, ids[doomed.pk], hits)
    db.conn.execute("VACUUM ANALYZE analytics_hit")
    log(f"Seeded in {time.perf_counter() - started:.0f} s")
    size_before = db.scalar("SELECT pg_total_relation_size('analytics_hit')")

    def tenant(seconds: float) -> list[float]:
        out: list[float] = []
        stop = threading.Event()
        thread = threading.Thread(target=latencies, args=(url, other.pk, ids[other.pk][0], stop, out))
        thread.start()
        time.sleep(seconds)
        stop.set()
        thread.join()
        return out

    quiet = tenant(5)
    request_deletion(kind=Deletion.Kind.SITE, target=doomed.pk)
    out: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(target=latencies, args=(url, other.pk, ids[other.pk][0], stop, out))
    thread.start()
    started = time.perf_counter()
    worker = [sys.executable, str(ROOT / "manage.py"), "db_worker", "--batch", "--no-startup-delay", "--no-reload"]
    subprocess.run(worker, env=env, check=True)
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join()
    left = db.scalar("SELECT count(*) FROM analytics_hit WHERE site_id = %s", [doomed.pk])
    assert left == 0 and not Site.objects.filter(pk=doomed.pk).exists(), "the site was not deleted"
    other_count = db.scalar("SELECT count(*) FROM analytics_hit WHERE site_id = %s", [other.pk])
    db.conn.execute("VACUUM analytics_hit")
    size_after = db.scalar("SELECT pg_total_relation_size('analytics_hit')")
    rows = [
        ("hits deleted", human(hits)),
        ("batch (DELETION_BATCH)", human(settings.DELETION_BATCH)),
        ("worker's time", f"{elapsed:.1f} s"),
        ("hits deleted per second", human(int(hits / elapsed))),
        ("other tenant before", summary(quiet)),
        ("other tenant during", summary(out)),
        ("other tenant's hits kept", human(other_count)),
        ("hit table before / after (VACUUM)", f"{size_before / 1e6:.0f} MB / {size_after / 1e6:.0f} MB"),
    ]
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))


if __name__ == "__main__":
    main()
