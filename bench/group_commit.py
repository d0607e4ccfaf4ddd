#!/usr/bin/env python
"""Issue 16's benchmark: the hot ingestion paths under the ASGI server with group commit, against their ceilings.

Not a test: it prints one table (also bench/out/group_commit.txt) and exits 0 whatever the numbers are. Every
configuration runs on this machine in the same run, each on its own server started for it:

- hello: a bare ASGI app (bench/asgi_apps.py), gunicorn + uvicorn workers, the server's own ceiling;
- ceiling: a minimal group-commit ASGI app that parses the pixel's query, stores a row and answers after the
  commit (the ceiling of a durable hit in Python here), and its JSON twin (POST, json.loads, a row);
- django async: Django's ASGI handler with logsvc's middleware and an async view that answers a GIF and stores
  nothing (what a pixel as a Django async view could reach at best);
- django insert1: today's plain Django view that inserts one row, under sync gunicorn (bench/urls.py);
- each hot path under logsvc.asgi (as `make run` and the Dockerfile serve it) and under sync gunicorn (before).

For each: the most requests/s (wrk -t2 -c64), then p50/p99 latency at about half that rate (wrk paced by a Lua
delay()), and the CPU the server (gunicorn and its workers, and the PostgreSQL backends of the benchmark
database) spent per item.

    .venv/bin/python bench/group_commit.py [--seconds 8] [--rounds 1] [--only pixel,ceiling,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (
    LUA_DONE,
    OUT,
    VENV_BIN,
    children,
    free_port,
    log,
    process_cpu,
    recreate_database,
    run_wrk,
    table_lines,
)

DB_NAME = os.getenv("BENCH_DB_NAME", "logsvc_bench_ingest_gc")  # another name: two runs side by side
UNTHROTTLED = "100000000/60"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"


@dataclass
class Case:
    name: str
    server: str  # "asgi" (gunicorn + uvicorn workers) or "sync"
    app: str
    method: str
    path: str  # may hold {n}: the request counter, for distinct pixel paths
    expect: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    items: int = 1  # rows per request
    workers: int = 2


def cases(key: str, code: str) -> list[Case]:
    event = json.dumps({"name": "click", "trace_id": "t-1", "data": {"on": "signup", "n": 1}})
    log_message = json.dumps({"Message": "Cache miss for key product:1", "Severity": 2, "Application": "shop"})
    hits = json.dumps(
        {
            "no_sessions": True,
            "hits": [{"path": f"/p/{n % 50}", "title": "T", "ref": "https://example.com/"} for n in range(500)],
        }
    )
    pixel = f"/count/{code}?p=/page/{{n}}&t=Title&r=https%3A%2F%2Fnews.example.com%2F&s=1920"
    json_headers = {"Content-Type": "application/json"}
    logster = {"ApiKey": key, **json_headers}
    bearer = {"Authorization": f"Bearer {key}", **json_headers}
    return [
        Case("hello (bare ASGI)", "asgi", "bench.asgi_apps:hello", "GET", "/", 200),
        Case("ceiling pixel (group commit)", "asgi", "bench.asgi_apps:ceiling", "GET", pixel, 200),
        Case("ceiling JSON (group commit)", "asgi", "bench.asgi_apps:ceiling", "POST", "/", 201, json_headers, event),
        Case("django async view, no insert", "asgi", "bench.asgi_apps:django_async", "GET", "/bench/async-gif", 200),
        Case("django insert1 (sync)", "sync", "logsvc.wsgi", "POST", "/bench/insert", 201, json_headers, event, 1, 3),
        Case("pixel asgi", "asgi", "logsvc.asgi:application", "GET", pixel, 200),
        Case("pixel sync (before)", "sync", "logsvc.wsgi", "GET", pixel, 200, workers=3),
        Case("logster 1 asgi", "asgi", "logsvc.asgi:application", "POST", "/api/Log", 200, logster, log_message),
        Case("logster 1 sync", "sync", "logsvc.wsgi", "POST", "/api/Log", 200, logster, log_message, 1, 3),
        Case("bytelog 1 asgi", "asgi", "logsvc.asgi:application", "POST", "/api/v1/events", 201, bearer, event),
        Case("bytelog 1 sync", "sync", "logsvc.wsgi", "POST", "/api/v1/events", 201, bearer, event, 1, 3),
        Case("count 500 asgi", "asgi", "logsvc.asgi:application", "POST", "/api/v0/count", 202, bearer, hits, 500),
        Case("count 500 sync", "sync", "logsvc.wsgi", "POST", "/api/v0/count", 202, bearer, hits, 500, 3),
    ]


def lua(case: Case, delay_ms: float | None) -> Path:
    headers = {"User-Agent": UA, **case.headers}
    lines = ["local n = 0", "local headers = {}"]
    lines += [f'headers["{name}"] = "{value}"' for name, value in headers.items()]
    body = f"[==[{case.body}]==]" if case.body is not None else "nil"
    path = case.path.replace("{n}", '" .. (n % 500) .. "')
    lines.append(f'request = function() n = n + 1; return wrk.format("{case.method}", "{path}", headers, {body}) end')
    if delay_ms is not None:
        lines.append(f"delay = function() return {delay_ms:.3f} end")
    name = "".join(c if c.isalnum() else "_" for c in case.name)
    script = OUT / f"gc_{name}_{'paced' if delay_ms else 'max'}.lua"
    script.write_text("\n".join(lines) + "\n" + LUA_DONE)
    return script


class Server:
    def __init__(self, case: Case, env: dict[str, str]) -> None:
        self.port = free_port()
        command = [
            str(VENV_BIN / "gunicorn"),
            case.app,
            f"--bind=127.0.0.1:{self.port}",
            f"--workers={case.workers}",
            "--log-level=warning",
            "--no-control-socket",
            "--preload",
            f"--chdir={ROOT}",
        ]
        if case.server == "asgi":  # as make run and the Dockerfile run it
            command += ["--worker-class=uvicorn_worker.UvicornWorker", "--keep-alive=15"]
        self.log_path = OUT / "group_commit-servers.log"
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + 60
        while len(children(self.proc.pid)) < case.workers or not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{case.name}: the server did not start; see {self.log_path}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2).close()
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: dict[str, list[dict[str, Any]]] = {}

    def setup(self) -> None:
        import psycopg

        OUT.mkdir(exist_ok=True)
        (OUT / "group_commit-servers.log").write_text("")
        self.url = recreate_database("postgres://postgres@127.0.0.1:5432/postgres", DB_NAME)
        env = {**os.environ, "DATABASE_URL": self.url, "SECRET_KEY": "bench", "DEBUG": "false"}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        log(f"migrating {DB_NAME}")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "createcachetable"], cwd=ROOT, env=env, check=True)
        script = (
            "from logsvc.models import User, ApiKey; from analytics.models import Site; "
            "u = User.objects.create_user('bench'); s = Site.objects.create(code='bench', owner=u); "
            "_, raw = ApiKey.create(user=u, name='bench', scopes=['logs:write', 'events:write', 'count']); "
            "s.api_keys.add(ApiKey.objects.get()); print(u.pk, raw)"
        )
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True, capture_output=True
        )
        owner, self.key = out.stdout.decode().split()[-2:]
        with psycopg.connect(self.url, autocommit=True) as conn:
            from bench.asgi_apps import CEILING_TABLES

            conn.execute(CEILING_TABLES)
        self.env = env | {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "BENCH_OWNER_ID": owner,
            "CEILING_DATABASE_URL": self.url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": "",
            **{
                f"RATE_LIMIT_{name}": UNTHROTTLED
                for name in ("LOGSTER", "BYTELOG", "GOATCOUNTER", "GOATCOUNTER_COUNT", "GOATCOUNTER_PIXEL")
            },
        }

    def backend_pids(self) -> list[int]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DB_NAME]
            ).fetchall()
        return [pid for (pid,) in rows]

    def measure(self, case: Case, round_no: int) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE analytics_hit, analytics_bothit, analytics_visitorpath, events_event, events_logmessage, "
                "bench_ceiling_hit, bench_ceiling_event, logsvc_ratelimitcounter"
            )
        server = Server(case, self.env)
        try:
            url = f"http://127.0.0.1:{server.port}"
            first = urllib.request.Request(
                url + case.path.replace("{n}", "0"),
                data=case.body.encode() if case.body else None,
                headers={"User-Agent": UA, **case.headers},
                method=case.method,
            )
            try:
                status = urllib.request.urlopen(first, timeout=30).status
            except urllib.error.HTTPError as error:
                status = error.code
            if status != case.expect:
                raise RuntimeError(f"{case.name}: {status}, not {case.expect}")
            run_wrk(url, lua(case, None), threads=2, connections=64, seconds=2)  # warm-up
            pids = server.pids() + self.backend_pids()
            cpu = sum(process_cpu(pid) for pid in pids)
            top = run_wrk(url, lua(case, None), threads=2, connections=64, seconds=self.args.seconds)
            cpu = sum(process_cpu(pid) for pid in pids) - cpu
            # Half the rate: 32 connections, each waiting so long between its requests.
            delay = 32 * 1000 / max(top.rps / 2, 1)
            half = run_wrk(url, lua(case, delay), threads=2, connections=32, seconds=self.args.seconds)
        finally:
            server.stop()
        result = {
            "round": round_no,
            "rps": top.rps,
            "items_per_s": top.rps * case.items,
            "p50_max": top.p50_ms,
            "p99_max": top.p99_ms,
            "half_rps": half.rps,
            "p50": half.p50_ms,
            "p99": half.p99_ms,
            "cpu_ms_per_item": cpu * 1000 / max(top.requests * case.items, 1),
            "errors": {**top.errors, **half.errors},
        }
        self.results.setdefault(case.name, []).append(result)
        log(f"{case.name}: {top.rps:,.0f} req/s, p99 {half.p99_ms:.1f} ms at {half.rps:,.0f} req/s {result['errors']}")

    def median(self, name: str, key: str) -> float | None:
        runs = self.results.get(name)
        return statistics.median(run[key] for run in runs) if runs else None

    def ratio(self, a: str, b: str, key: str = "items_per_s") -> str:
        pairs = [
            x[key] / y[key]
            for x in self.results.get(a, [])
            for y in self.results.get(b, [])
            if x["round"] == y["round"] and y[key]
        ]
        return f"{statistics.median(pairs):.2f}" if pairs else "-"

    def report(self, all_cases: list[Case]) -> str:
        baselines = {
            "pixel asgi": ("ceiling pixel (group commit)", 0.4),
            "pixel sync (before)": ("ceiling pixel (group commit)", None),
            "logster 1 asgi": ("ceiling JSON (group commit)", 0.3),
            "logster 1 sync": ("ceiling JSON (group commit)", None),
            "bytelog 1 asgi": ("ceiling JSON (group commit)", 0.3),
            "bytelog 1 sync": ("ceiling JSON (group commit)", None),
            "count 500 asgi": ("count 500 sync", 1.0),
            "ceiling pixel (group commit)": ("django insert1 (sync)", None),
            "ceiling JSON (group commit)": ("django insert1 (sync)", None),
            "django async view, no insert": ("ceiling pixel (group commit)", None),
            "django insert1 (sync)": ("hello (bare ASGI)", None),
        }
        header = (
            "config",
            "req/s",
            "items/s",
            "vs",
            "ratio",
            "target",
            "p50 ms",
            "p99 ms",
            "at req/s",
            "CPU ms/item",
            "errors",
        )
        rows = []
        for case in all_cases:
            if case.name not in self.results:
                continue
            base, target = baselines.get(case.name, ("", None))
            ratio = self.ratio(case.name, base) if base else "-"
            verdict = ""
            if target is not None and ratio != "-":
                verdict = f">= {target} {'PASS' if float(ratio) >= target else 'MISS'}"
            p99 = self.median(case.name, "p99")
            rows.append(
                (
                    case.name,
                    f"{self.median(case.name, 'rps'):,.0f}",
                    f"{self.median(case.name, 'items_per_s'):,.0f}",
                    base or "-",
                    ratio,
                    verdict + (" p99<=25" if target is not None and p99 is not None and p99 <= 25 else ""),
                    f"{self.median(case.name, 'p50'):.1f}",
                    f"{p99:.1f}",
                    f"{self.median(case.name, 'half_rps'):,.0f}",
                    f"{self.median(case.name, 'cpu_ms_per_item'):.3f}",
                    str(sum(sum(run["errors"].values()) for run in self.results[case.name])),
                )
            )
        load = Path("/proc/loadavg").read_text().split()[:3]
        return "\n".join(
            [
                (
                    f"bench/group_commit.py: {self.args.rounds} round(s) of {self.args.seconds} s, wrk -t2 -c64 for "
                    f"req/s, -c32 paced to ~half for p50/p99; {os.cpu_count()} CPUs; load average at the end "
                    f"{' '.join(load)}"
                ),
                *table_lines(header, rows),
                (
                    "ratio: median of same-round ratios of items/s. CPU ms/item: gunicorn master and workers plus "
                    "the PostgreSQL backends of the benchmark database, over the req/s run."
                ),
            ]
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated words: run the configs whose name has one")
    args = parser.parse_args()
    bench = Bench(args)
    bench.setup()
    all_cases = cases(bench.key, "bench")
    words = [word for word in args.only.split(",") if word]
    chosen = [case for case in all_cases if not words or any(word in case.name for word in words)]
    with contextlib.suppress(KeyboardInterrupt):
        for round_no in range(args.rounds):
            for case in chosen[round_no % len(chosen) :] + chosen[: round_no % len(chosen)]:
                try:
                    bench.measure(case, round_no)
                except RuntimeError as error:
                    log(f"skipped: {error}")
    table = bench.report(all_cases)
    (OUT / "group_commit.txt").write_text(table + "\n")
    (OUT / "group_commit-details.json").write_text(json.dumps(bench.results, indent=1))
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
