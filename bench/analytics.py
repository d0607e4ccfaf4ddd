#!/usr/bin/env python
"""GoatCounter benchmark over real HTTP: gunicorn + PostgreSQL + wrk, and the real export worker.

Measures, with same-run baselines:
  (a) the plain Django insert view of bench/ingest.py, req/s;
  (g) the browser pixel GET /count/<code> (varied paths, user agents, referrers), req/s, target >= 0.8 x (a);
  (h) POST /api/v0/count with 500 realistic hits a request, hits/s, target >= 0.3 x (e);
  (e) the database ceiling: the same hits by psycopg COPY into the hit table, 500 per COPY+commit;
  (x) an export of N hits by `manage.py db_worker`, seconds, against (y) `COPY (SELECT ...) TO STDOUT | gzip`
      of the same query, target (y)/(x) >= 0.5; and the worker's peak memory at 1M hits over at 10k, <= 1.2.
Not a test. Run it with `.venv/bin/python bench/analytics.py` (`--quick` for a smoke run, `--help`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/analytics.py` puts bench/ first on the path, not the project

from bench.ingest import (  # after the path fix above
    LUA_DONE,
    OUT,
    UNTHROTTLED,
    Bench,
    HttpCase,
    Run,
    add_run_args,
    apply_quick,
    human,
    log,
    run_bench,
    table_lines,
    write_lua,
)

BATCH = 500
# Every hit lands in one of the two (bots in analytics_bothit): what wrk sent is checked against both.
ALL_HITS = "(SELECT id FROM analytics_hit UNION ALL SELECT id FROM analytics_bothit) AS hits"
SITE_CODE = "bench"
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
        "Safari/605.1.15"
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
        "Mobile/15E148 Safari/604.1"
    ),
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 "
        "Chrome/122.0.0.0 Mobile Safari/537.36"
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 "
        "Edg/131.0.0.0"
    ),
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
REFERRERS = [
    "",
    "",
    "https://www.google.com/",
    "https://news.ycombinator.com/item?id=4242",
    "https://duckduckgo.com/",
    "https://example.net/blog/links",
    "https://t.co/abc",
]
SIZES = [1920, 1440, 390, 412, 1366, 2560]
LOCATIONS = ["US", "DE", "NL", "GB", "FR", "IN", "BR", "US-CA"]


def site_paths(rng: random.Random, n: int = 400) -> list[str]:
    return ["/"] + [f"/blog/{i}-{rng.choice(['release', 'notes', 'howto', 'intro'])}" for i in range(n)]


def hit(rng: random.Random, paths: list[str], now: datetime) -> dict[str, Any]:
    """One hit as a backend sends it to /api/v0/count."""
    return {
        "path": rng.choice(paths),
        "title": "A page of the benchmark site",
        "ref": rng.choice(REFERRERS),
        "user_agent": rng.choice(AGENTS),
        "ip": f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "size": [rng.choice(SIZES)],
        "location": rng.choice(LOCATIONS),
        "created_at": (now - timedelta(seconds=rng.randint(0, 3600))).isoformat().replace("+00:00", "Z"),
    }


PIXEL_LUA = """
local paths = {%(paths)s}
local agents = {%(agents)s}
local refs = {%(refs)s}
local n = 0
request = function()
  n = n + 1
  local p = paths[(n * 7) %% #paths + 1]
  local r = refs[(n * 3) %% #refs + 1]
  wrk.headers["User-Agent"] = agents[n %% #agents + 1]
  return wrk.format("GET", "/count/%(code)s?p=" .. p .. "&t=Page&r=" .. r .. "&s=1920&rnd=" .. n)
end
"""


def high_water_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), 0 once it is gone.

    Not ru_maxrss from wait4: on Linux a child's maxrss starts from its parent's at fork and survives
    exec, so it would report this (large) benchmark process rather than the worker.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def lua_list(values: list[str]) -> str:
    return ", ".join(json.dumps(v) for v in values)


class AnalyticsBench(Bench):
    def setup(self) -> None:
        super().setup()
        self.server_env.update(
            {
                "RATE_LIMIT_GOATCOUNTER": UNTHROTTLED,
                "RATE_LIMIT_GOATCOUNTER_COUNT": UNTHROTTLED,
                "RATE_LIMIT_GOATCOUNTER_PIXEL": "",
                "RATE_LIMIT_GOATCOUNTER_EXPORT": "",
                "EXPORT_DIR": str(OUT / "exports"),
            }
        )
        os.environ.update({k: v for k, v in self.server_env.items() if k.startswith(("RATE_LIMIT_", "EXPORT_"))})
        from analytics.models import ROLLUP_MODELS, Hit, Site
        from logsvc.models import ApiKey, User

        Site.objects.filter(code=SITE_CODE).delete()
        user = User.objects.get(pk=self.owner_id)
        self.site = Site.objects.create(code=SITE_CODE, owner=user)
        key = ApiKey.objects.get(user=user)
        self.site.api_keys.add(key)
        self.hits_table = Hit._meta.db_table
        self.reset_tables = [self.hits_table, "analytics_bothit", "analytics_visitorpath", "analytics_path"]
        self.reset_tables += [model._meta.db_table for model in ROLLUP_MODELS]

    def write_scripts(self) -> list[HttpCase]:
        cases = super().write_scripts()
        rng = random.Random(7)
        paths = site_paths(rng)
        now = datetime.now(UTC)
        batch = json.dumps({"hits": [hit(rng, paths, now) for _ in range(BATCH)]})
        self.count_body_bytes = len(batch)
        self.bodies["h"] = batch
        self.hit_rng, self.hit_paths = rng, paths
        pixel = OUT / "get_pixel.lua"
        pixel.write_text(
            PIXEL_LUA
            % {
                "paths": lua_list(paths[:200]),
                "agents": lua_list(AGENTS[:-1]),
                "refs": lua_list([r.replace(":", "%3A").replace("/", "%2F") for r in REFERRERS]),
                "code": SITE_CODE,
            }
            + LUA_DONE
        )
        self.bodies["g"] = ""
        bearer = {"Content-Type": "application/json", "Authorization": f"Bearer {self.raw_key}"}
        return [
            cases[0],  # (a) the baseline insert
            HttpCase("g", "pixel GET /count/<code>, 1 hit", f"/count/{SITE_CODE}", pixel, table=ALL_HITS),
            HttpCase("h", f"POST /api/v0/count, {BATCH}-hit batches", "/api/v0/count",
                     write_lua("post_count", "POST", bearer, batch), unit="hits/s", rows_per_request=BATCH,
                     table=ALL_HITS),
        ]  # fmt: skip

    def preflight(self, case: HttpCase, expected: int) -> None:
        assert self.gunicorn is not None  # setup() made it
        if case.key == "g":
            url = f"{self.gunicorn.base}/count/{SITE_CODE}?p=/preflight"
            request = urllib.request.Request(url, headers={"User-Agent": AGENTS[0]})
            with urllib.request.urlopen(request, timeout=30) as response:
                if response.status != 200 or response.headers["Content-Type"] != "image/gif":
                    raise RuntimeError(f"the pixel answered {response.status}")
            return
        super().preflight(case, {"h": 202}.get(case.key, expected))

    def measure_http(self, case: HttpCase, round_no: int) -> Run:
        self.db.reset(*self.reset_tables, self.events_table)
        return super().measure_http(case, round_no)

    def copy_rows(self, n: int) -> list[tuple[Any, ...]]:
        """Hit rows as record_hits writes them for the (h) bodies: for the COPY ceiling (e) and the export data."""
        from analytics.services import HIT_COLUMNS

        rng = random.Random(11)
        now = datetime.now(UTC)
        rows = []
        for i in range(n):
            rows.append(
                (
                    self.site.pk,
                    None,  # path id, filled in by load_paths
                    uuid.UUID(int=rng.getrandbits(128)),
                    rng.random() < 0.7,
                    rng.choice(["", "", "Google", "Hacker News", "example.net/blog/links"]),
                    rng.choice(["", "", "g", "g", "h"]),
                    "",
                    rng.choice(["Chrome 131", "Safari 18", "Firefox 133", "Edge 131"]),
                    rng.choice(["Windows 10", "macOS 10.15", "iOS 18.1", "Linux", "Android 14"]),
                    rng.choice(SIZES),
                    rng.choice(LOCATIONS),
                    "",
                    now - timedelta(seconds=n - i),
                )
            )
        assert len(HIT_COLUMNS) == len(rows[0])
        return rows

    def path_ids(self) -> list[int]:
        import psycopg

        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO analytics_path (site_id, path, title, event) SELECT %s, p, 'A page', false "
                "FROM unnest(%s::text[]) p ON CONFLICT DO NOTHING",
                [self.site.pk, self.hit_paths],
            )
            return [row[0] for row in conn.execute("SELECT id FROM analytics_path WHERE site_id = %s", [self.site.pk])]

    def measure_copy(self, round_no: int, rows: list[tuple[Any, ...]], big_rows: list[tuple[Any, ...]]) -> list[Run]:
        """(e) the same number of hits (h) stores, by COPY into the hit table, 500 per COPY+commit."""
        import psycopg

        from analytics.services import HIT_COLUMNS

        self.db.reset(*self.reset_tables)
        ids = self.path_ids()
        filled = [(r[0], ids[i % len(ids)], *r[2:]) for i, r in enumerate(rows)]
        with psycopg.connect(self.db_url) as conn:
            start = time.perf_counter()
            for i in range(0, len(filled), BATCH):
                self.db.copy(conn, self.hits_table, HIT_COLUMNS, filled[i : i + BATCH])
                conn.commit()
            seconds = time.perf_counter() - start
        log(f"  (e) round {round_no}: COPY {BATCH} hits per commit {len(rows) / seconds:,.0f} rows/s")
        return [Run("e", round_no, len(rows) / seconds, "rows/s", {"rows": len(rows), "seconds": seconds})]

    def ingest_phase(self) -> None:
        args = self.args
        log(f"Building {human(args.copy_rows)} hit rows for COPY (not timed)")
        rows = self.copy_rows(args.copy_rows)
        order = [*self.cases, None]
        for round_no in range(1, args.rounds + 1):
            rotated = order[round_no - 1 :] + order[: round_no - 1]
            log(f"Round {round_no}/{args.rounds}: " + ", ".join(c.key if c else "e" for c in rotated))
            for case in rotated:
                if case is None:
                    self.runs.extend(self.measure_copy(round_no, rows, []))
                else:
                    self.runs.append(self.measure_http(case, round_no))

    # -- exports

    def load_hits(self, n: int) -> None:
        import psycopg
        from tqdm import tqdm

        from analytics.services import HIT_COLUMNS

        self.db.reset(*self.reset_tables)
        ids = self.path_ids()
        chunk = 100_000
        with psycopg.connect(self.db_url) as conn, tqdm(total=n, unit="hits", unit_scale=True, desc="loading") as bar:
            for start in range(0, n, chunk):
                rows = self.copy_rows(min(chunk, n - start))
                filled = [(r[0], ids[i % len(ids)], *r[2:]) for i, r in enumerate(rows)]
                self.db.copy(conn, self.hits_table, HIT_COLUMNS, filled)
                conn.commit()
                bar.update(len(rows))
        self.db.vacuum_analyze(self.hits_table, "analytics_path")

    def export_once(self) -> dict[str, Any]:
        """POST /api/v0/export to a live server, run `db_worker --batch`, and read what it took."""
        assert self.gunicorn is not None  # setup() made it
        from django.core.files.storage import storages

        from analytics.models import Export

        self.gunicorn.start()
        try:
            request = urllib.request.Request(
                f"{self.gunicorn.base}/api/v0/export",
                data=b"",
                method="POST",
                headers={"Authorization": f"Bearer {self.raw_key}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                export_id = json.loads(response.read())["id"]
        finally:
            self.gunicorn.stop()
        env = {**self.server_env, "DJANGO_SETTINGS_MODULE": "logsvc.settings"}
        command = [sys.executable, str(ROOT / "manage.py"), "db_worker", "--batch", "--no-startup-delay", "-v0"]
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max(peak_kb, high_water_kb(proc.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            assert proc.stderr is not None  # a pipe
            raise RuntimeError(f"db_worker failed: {proc.stderr.read().decode()[-2000:]}")
        export = Export.objects.get(pk=export_id)
        if export.finished_at is None or export.error:
            raise RuntimeError(f"export {export_id} did not finish: {export.error!r}")
        assert export.started_at is not None  # finished, so started
        return {
            "seconds": (export.finished_at - export.started_at).total_seconds(),
            "worker_wall": wall,
            "peak_rss_mb": peak_kb / 1024,
            "rows": export.num_rows,
            "bytes": storages["exports"].size(export.file),
        }

    def copy_to_gzip(self) -> float:
        """(y) the floor: the export's own COPY, by psql, piped through gzip -6 into a file."""
        from analytics.tasks import _export_sql

        # site, after id, up to id, from time (the export's start_from_day; none here)
        sql = _export_sql().replace("%s", "{}").format(self.site.pk, 0, 2**62, "'-infinity'").strip()
        target = OUT / "exports" / "baseline.csv.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with target.open("wb") as out:
            psql = subprocess.Popen(["psql", self.db_url, "-X", "-q", "-c", sql], stdout=subprocess.PIPE)
            gzip = subprocess.run(["gzip", "-6"], stdin=psql.stdout, stdout=out, check=True)
            assert psql.stdout is not None  # a pipe
            psql.stdout.close()
            if psql.wait() != 0 or gzip.returncode != 0:
                raise RuntimeError("psql | gzip failed")
        return time.perf_counter() - started

    def query_phase(self) -> None:
        args = self.args
        self.export_results: dict[int, list[dict[str, Any]]] = {}
        for size in (args.small_rows, args.large_rows):
            log(f"Loading {human(size)} hits")
            self.load_hits(size)
            for round_no in range(1, args.rounds + 1):
                baseline = self.copy_to_gzip()
                result = self.export_once() | {"baseline": baseline}
                self.export_results.setdefault(size, []).append(result)
                log(
                    f"  export @ {human(size)} round {round_no}: {result['seconds']:.2f} s in the worker "
                    f"({result['worker_wall']:.2f} s wall), COPY|gzip {baseline:.2f} s, peak RSS "
                    f"{result['peak_rss_mb']:.0f} MB, {result['rows']:,} rows, {result['bytes'] / 1e6:.1f} MB gzip"
                )
        shutil.rmtree(OUT / "exports", ignore_errors=True)

    def report(self) -> str:
        rows: list[tuple[str, ...]] = []

        def rate_row(key: str, title: str, unit: str, base: str | None, target: float | None, per: float = 1) -> None:
            m = self.median(key)
            if m is None:
                return
            cpu = self.server_cpu((r.detail for r in self.runs if r.config == key and "host_busy" in r.detail), per)
            row = (f"({key}) {title}", f"{m[0]:,.0f} {unit} ({m[1]:,.0f}-{m[2]:,.0f})", cpu)
            if base is None:
                rows.append((*row, "", "", "", ""))
                return
            ratio, bm = self.paired(key, base), self.median(base)
            assert ratio is not None and bm is not None and target is not None  # measured, as a base is given
            verdict = "PASS" if ratio >= target else "MISS"
            rows.append((*row, f"({base}) {bm[0]:,.0f}", f"{ratio:.2f}", f">= {target}", verdict))

        rate_row("a", "baseline: plain Django view, json.loads + ORM create", "req/s", None, None)
        rate_row("g", "pixel GET /count/<code>, 1 hit", "req/s", "a", 0.8)
        rate_row("h", f"POST /api/v0/count, {BATCH}-hit batches", "hits/s", "e", 0.3, per=BATCH / 1000)
        rate_row("e", f"DB ceiling: COPY {BATCH} hits per COPY+commit, 1 conn", "rows/s", None, None)
        results = getattr(self, "export_results", {})
        small, large = self.args.small_rows, self.args.large_rows
        if small in results and large in results:
            for size in (small, large):
                seconds = statistics.median(r["seconds"] for r in results[size])
                base = statistics.median(r["baseline"] for r in results[size])
                ratios = [r["baseline"] / r["seconds"] for r in results[size]]
                ratio = statistics.median(ratios)
                row = (f"(x) export of {human(size)} hits, in the worker", f"{seconds:.2f} s", "")
                if size == large:
                    rows.append((*row, f"(y) COPY|gzip {base:.2f} s", f"{ratio:.2f}", ">= 0.5",
                                 "PASS" if ratio >= 0.5 else "MISS"))  # fmt: skip
                else:
                    rows.append((*row, f"(y) COPY|gzip {base:.2f} s", f"{ratio:.2f}", "", "info"))
            rss = {size: statistics.median(r["peak_rss_mb"] for r in results[size]) for size in (small, large)}
            ratio = rss[large] / rss[small]
            rows.append((f"(m) worker peak RSS, export of {human(large)} hits", f"{rss[large]:.0f} MB", "",
                         f"@{human(small)} {rss[small]:.0f} MB", f"{ratio:.2f}", "<= 1.2",
                         "PASS" if ratio <= 1.2 else "MISS"))  # fmt: skip
        header = ("measurement", "value: median (min-max)", "srv CPU ms", "baseline", "ratio", "target", "result")
        args = self.args
        return "\n".join(
            [
                f"logsvc GoatCounter benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
                + (" (--quick: smoke run)" if args.quick else ""),
                *table_lines(header, rows),
                "",
                (
                    "ratios are medians of per-round paired ratios; srv CPU ms: gunicorn + PostgreSQL CPU per request "
                    "(per 1,000 hits for (h))"
                ),
                f"  database: {self.env_lines['database']}; PostgreSQL {self.env_lines['PostgreSQL']}",
                (
                    f"  server: gunicorn, {args.workers} sync workers, DEBUG=false, rate limits off; wrk -t{args.threads} "
                    f"-c{args.connections} -d{args.duration}s, {args.warmup} s warm-up, {args.rounds} rounds"
                ),
                (
                    f"  (h) body: {BATCH} hits, {self.count_body_bytes:,} B, {len(AGENTS)} user agents (1 a bot), "
                    f"{len(self.hit_paths)} paths; (g): 200 paths, 6 user agents, 7 referrers, one client IP (so the "
                    "pixel's 4/s limit is off)"
                ),
                (
                    "  (x) seconds from the worker taking the export to finished_at (file written, hashed); peak RSS of "
                    "the `db_worker --batch` process (VmHWM, polled every 20 ms); (y) psql COPY of the same SELECT piped to gzip -6"
                ),
            ]
        )

    def write_details(self) -> None:
        lines = [f"{r.config} round {r.round}: {r.rate:,.0f} {r.unit}; {r.detail}" for r in self.runs]
        for size, results in getattr(self, "export_results", {}).items():
            lines += [f"export@{human(size)}: {r}" for r in results]
        (OUT / "analytics-details.txt").write_text("\n".join(lines) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(p)
    p.add_argument("--quick", action="store_true", help="a short smoke run (100k hits at most)")
    p.add_argument("--duration", type=int, default=10, help="seconds per HTTP run (default 10)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--copy-rows", type=int, default=100_000, help="hits per (e) run, 500 per COPY (default 100k)")
    p.add_argument("--small-rows", type=int, default=10_000, help="hits of the small export (default 10k)")
    p.add_argument("--large-rows", type=int, default=1_000_000, help="hits of the large export (default 1M)")
    p.add_argument("--db", choices=["auto", "local", "embedded"], default="auto", help="where the database runs")
    p.add_argument("--no-redis", action="store_true", help="count rate limits in PostgreSQL even if Redis answers")
    p.add_argument("--skip-ingest", action="store_true", help="only the exports")
    p.add_argument("--skip-exports", action="store_true", help="only the HTTP measurements")
    p.add_argument("--force", action="store_true", help="use a DATABASE_URL database that already has data")
    args = p.parse_args(argv)
    apply_quick(p, args, {"duration": 3, "warmup": 1, "copy_rows": 20_000, "large_rows": 100_000})
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    bench = AnalyticsBench(args)

    def measure() -> None:
        if not args.skip_ingest:
            bench.ingest_phase()
        if not args.skip_exports:
            bench.query_phase()

    return run_bench(bench, measure, "analytics")


if __name__ == "__main__":
    sys.exit(main())
