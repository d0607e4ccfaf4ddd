#!/usr/bin/env python
# ruff: noqa: N999 - the issue names it bench/import.py; it is run, never imported
"""Import benchmark: `manage.py import_hits` of a combined access log and of a GoatCounter CSV export.

For each, rows per second of the importer (the command run as a user runs it, its Django start-up taken off)
over the COPY ceiling measured in the same run, just before it: psycopg 3 binary COPY of the same number of hit
rows into the hit table, in the importer's batches with a commit each (target >= 0.5; the ratio to COPY's text
format, the ceiling of the runs before record_hits sent binary COPY, is shown beside it); and the importer's peak memory (its
process's maximum RSS) at the full size over at 10k lines (target <= 1.2). Not a test; prints one table, also
written to bench/out/import.txt. The default is 100k lines, --full 1M. `.venv/bin/python bench/import.py --help`.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/import.py` puts bench/ first on the path, not the project

from bench.ingest import OUT, first_value, human, log, prepare_database  # after the path fix above

SMALL = 10_000
RATE_TARGET = 0.5
MEMORY_TARGET = 1.2
START = datetime(2026, 9, 1, tzinfo=UTC)

BROWSER_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
]  # fmt: skip
BOT_UAS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
]
REFERRERS = ["-"] * 10 + [
    "https://www.google.com/",
    "https://news.ycombinator.com/item?id=42",
    "https://example.org/links",
    "https://www.reddit.com/r/programming/",
    "https://duckduckgo.com/",
]
PAGES = ["/", "/about", "/pricing", "/docs/setup"] + [f"/blog/post-{n}" for n in range(300)]
STATIC = ["/static/app.css", "/static/app.js", "/img/logo.png", "/favicon.ico"]


class Visits:
    """Who sends the next request: one of 50 visitors browsing at the moment, each of whom leaves after a few pages
    for a new one of the 20k, so the lines of one visitor come in runs, as in a real log."""

    def __init__(self, rng: random.Random, people: list) -> None:
        self.rng, self.people = rng, people
        self.active = [rng.choice(people) for _ in range(50)]

    def next(self):
        n = self.rng.randrange(len(self.active))
        if self.rng.random() < 0.25:
            self.active[n] = self.rng.choice(self.people)
        return self.active[n]


def write_log(path: Path, lines: int, seed: int = 1) -> None:
    """A combined access log: 20k visitors, 304 pages, a tenth static files, redirects, 404s and bots."""
    rng = random.Random(seed)
    people = [
        (f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
         rng.choice(BOT_UAS) if rng.random() < 0.05 else rng.choice(BROWSER_UAS))
        for _ in range(20_000)
    ]  # fmt: skip
    visits = Visits(rng, people)
    moment = START
    with open(path, "w") as out:
        for _ in range(lines):
            moment += timedelta(seconds=rng.random() * 2)
            ip, ua = visits.next()
            roll = rng.random()
            path_ = rng.choice(STATIC) if roll < 0.1 else rng.choice(PAGES)
            if 0.1 <= roll < 0.13:
                path_ += "?utm_source=newsletter&utm_campaign=launch"
            status = 301 if 0.95 <= roll < 0.97 else 404 if roll >= 0.97 else 200
            out.write(
                f'{ip} - - [{moment:%d/%b/%Y:%H:%M:%S} +0000] "GET {path_} HTTP/1.1" {status} '
                f'{rng.randint(200, 90_000)} "{rng.choice(REFERRERS)}" "{ua}"\n'
            )


def write_export(path: Path, rows: int, seed: int = 2) -> None:
    """A gzip'd GoatCounter CSV export (version 2) of rows pageviews of 20k visitors."""
    from analytics.tasks import CSV_HEADER

    rng = random.Random(seed)
    visits = Visits(rng, [secrets.token_hex(16) for _ in range(20_000)])
    browsers = [
        ("Chrome 131", "Windows 10"),
        ("Safari 18.1", "iOS 18.1"),
        ("Firefox 133", "Linux"),
        ("Chrome 131", "Android 14"),
    ]
    refs = [("", "")] * 6 + [("Google", "g"), ("news.ycombinator.com/item", "h"), ("newsletter", "c")]
    moment = START
    with gzip.open(path, "wt", newline="", compresslevel=6) as out:
        out.write(CSV_HEADER)
        writer = csv.writer(out)
        for _ in range(rows):
            moment += timedelta(seconds=rng.random() * 2)
            browser, system = rng.choice(browsers)
            ref, scheme = rng.choice(refs)
            page = rng.choice(PAGES)
            writer.writerow([
                page, f"Title of {page}", 0, "", browser, system, visits.next(), 0, ref, scheme,
                rng.choice(["1920,1080,1", "390,844,3", ""]), rng.choice(["US", "DE", "NL", ""]), rng.randint(0, 1),
                f"{moment:%Y-%m-%dT%H:%M:%SZ}",
            ])  # fmt: skip


