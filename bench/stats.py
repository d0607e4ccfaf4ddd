#!/usr/bin/env python
"""GoatCounter read-side benchmark over real HTTP: the dashboard and /api/v0/stats/hits at two data sizes.

Seeds a site with 10,000 hits and another with 10,000,000 (`manage.py seed_analytics`, a year of them),
then measures with wrk the time per request of the dashboard page and of /api/v0/stats/hits for a 30-day
and a 1-year range on each; target: time at the large size over time at the small one <= 1.5. Then sends
a burst of 100,000 hits to /api/v0/count with the worker running and prints how long until the rollups
(what stats read) hold all of them; target < 10 s. Not a test. `.venv/bin/python bench/stats.py --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/stats.py` puts bench/ first on the path, not the project

from bench.ingest import (  # after the path fix above
    OUT,
    REDIS,
    REDIS_URL,
    UNTHROTTLED,
    WRK,
    Gunicorn,
    add_run_args,
    apply_quick,
    human,
    log,
    port_answers,
    prepare_database,
    run_bench,
    run_wrk,
    table_lines,
    write_lua,
)

TARGET = 1.5
LAG_TARGET = 10.0
RANGES = {"30 days": 30, "1 year": 365}


def session_cookie(user: Any) -> str:
    """A signed-in session of user's, as the Cookie header that sends it."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"sessionid={session.session_key}"


class StatsBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: dict[tuple[str, str, int], list[float]] = {}
        self.ratios: dict[str, list[float]] = {}  # URL -> each round's large / small
        self.lag: dict[str, float] = {}
        self.gunicorn: Gunicorn | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def setup(self) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        if not WRK.exists():
            sys.exit("wrk is not installed at /usr/bin/wrk. Install it with: apt-get install wrk")
        url, self.where = prepare_database(self.args.db)
        self.db_url = url
        redis_ok = port_answers(*REDIS)
        self.server_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "logsvc.settings",
            "DATABASE_URL": url,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "SECURE_COOKIES": "false",
            "REDIS_URL": REDIS_URL if redis_ok else "",
            "RATE_LIMIT_GOATCOUNTER": UNTHROTTLED,
            "RATE_LIMIT_GOATCOUNTER_COUNT": UNTHROTTLED,
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        for command in (["migrate", "--no-input", "-v0"], ["collectstatic", "--no-input", "-v0"]):  # DEBUG=false pages
            subprocess.run([sys.executable, str(ROOT / "manage.py"), *command], env=self.server_env, check=True)
        os.environ.update(self.server_env)
        import django

        django.setup()
        from logsvc.models import User

        if not self.args.reuse:
            User.objects.filter(username="statsbench").delete()  # and its sites, so they are seeded anew
        self.user, _ = User.objects.get_or_create(username="statsbench")
        self.gunicorn = Gunicorn(self.args.workers, self.server_env)

    def seed(self, code: str, hits: int) -> None:
        from analytics.models import Hit

        if self.args.reuse and Hit.objects.filter(site__code=code, site__owner=self.user).count() >= hits:
            log(f"Site {code} already holds its {human(hits)} hits (--reuse)")
            return
        log(f"Seeding site {code} with {human(hits)} hits over a year (seed_analytics)")
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "seed_analytics", "--site", code, "--owner", "statsbench",
             "--hits", str(hits), "--days", "365"],
            env=self.server_env, check=True,
        )  # fmt: skip

    def session_cookie(self) -> str:
        return session_cookie(self.user)

    def key_for(self, code: str) -> str:
        from analytics.models import Site
        from logsvc.models import ApiKey

        key, raw = ApiKey.create(user=self.user, name=f"bench {code}", scopes=["stats", "count"])
        key.sites.set([Site.objects.get(code=code)])
        return raw

    def urls(self, code: str) -> dict[str, str]:
        today = datetime.now(UTC).date()
        urls = {}
        for label, days in RANGES.items():
            start, end = (today - timedelta(days=days - 1)).isoformat(), today.isoformat()
            urls[f"dashboard, {label}"] = f"/sites/{code}/?start={start}&end={end}"
            urls[f"/api/v0/stats/hits, {label}"] = f"/api/v0/stats/hits?start={start}&end={end}"
        return urls

    def check(self, url: str, headers: dict[str, str]) -> None:
        assert self.gunicorn is not None  # setup() made it
        request = urllib.request.Request(self.gunicorn.base + url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        if status != 200:
            raise RuntimeError(f"{url} answered {status}: {body[:300]!r}")
        if "/api/" in url and not json.loads(body)["hits"]:
            raise RuntimeError(f"{url} shows no hits: the seed or the rollups did not work")

    def measure(self) -> None:
        """Each URL on both sites in the same rounds, one after the other (their order turns each round), so a
        drift of the host (a checkpoint, another tenant) weighs on both sides of a round's ratio alike."""
        assert self.gunicorn is not None  # setup() made it
        sizes = {"small": self.args.small, "large": self.args.large}
        cookie, keys = self.session_cookie(), {code: self.key_for(code) for code in sizes}
        urls = {code: self.urls(code) for code in sizes}
        self.gunicorn.start()
        try:
            for name in urls["small"]:
                runs = {}
                for code in sizes:
                    url = urls[code][name]
                    bearer = {"Authorization": f"Bearer {keys[code]}"}
                    headers = {"Cookie": cookie} if name.startswith("dashboard") else bearer
                    self.check(url, headers)
                    runs[code] = (url, write_lua(f"stats_{abs(hash((name, code)))}", "GET", headers))
                wrk = {"threads": 2, "connections": self.args.connections}
                for url, script in runs.values():
                    run_wrk(self.gunicorn.base + url, script, seconds=self.args.warmup, **wrk)
                for round_no in range(1, self.args.rounds + 1):
                    means = {}
                    for code in list(sizes)[:: 1 if round_no % 2 else -1]:
                        url, script = runs[code]
                        result = run_wrk(self.gunicorn.base + url, script, seconds=self.args.duration, **wrk)
                        if result.errors:
                            log(f"  !! wrk errors {result.errors} on {url}")
                        means[code] = result.mean_ms
                        self.results.setdefault((name, code, sizes[code]), []).append(result.mean_ms)
                        log(f"  {name} @ {human(sizes[code])} round {round_no}: mean {result.mean_ms:.1f} ms, "
                            f"p99 {result.p99_ms:.1f} ms, {result.rps:,.0f} req/s")  # fmt: skip
                    self.ratios.setdefault(name, []).append(means["large"] / means["small"])
        finally:
            self.gunicorn.stop()

    def checkpoint(self) -> None:
        """Write out what the seeding left dirty, so that no checkpoint spreads it over the measurements."""
        from django.db import connection

        log("CHECKPOINT after seeding")
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")

    def burst(self, hits: int) -> None:
        """hits to /api/v0/count in 500-hit batches from 4 threads; then how long until they are rolled up."""
        assert self.gunicorn is not None  # setup() made it
        from django.db import connection

        from analytics.models import RollupState

        raw = self.key_for("large")
        now = datetime.now(UTC)
        batches = [
            json.dumps({"no_sessions": True, "hits": [
                {"path": f"/burst/{(b * 500 + i) % 300}", "created_at": now.isoformat().replace("+00:00", "Z"),
                 "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}
                for i in range(500)]}).encode()
            for b in range(hits // 500)
        ]  # fmt: skip
        self.gunicorn.start()
        log_path = OUT / "db_worker.log"
        with log_path.open("wb") as out:
            self.worker = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "db_worker", "--no-startup-delay", "--interval", "0.2"],
                env=self.server_env, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip
        try:
            pending = list(enumerate(batches))
            lock = threading.Lock()

            def send() -> None:
                assert self.gunicorn is not None  # setup() made it
                while True:
                    with lock:
                        if not pending:
                            return
                        _, body = pending.pop()
                    request = urllib.request.Request(
                        self.gunicorn.base + "/api/v0/count", data=body, method="POST",
                        headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
                    )  # fmt: skip
                    with urllib.request.urlopen(request, timeout=60) as response:
                        assert response.status == 202, response.status

            started = time.perf_counter()
            threads = [threading.Thread(target=send) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            acked = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("SELECT max(id) FROM analytics_hit")
                last = cursor.fetchone()[0]
            while RollupState.objects.get(name="hits").last_hit_id < last:
                if time.perf_counter() - acked > 120:
                    raise RuntimeError("the rollups did not catch up within 120 s; see bench/out/db_worker.log")
                time.sleep(0.05)
            done = time.perf_counter()
        finally:
            self.worker.terminate()
            self.worker.wait(timeout=30)
            self.gunicorn.stop()
        self.lag = {"hits": hits, "send_s": acked - started, "lag_s": done - acked}
        log(f"  burst: {hits:,} hits acknowledged in {acked - started:.1f} s; rolled up {done - acked:.2f} s later")

    def run(self) -> None:
        args = self.args
        self.seed("small", args.small)
        self.seed("large", args.large)
        self.checkpoint()
        self.measure()
        if args.burst:
            self.burst(args.burst)

    def report(self) -> str:
        args = self.args
        rows = []
        for name in self.urls("x"):
            small = statistics.median(self.results[(name, "small", args.small)])
            large = statistics.median(self.results[(name, "large", args.large)])
            ratio = statistics.median(self.ratios[name])  # of the rounds' paired ratios
            rows.append((f"{name} @{human(args.large)}", f"{large:.1f} ms/req", f"@{human(args.small)} {small:.1f} ms",
                         f"{ratio:.2f}", f"<= {TARGET}", "PASS" if ratio <= TARGET else "MISS"))  # fmt: skip
        if self.lag:
            lag = self.lag["lag_s"]
            rows.append((f"rollup lag after a burst of {self.lag['hits']:,} hits", f"{lag:.2f} s",
                         f"burst sent in {self.lag['send_s']:.1f} s", "", f"< {LAG_TARGET:.0f} s",
                         "PASS" if lag < LAG_TARGET else "MISS"))  # fmt: skip
        header = ("measurement", "value (median)", "baseline", "ratio", "target", "result")
        return "\n".join(
            [
                f"logsvc GoatCounter stats benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                *table_lines(header, rows),
                "",
                (
                    f"sites: 'small' with {human(args.small)} hits and 'large' with {human(args.large)}, a year each "
                    "(seed_analytics: ~400 paths, Zipf), rolled up before measuring; ranges end today"
                ),
                (
                    f"database: {self.where}; server: gunicorn {args.workers} sync workers, DEBUG=false; wrk -t2 "
                    f"-c{args.connections} -d{args.duration}s, {args.warmup} s warm-up, {args.rounds} rounds taking both "
                    "sites in turn (value: median of mean latencies; ratio: median of the rounds' ratios)"
                ),
                (
                    "burst: 4 client threads posting 500-hit batches; lag = last 202 until the rollup cursor passes the "
                    "last hit (db_worker polling every 0.2 s, ROLLUP_INTERVAL_SECONDS=1)"
                ),
            ]
        )

    def write_details(self) -> None:
        lines = [f"{key}: {values}" for key, values in self.results.items()]
        lines += [f"{name}, large / small by round: {ratios}" for name, ratios in self.ratios.items()]
        lines.append(f"burst: {self.lag}")
        (OUT / "stats-details.txt").write_text("\n".join(lines) + "\n")

    def close(self) -> None:
        if self.worker and self.worker.poll() is None:
            self.worker.kill()
        if self.gunicorn:
            self.gunicorn.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(p)
    p.add_argument("--quick", action="store_true", help="a smoke run: 200k hits for the large site, short runs")
    p.add_argument("--small", type=int, default=10_000, help="hits of the small site (default 10k)")
    p.add_argument("--large", type=int, default=10_000_000, help="hits of the large site (default 10M)")
    p.add_argument("--burst", type=int, default=100_000, help="hits of the rollup-lag burst (0: skip)")
    p.add_argument("--duration", type=int, default=8, help="seconds per wrk run (default 8)")
    p.add_argument("--connections", type=int, default=4, help="wrk connections (default 4)")
    p.add_argument("--db", choices=["auto", "local", "embedded"], default="auto", help="where the database runs")
    p.add_argument(
        "--reuse", action="store_true",
        help="with DATABASE_URL: keep sites that already hold their hits from an earlier run (seeding 10M takes ~10 min)",
    )  # fmt: skip
    args = p.parse_args(argv)
    apply_quick(p, args, {"large": 200_000, "duration": 3, "warmup": 1, "rounds": 1, "burst": 20_000})
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = StatsBench(args)
    return run_bench(bench, bench.run, "stats")


if __name__ == "__main__":
    sys.exit(main())