def copy_ceiling(url: str, site_id: int, rows: int, batch: int, binary: bool = True) -> float:
    """Rows per second of COPY into the hit table, rows alike to the importer's, a commit per batch: binary COPY,
    as record_hits sends it (the text format, binary=False, costs the client four times the time a row)."""
    import uuid

    import psycopg

    from analytics.models import Hit
    from analytics.models import Path as PathModel
    from analytics.services import HIT_COLUMNS, HIT_TYPES

    with psycopg.connect(url) as conn:
        path_ids = [
            first_value(
                conn.execute(
                    f"INSERT INTO {PathModel._meta.db_table} (site_id, path, title, event) "
                    "VALUES (%s, %s, '', false) ON CONFLICT (site_id, event, path) DO UPDATE SET title = '' "
                    "RETURNING id",  # each ceiling of the run, into the same site
                    [site_id, page],
                )
            )
            for page in PAGES
        ]
        conn.commit()
        rng = random.Random(3)
        sample = [
            (site_id, rng.choice(path_ids), uuid.uuid4(), rng.random() < 0.5, rng.choice(["", "Google", "example.org/links"]),
             "h", "", "Chrome 131", "Windows 10", None, "", "", START + timedelta(seconds=n))
            for n in range(10_000)
        ]  # fmt: skip
        sql = f"COPY {Hit._meta.db_table} ({', '.join(HIT_COLUMNS)}) FROM STDIN" + (
            " (FORMAT BINARY)" if binary else ""
        )
        started = time.perf_counter()
        done = 0
        while done < rows:
            size = min(batch, rows - done)
            with conn.cursor() as cursor, cursor.copy(sql) as copy:
                if binary:
                    copy.set_types(HIT_TYPES)
                for n in range(done, done + size):
                    copy.write_row(sample[n % len(sample)])
            conn.commit()
            done += size
        return rows / (time.perf_counter() - started)


def run_import(env: dict[str, str], site: str, fmt: str, path: Path) -> tuple[float, int, str]:
    """(seconds, peak RSS in KiB, summary line) of `manage.py import_hits` in its own process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "import_hits", "--site", site, "--format", fmt, "--silent", str(path)],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode:
        sys.exit(f"import_hits failed ({child.returncode})")
    return seconds, usage.ru_maxrss, out.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000, help="Lines of the log and rows of the export.")
    parser.add_argument("--full", action="store_true", help="1,000,000 lines (the issue's size).")
    parser.add_argument("--db", choices=["auto", "local", "embedded"], default="auto")
    parser.add_argument("--name", default="imp_bench", help="Database name (recreated) on the local PostgreSQL.")
    args = parser.parse_args()
    lines = 1_000_000 if args.full else args.lines
    OUT.mkdir(parents=True, exist_ok=True)
    url, where = prepare_database(args.db, args.name)
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": secrets.token_urlsafe(50), "DEBUG": "false",
           "REDIS_URL": "", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}  # fmt: skip
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input", "-v0"], env=env, check=True)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsvc.settings")
    import django

    django.setup()
    from analytics import importer
    from analytics.models import Site
    from logsvc.models import User

    owner, _ = User.objects.get_or_create(username="importbench")
    codes = ["log-small", "log-full", "csv-small", "csv-full", "copy", "startup"]
    sites = {code: Site.objects.create(code=f"bench-{code}", owner=owner) for code in codes}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log(f"Writing a {human(lines)}-line combined log and a {human(lines)}-row export")
        write_log(work / "small.log", SMALL)
        write_log(work / "full.log", lines)
        write_export(work / "small.csv.gz", SMALL)
        write_export(work / "full.csv.gz", lines)
        (work / "empty.log").write_text("")
        startup, _, _ = run_import(env, "bench-startup", "combined", work / "empty.log")
        log(f"Django start-up of the command: {startup:.2f} s (taken off each run)")
        for name, fmt, suffix in (("combined log", "combined", "log"), ("CSV export", "csv", "csv.gz")):
            key = "log" if fmt == "combined" else "csv"
            _, small_rss, _ = run_import(env, f"bench-{key}-small", fmt, work / f"small.{suffix}")
            # The ceilings just before each import: the machine's load of the moment weighs on both alike
            log(f"COPY ceilings: {human(lines)} rows in batches of {importer.BATCH}, binary (the ceiling) and text")
            ceiling = copy_ceiling(url, sites["copy"].pk, lines, importer.BATCH)
            text_ceiling = copy_ceiling(url, sites["copy"].pk, lines, importer.BATCH, binary=False)
            log(f"Importing the {human(lines)} {name}")
            seconds, full_rss, summary = run_import(env, f"bench-{key}-full", fmt, work / f"full.{suffix}")
            log(summary)
            rate = lines / max(seconds - startup, 1e-9)
            rows.append((name, rate, ceiling, text_ceiling, full_rss, small_rss))
    table = [
        (
            f"Import benchmark: {human(lines)} lines; {where}. COPY: binary COPY of as many hit rows just before the "
            "import (the ceiling); text COPY: the same in COPY's text format (the ceiling of the earlier runs)."
        ),
        "",
        (
            f"| input | lines/s | COPY rows/s | / COPY | target | text COPY rows/s | / text COPY | peak RSS {human(lines)} "
            "| at 10k | ratio | target |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rate, ceiling, text_ceiling, full_rss, small_rss in rows:
        ratio, memory = rate / ceiling, full_rss / small_rss
        table.append(
            f"| {name} | {rate:,.0f} | {ceiling:,.0f} | {ratio:.2f} "
            f"| >= {RATE_TARGET} {'PASS' if ratio >= RATE_TARGET else 'MISS'} "
            f"| {text_ceiling:,.0f} | {rate / text_ceiling:.2f} "
            f"| {full_rss / 1024:,.0f} MB | {small_rss / 1024:,.0f} MB | {memory:.2f} "
            f"| <= {MEMORY_TARGET} {'PASS' if memory <= MEMORY_TARGET else 'MISS'} |"
        )
    text = "\n".join(table)
    print(text)
    (OUT / "import.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
