#!/usr/bin/env python
"""Mixed-traffic load benchmark: the whole stack under 60 s of every kind of request at once.

Starts gunicorn (DEBUG=false) and the real worker (`manage.py db_worker`) on a seeded database, then runs one
wrk process per request kind, all at the same time, closed loop: ingestion (Logster, Bytelog single and batch,
GoatCounter /api/v0/count and the pixel), littlelogs timelines, GoatCounter stats and the dashboard, and
exports (POST, limited to one an hour per site, so 429 is expected; GET of an export and its download).
Prints requests per second and p50/p99 per kind and in all, errors by status (target: none but the export
429s), the most database connections seen (sampled every 0.5 s), and the memory of every server process after
a warm-up and at the end (target: no growth beyond noise). Not a test. `.venv/bin/python bench/load.py --help`.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/load.py` puts bench/ first on the path, not the project

from bench.analytics import AGENTS, PIXEL_LUA, REFERRERS, hit, lua_list, site_paths  # after the path fix above
from bench.ingest import (
    EVENT_COLUMNS,
    LOCAL_PG,
    LOG_COLUMNS,
    OUT,
    REDIS,
    UNTHROTTLED,
    WRK,
    Database,
    EventFactory,
    Gunicorn,
    LogFactory,
    apply_quick,
    children,
    first_value,
    host_cpu,
    human,
    log,
    port_answers,
    postgres_pids,
    prepare_database,
    process_cpu,
    run_bench,
    table_lines,
)
from bench.social import choose_subjects
from bench.stats import session_cookie

DB_NAME = "logsvc_load"
REDIS_URL = "redis://127.0.0.1:6379/13"
SITE = "load"
USER = "loadbench"
SAMPLE_SECONDS = 0.5
APP_NAME = "bench/load.py"  # this script's own connections, left out of the counts
SERVERS_BACKENDS = "datname = %s AND backend_type = 'client backend' AND application_name <> %s"
MEMORY_NOISE_MB = 5.0  # per process, after the warm-up: more than this over the run is growth
ROLLUP_TARGET = 10.0
BATCH_EVENTS = 100
COUNT_HITS = 50
STORED_IN = ("events_logmessage", "events_event", "analytics_hit", "analytics_bothit")
# Latency quantiles each wrk reports: every half percent, then the tail; merged across kinds by request counts.
QUANTILES = [q / 2 for q in range(1, 199)] + [99 + q / 10 for q in range(1, 10)] + [99.95, 99.99, 100]

LOAD_LUA = """
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) statuses = {} end
response = function(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
done = function(summary, latency, requests)
  local counts, parts, qs = {}, {}, {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do counts[status] = (counts[status] or 0) + n end
  end
  for status, n in pairs(counts) do table.insert(parts, string.format('"%%d": %%d', status, n)) end
  for _, q in ipairs({%(quantiles)s}) do table.insert(qs, string.format("[%%g, %%d]", q, latency:percentile(q))) end
  local e = summary.errors
  io.write(string.format('LOAD_RESULT {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, '
    .. '"write": %%d, "timeout": %%d, "statuses": {%%s}, "quantiles": [%%s]}\\n', summary.requests,
    summary.duration, e.connect, e.read, e.write, e.timeout, table.concat(parts, ", "), table.concat(qs, ", ")))
end
"""


@dataclass
class Kind:
    """One kind of request in the mix, run by a wrk process of its own with `weight` of the connections."""

    key: str
    group: str
    title: str
    path: str
    weight: int
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    ok: tuple[int, ...] = (200,)  # answers that are not errors
    request_lua: str = ""  # a request() of its own (the pixel rotates paths, agents and referrers)
    connections: int = 0
    script: Path | None = None


@dataclass
class KindResult:
    requests: int
    seconds: float
    statuses: dict[int, int]
    sockets: dict[str, int]  # wrk's connect/read/write/timeout errors
    quantiles: list[tuple[float, float]]  # (percent, ms)
    cpu: float  # CPU seconds of this wrk

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def quantile(self, percent: float) -> float:
        return next(ms for q, ms in self.quantiles if q >= percent)


def mixture_quantile(results: list[KindResult], percent: float) -> float:
    """The latency below which `percent` of all requests fell: the kinds' distributions weighted by requests."""
    total = sum(r.requests for r in results)

    def share_below(ms: float) -> float:
        below = 0.0
        for r in results:
            values = [v for _, v in r.quantiles]
            i = bisect.bisect_right(values, ms)
            below += r.requests * (r.quantiles[i - 1][0] if i else 0.0) / 100
        return below / total

    candidates = sorted({v for r in results for _, v in r.quantiles})
    return next((ms for ms in candidates if share_below(ms) >= percent / 100), candidates[-1])


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of a process in kB; (0, 0) once it is gone."""
    values = {"VmRSS:": 0, "RssAnon:": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition("\t") if "\t" in line else line.partition(" ")
            if name in values:
                values[name] = int(rest.split()[0])
    except OSError:
        pass
    return values["VmRSS:"], values["RssAnon:"]


class LoadBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.gunicorn: Gunicorn | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.wrks: list[subprocess.Popen[str]] = []
        self.results: dict[str, KindResult] = {}
        self.samples: list[tuple[int, int]] = []  # (connections to our database, to the whole server)
        self.rss_series: list[tuple[str, float, dict[str, int]]] = []  # (phase, seconds, label -> RSS kB)
        self.memory: dict[str, dict[str, tuple[int, int, int]]] = {}  # phase -> label -> (pid, rss, anon)
        self.info: dict[str, Any] = {}

    # -- setup

    def setup(self) -> None:
        args = self.args
        OUT.mkdir(parents=True, exist_ok=True)
        if not WRK.exists():
            sys.exit("wrk is not installed at /usr/bin/wrk. Install it with: apt-get install wrk")
        choice = args.db if args.db != "auto" else ("local" if port_answers(*LOCAL_PG) else "embedded")
        self.db_url, self.where = prepare_database(choice, DB_NAME)
        redis_ok = not args.no_redis and port_answers(*REDIS)
        self.rate_backend = f"Redis ({REDIS_URL})" if redis_ok else "PostgreSQL (no Redis)"
        self.server_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "logsvc.settings",
            "DATABASE_URL": self.db_url,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "SECURE_COOKIES": "false",
            "REDIS_URL": REDIS_URL if redis_ok else "",
            # High limits so they do not hide the capacity; the export's one an hour per site stays.
            **{f"RATE_LIMIT_{name}": UNTHROTTLED for name in
               ("LOGSTER", "BYTELOG", "GOATCOUNTER", "GOATCOUNTER_COUNT", "GOATCOUNTER_PIXEL")},
            "EXPORT_DIR": str(OUT / "load-exports"),
            "LOG_LEVEL": "ERROR",  # 4xx are WARNINGs (the expected 429s); errors and tracebacks are what we count
            "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        self.server_env.pop("RATE_LIMIT_GOATCOUNTER_EXPORT", None)
        log(f"Database: {self.where}; migrating")
        commands = [["migrate", "--no-input", "-v0"], ["collectstatic", "--no-input", "-v0"]]
        if not redis_ok:
            commands.append(["createcachetable"])
        for command in commands:
            self.manage(*command)
        os.environ.update(self.server_env)
        import django

        django.setup()
        if redis_ok:  # the export's hour from an earlier run would refuse the export this run starts with
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter("ratelimit:goatcounter-export:*"):
                client.delete(key)
        self.seed()
        self.gunicorn = Gunicorn(args.workers, self.server_env)
        self.gunicorn.log_path = OUT / "load-gunicorn.log"
        self.worker_log = OUT / "load-db_worker.log"
        for path in (self.gunicorn.log_path, self.worker_log):
            path.write_text("")

    def manage(self, *command: str) -> None:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), *command], env=self.server_env, check=True, cwd=ROOT)

    def seed(self) -> None:
        """Modest data, so reads are real: a site with hits, littlelogs users and logs, Logster and Bytelog rows."""
        from django.db import connection

        from analytics.models import Site
        from logsvc.models import SCOPES, ApiKey, User

        args = self.args
        self.user = User.objects.create_user(USER, email="load@example.org", password=secrets.token_urlsafe(12))
        log(f"Seeding: {human(args.hits)} GoatCounter hits over 90 days (seed_analytics)")
        self.manage("seed_analytics", "--site", SITE, "--owner", USER, "--hits", str(args.hits), "--days", "90")
        log(f"Seeding: littlelogs, {args.users} users and {human(args.logs)} logs (seed_social)")
        self.manage("seed_social", "--users", str(args.users), "--logs", str(args.logs), "--seed", "1")
        key, self.raw_key = ApiKey.create(user=self.user, name="load", scopes=[name for name, _ in SCOPES])
        key.sites.set([Site.objects.get(code=SITE)])
        log(f"Seeding: {human(args.messages)} Logster messages and as many Bytelog events (COPY)")
        now = datetime.now(UTC)
        rng = random.Random(3)
        moments = sorted(now - timedelta(seconds=rng.uniform(0, 7 * 86_400)) for _ in range(args.messages))
        db = Database(self.db_url)
        db.copy(db.conn, "events_logmessage", LOG_COLUMNS, LogFactory(seed=4).rows(self.user.pk, moments))
        db.copy(db.conn, "events_event", EVENT_COLUMNS, EventFactory(seed=5).rows(self.user.pk, moments, now))
        db.vacuum_analyze("events_logmessage", "events_event")
        db.conn.close()
        with connection.cursor() as cursor:
            self.subjects = choose_subjects(cursor)
        self.tokens = self.littlelogs_tokens()
        # The dashboard's session: the same as bench/stats.py makes (it reads only .user).
        self.cookie = session_cookie(self.user)
        self.kinds = self.mix()

    def littlelogs_tokens(self) -> dict[str, str]:
        from oauth2_provider.models import AccessToken, Application

        from logsvc.models import User

        tokens = {}
        for role in ("home_user", "activity_user"):
            user = User.objects.get(username=self.subjects[role])
            app = Application.objects.create(
                name=f"load {role}",
                user=user,
                client_type=Application.CLIENT_CONFIDENTIAL,
                authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                redirect_uris="https://example.org/callback",
            )
            tokens[role] = f"load-{role}-{secrets.token_urlsafe(16)}"
            AccessToken.objects.create(
                user=user, application=app, token=tokens[role], scope="read write",
                expires=datetime.now(UTC) + timedelta(days=1),
            )  # fmt: skip
        return tokens

    def mix(self) -> list[Kind]:
        """The request kinds; `weight` is each one's share of the connections (32 at the default)."""
        now = datetime.now(UTC)
        events = EventFactory(seed=1)
        rng = random.Random(7)
        paths = site_paths(rng)
        today = now.date()
        days = f"start={(today - timedelta(days=29)).isoformat()}&end={today.isoformat()}"
        json_type = {"Content-Type": "application/json"}
        bearer = {**json_type, "Authorization": f"Bearer {self.raw_key}"}
        home = {"Authorization": f"Bearer {self.tokens['home_user']}"}
        logster = {"Message": "Request GET /api/orders/48213 completed with 200 in 112 ms", "Severity": 2,
                   "Category": "Http", "Application": "checkout-api", "User": "alice@example.org"}  # fmt: skip
        pixel = PIXEL_LUA % {
            "paths": lua_list(paths[:200]),
            "agents": lua_list(AGENTS[:-1]),
            "refs": lua_list([r.replace(":", "%3A").replace("/", "%2F") for r in REFERRERS]),
            "code": SITE,
        }
        tag = urllib.parse.quote(self.subjects["tag"], safe="")
        hits = [hit(rng, paths, now) for _ in range(COUNT_HITS)]
        bots = sum(h["user_agent"] == AGENTS[-1] for h in hits)  # Googlebot's go to the bot table
        # What the ingestion answers promise to have stored: table -> (kind, status, rows per such answer).
        self.stored = {
            "events_logmessage": [("logster", 200, 1)],
            "events_event": [("bytelog", 201, 1), ("bytelog_batch", 201, BATCH_EVENTS)],
            "analytics_hit": [("count", 202, COUNT_HITS - bots), ("pixel", 200, 1)],
            "analytics_bothit": [("count", 202, bots)],
        }
        return [
            Kind("logster", "ingest", "Logster POST /api/Log, 1 message", "/api/Log", 3, "POST",
                 {**json_type, "ApiKey": self.raw_key}, json.dumps(logster)),
            Kind("bytelog", "ingest", "Bytelog POST /api/v1/events, 1 event", "/api/v1/events", 2, "POST", bearer,
                 json.dumps(events.item(now)), ok=(201,)),
            Kind("bytelog_batch", "ingest", f"Bytelog POST, {BATCH_EVENTS}-event batch", "/api/v1/events", 2, "POST",
                 bearer, json.dumps([events.item(now) for _ in range(BATCH_EVENTS)]), ok=(201,)),
            Kind("count", "ingest", f"GoatCounter POST /api/v0/count, {COUNT_HITS} hits", "/api/v0/count", 2,
                 "POST", bearer, json.dumps({"hits": hits}), ok=(202,)),
            Kind("pixel", "ingest", "GoatCounter pixel GET /count/<code>", f"/count/{SITE}?p=/", 3,
                 request_lua=pixel),
            Kind("public", "timelines", "littlelogs public timeline", "/api/1/timelines/public/", 2, headers=home),
            Kind("home", "timelines", "littlelogs home timeline", "/api/1/timelines/home/", 2, headers=home),
            Kind("tag", "timelines", "littlelogs tag page (most used tag)", f"/api/1/logs/tag/{tag}/", 2,
                 headers=home),
            Kind("activity", "timelines", "littlelogs activity timeline", "/api/1/timelines/activity/", 2,
                 headers={"Authorization": f"Bearer {self.tokens['activity_user']}"}),
            Kind("stats_hits", "stats", "GET /api/v0/stats/hits, 30 days", f"/api/v0/stats/hits?{days}", 2,
                 headers=bearer),
            Kind("stats_total", "stats", "GET /api/v0/stats/total, 30 days", f"/api/v0/stats/total?{days}", 2,
                 headers=bearer),
            Kind("dashboard", "stats", "dashboard /sites/<code>/, 30 days", f"/sites/{SITE}/?{days}", 3,
                 headers={"Cookie": self.cookie}),
            Kind("export_post", "exports", "POST /api/v0/export (1 an hour per site)", "/api/v0/export", 2, "POST",
                 bearer, "{}", ok=(202, 429)),
            Kind("export_get", "exports", "GET /api/v0/export/<id>", "/api/v0/export/{export}", 2, headers=bearer),
            Kind("export_download", "exports", "GET /api/v0/export/<id>/download (small)",
                 "/api/v0/export/{export}/download", 1, headers=bearer),
        ]  # fmt: skip

    # -- the servers

    def start(self) -> None:
        assert self.gunicorn is not None  # setup() made it
        log(f"Starting gunicorn ({self.args.workers} sync workers) and manage.py db_worker")
        self.gunicorn.start()
        with self.worker_log.open("ab") as out:
            self.worker = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "db_worker", "--no-startup-delay"],
                env=self.server_env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip

    def http(self, method: str, path: str, headers: dict[str, str], body: str | None = None) -> tuple[int, bytes]:
        assert self.gunicorn is not None  # setup() made it
        request = urllib.request.Request(
            self.gunicorn.base + path, data=body.encode() if body is not None else None, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def make_export(self) -> None:
        """The site's export of the hour (of its last 2,000 hits, so its download stays small), run by the worker."""
        from analytics.models import Hit

        kind = next(k for k in self.kinds if k.key == "export_post")
        since = max(0, (Hit.objects.order_by("-id").values_list("id", flat=True).first() or 0) - 2000)
        started = time.monotonic()
        status, body = self.http("POST", kind.path, kind.headers, json.dumps({"start_from_hit_id": since}))
        if status != 202:
            raise RuntimeError(f"POST /api/v0/export answered {status}: {body[:300]!r}")
        export_id = json.loads(body)["id"]
        while True:
            status, body = self.http("GET", f"/api/v0/export/{export_id}", kind.headers)
            if status == 200 and json.loads(body)["finished_at"]:
                break
            if time.monotonic() - started > 60:
                raise RuntimeError(f"the worker did not finish export {export_id} in 60 s; see {self.worker_log}")
            time.sleep(0.2)
        self.info["export"] = f"export {export_id} ({json.loads(body)['num_rows']:,} rows) finished by the worker "
        self.info["export"] += f"{time.monotonic() - started:.1f} s after the POST"
        for k in self.kinds:
            k.path = k.path.replace("{export}", str(export_id))

    def preflight(self) -> None:
        """One request of each kind by hand: each must answer as expected, or the figures mean nothing."""
        for kind in self.kinds:
            status, body = self.http(kind.method, kind.path, kind.headers, kind.body)
            if status not in kind.ok:
                raise RuntimeError(f"{kind.method} {kind.path} answered {status}, not {kind.ok}: {body[:300]!r}")

    # -- the load

    def write_scripts(self) -> None:
        total_weight = sum(k.weight for k in self.kinds)
        quantiles = ", ".join(f"{q:g}" for q in QUANTILES)
        for kind in self.kinds:
            kind.connections = max(1, round(kind.weight * self.args.connections / total_weight))
            lines = [f'wrk.method = "{kind.method}"']
            lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in kind.headers.items()]
            if kind.body is not None:
                lines.append(f"wrk.body = [==[{kind.body}]==]")
            kind.script = OUT / f"load_{kind.key}.lua"
            kind.script.write_text("\n".join(lines) + "\n" + kind.request_lua + LOAD_LUA % {"quantiles": quantiles})

    def warm_up(self, conn: Any) -> list[dict[str, KindResult]]:
        """The mix in runs of --warmup seconds until the server has answered --warmup-requests (at most 120 s):
        a worker's memory rises over its first few hundred requests (caches, and cyclic garbage until the
        first full collections), and a busy host needs longer than a quiet one to serve them."""
        phases: list[dict[str, KindResult]] = []
        started = time.monotonic()
        while True:
            phases.append(self.run_mix(self.args.warmup, f"warm-up {len(phases) + 1}", conn))
            served = sum(r.requests for phase in phases for r in phase.values())
            if served >= self.args.warmup_requests or time.monotonic() - started > 120:
                break
        self.info["warmup"] = f"{served:,} requests in {time.monotonic() - started:.0f} s"
        return phases

    def sample_connections(self, conn: Any) -> None:
        mine, everyone = conn.execute(
            f"SELECT count(*) FILTER (WHERE {SERVERS_BACKENDS}), count(*) FILTER (WHERE backend_type = 'client backend') "
            "FROM pg_stat_activity",
            [DB_NAME, APP_NAME],
        ).fetchone()
        self.samples.append((mine, everyone))

    def run_mix(self, seconds: int, label: str, conn: Any) -> dict[str, KindResult]:
        """Every kind's wrk at once for `seconds`, sampling the database connections meanwhile."""
        assert self.gunicorn is not None  # setup() made it
        from tqdm import tqdm

        self.wrks = []
        for kind in self.kinds:
            command = [str(WRK), "-t1", f"-c{kind.connections}", f"-d{seconds}s", "--timeout=30s", "-s",
                       str(kind.script), self.gunicorn.base + kind.path]  # fmt: skip
            self.wrks.append(
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)  # Ctrl-C reaches only this script, which stops them
            )  # fmt: skip
        started = time.monotonic()
        usage: dict[int, Any] = {}  # pid -> its rusage, once it exited (wait4 rather than poll: wrk's CPU)
        with tqdm(total=seconds, desc=label, unit="s", bar_format="{l_bar}{bar}| {n:.0f}/{total} s {postfix}") as bar:
            while len(usage) < len(self.wrks):
                for proc in self.wrks:
                    if proc.pid not in usage:
                        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                        if pid:
                            proc.returncode = os.waitstatus_to_exitcode(status)
                            usage[pid] = rusage
                self.sample_connections(conn)
                rss = {label: memory_kb(pid)[0] for label, pid in self.python_processes().items()}
                self.rss_series.append((label, round(time.monotonic() - started, 1), rss))
                bar.set_postfix_str(f"db connections {self.samples[-1][0]}")
                bar.n = round(min(seconds, time.monotonic() - started))
                bar.refresh()
                time.sleep(SAMPLE_SECONDS)
        results = {}
        for kind, proc in zip(self.kinds, self.wrks, strict=True):
            assert proc.stdout is not None  # a pipe
            output = proc.stdout.read()
            proc.stdout.close()
            match = re.search(r"^LOAD_RESULT (\{.*\})$", output, re.MULTILINE)
            if proc.returncode != 0 or not match:
                raise RuntimeError(f"wrk for {kind.key} failed ({proc.returncode}):\n{output}")
            r = json.loads(match.group(1))
            results[kind.key] = KindResult(
                requests=r["requests"],
                seconds=r["duration_us"] / 1e6,
                statuses={int(s): n for s, n in r["statuses"].items()},
                sockets={k: r[k] for k in ("connect", "read", "write", "timeout") if r[k]},
                quantiles=[(q, us / 1000) for q, us in r["quantiles"]],
                cpu=usage[proc.pid].ru_utime + usage[proc.pid].ru_stime,
            )
        self.wrks = []
        return results

    def python_processes(self) -> dict[str, int]:
        assert self.gunicorn is not None and self.worker is not None  # setup() made them
        master = self.gunicorn.proc
        assert master is not None  # start() started it
        workers = sorted(children(master.pid))
        pids = {"gunicorn master": master.pid}
        pids |= {f"gunicorn worker {i}": pid for i, pid in enumerate(workers, 1)}
        return pids | {"db_worker": self.worker.pid}

    def server_processes(self) -> dict[str, int]:
        """label -> pid of gunicorn's master and workers, the worker, and our database's PostgreSQL backends."""
        import psycopg

        pids = self.python_processes()
        with psycopg.connect(self.db_url, autocommit=True, application_name=APP_NAME) as conn:
            rows = conn.execute(
                f"SELECT pid FROM pg_stat_activity WHERE {SERVERS_BACKENDS} ORDER BY backend_start", [DB_NAME, APP_NAME]
            ).fetchall()
        pids |= {f"PostgreSQL backend {pid}": pid for (pid,) in rows}
        return pids

    def take_memory(self, phase: str) -> None:
        self.memory[phase] = {label: (pid, *memory_kb(pid)) for label, pid in self.server_processes().items()}

    def cpu_now(self) -> dict[str, float]:
        assert self.gunicorn is not None and self.worker is not None  # setup() made them
        return {
            "gunicorn": sum(map(process_cpu, self.gunicorn.pids())),
            "db_worker": process_cpu(self.worker.pid),
            "postgres": sum(map(process_cpu, postgres_pids())),
            "host": host_cpu()[0],
        }

    def run(self) -> None:
        assert self.gunicorn is not None  # setup() made it
        import psycopg
        from django.conf import settings
        from django.db import connections

        args = self.args
        self.start()
        self.make_export()
        self.preflight()
        self.write_scripts()
        connections.close_all()  # this process holds no connection to the database while it is loaded
        with psycopg.connect(self.db_url, autocommit=True, application_name=APP_NAME) as conn:
            self.info["max_connections"] = first_value(conn.execute("SHOW max_connections"))
            self.info["conn_max_age"] = settings.DATABASES["default"]["CONN_MAX_AGE"]
            rows_before = self.stored_rows(conn)
            phases = self.warm_up(conn)
            self.take_memory("start")
            cpu0, started = self.cpu_now(), time.monotonic()
            self.results = self.run_mix(args.duration, "mixed load", conn)
            cpu1, elapsed = self.cpu_now(), time.monotonic() - started
            self.take_memory("end")
            rows_after = self.stored_rows(conn)
        phases.append(self.results)
        # table -> (rows stored by the warm-up and the run, rows their answers acknowledged, and the most that
        # requests in flight when wrk stopped (after each phase) may have stored without wrk seeing an answer)
        self.rows = {}
        connections_of = {k.key: k.connections for k in self.kinds}
        for table, acks in self.stored.items():
            acked = sum(n * phase[key].statuses.get(status, 0) for key, status, n in acks for phase in phases)
            cut = sum(len(phases) * n * connections_of[key] for key, _, n in acks)
            self.rows[table] = (rows_after[table] - rows_before[table], acked, cut)
        busy = max(cpu1["host"] - cpu0["host"], 1e-9)
        wrk_cpu = sum(r.cpu for r in self.results.values())
        self.cpu = {name: (cpu1[name] - cpu0[name]) / busy for name in ("gunicorn", "postgres", "db_worker")}
        self.cpu |= {"wrk": wrk_cpu / busy, "host_busy": busy / (elapsed * (os.cpu_count() or 1))}
        self.cpu["other"] = max(0.0, 1 - sum(self.cpu[k] for k in ("gunicorn", "postgres", "db_worker", "wrk")))
        self.rollup_catch_up()
        self.server_errors = {
            path.name: sum(1 for line in path.read_text(errors="replace").splitlines()
                           if re.search(r"Traceback|\bERROR\b|CRITICAL|WORKER TIMEOUT", line))
            for path in (self.gunicorn.log_path, self.worker_log)
        }  # fmt: skip

    @staticmethod
    def stored_rows(conn: Any) -> dict[str, int]:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in STORED_IN}

    def rollup_catch_up(self) -> None:
        """Seconds after the load until the rollups hold every hit it sent (the worker kept up, or caught up)."""
        from analytics.models import Hit, RollupState

        last = Hit.objects.order_by("-id").values_list("id", flat=True).first() or 0
        ended = time.monotonic()
        while (RollupState.objects.filter(name="hits").values_list("last_hit_id", flat=True).first() or 0) < last:
            if time.monotonic() - ended > 60:
                self.info["rollup_s"] = None
                return
            time.sleep(0.1)
        self.info["rollup_s"] = time.monotonic() - ended

    # -- report

    def report(self) -> str:
        args = self.args
        results = [self.results[k.key] for k in self.kinds]
        rows = []
        errors_by_status: dict[str, int] = {}
        expected_429 = 0
        for kind, r in zip(self.kinds, results, strict=True):
            answers = ", ".join(f"{s}: {n:,}" for s, n in sorted(r.statuses.items()))
            bad = {str(s): n for s, n in r.statuses.items() if s not in kind.ok}
            bad |= {f"socket {name}": n for name, n in r.sockets.items()}
            for name, n in bad.items():
                errors_by_status[name] = errors_by_status.get(name, 0) + n
            expected_429 += r.statuses.get(429, 0) if 429 in kind.ok else 0
            rows.append((kind.group, kind.title, str(kind.connections), f"{r.rps:,.1f}", f"{r.quantile(50):.1f}",
                         f"{r.quantile(99):.1f}", answers, str(sum(bad.values())),
                         "PASS" if not bad else "MISS"))  # fmt: skip
        seconds = max(r.seconds for r in results)
        total = sum(r.requests for r in results)
        rows.append(("all", f"{len(self.kinds)} kinds at once", str(sum(k.connections for k in self.kinds)),
                     f"{total / seconds:,.1f}", f"{mixture_quantile(results, 50):.1f}",
                     f"{mixture_quantile(results, 99):.1f}", f"{total:,} requests", str(sum(errors_by_status.values())),
                     "PASS" if not errors_by_status else "MISS"))  # fmt: skip
        header = (
            "group",
            "request",
            "conns",
            "req/s",
            "p50 ms",
            "p99 ms",
            "answers (status: count)",
            "errors",
            "result",
        )

        checks = []
        errors = ", ".join(f"{name}: {n:,}" for name, n in sorted(errors_by_status.items())) or "none"
        checks.append(("errors (not the export's 429s): 5xx, other 4xx, socket errors", errors, "0",
                       "PASS" if not errors_by_status else "MISS"))  # fmt: skip
        checks.append(("export POSTs refused with 429 (1 an hour per site: expected)", f"{expected_429:,}", "", "info"))
        logged = sum(self.server_errors.values())
        checks.append(("errors or tracebacks logged (gunicorn, db_worker)",
                       ", ".join(f"{name} {n}" for name, n in self.server_errors.items()), "0",
                       "PASS" if not logged else "MISS"))  # fmt: skip
        mine = max(s[0] for s in self.samples)
        limit = args.workers + 1
        title = f"database connections to {DB_NAME}, most seen ({len(self.samples)} samples, every {SAMPLE_SECONDS} s)"
        server = f"server-wide peak {max(s[1] for s in self.samples)} of max_connections {self.info['max_connections']}"
        checks.append((title, f"{mine} ({server})", f"<= {limit} ({args.workers} workers + db_worker)",
                       "PASS" if mine <= limit else "MISS"))  # fmt: skip
        start, end = self.memory["start"], self.memory["end"]
        for label in sorted(start.keys() | end.keys(), key=lambda lab: (lab.startswith("PostgreSQL"), lab)):
            postgres = label.startswith("PostgreSQL")
            column = 2 if postgres else 1  # a backend's RSS counts the shared buffers it touched: its own is RssAnon
            before, after = start.get(label), end.get(label)
            if before is None or after is None or before[0] != after[0]:
                value = f"{'started' if before is None else 'gone'} during the run (pid changed or new)"
                checks.append((f"memory: {label}", value, "same process", "MISS"))
                continue
            growth = (after[column] - before[column]) / 1024
            mid = next((rss[label] for phase, t, rss in self.rss_series
                        if phase == "mixed load" and t >= args.duration / 2 and label in rss), None)  # fmt: skip
            halves = f"; 2nd half {(after[column] - mid) / 1024:+.1f}" if mid and not postgres else ""
            checks.append((f"memory: {label} ({'RssAnon' if postgres else 'RSS'})",
                           f"{before[column] / 1024:.1f} -> {after[column] / 1024:.1f} MB ({growth:+.1f} MB{halves})",
                           f"<= +{MEMORY_NOISE_MB:.0f} MB",
                           "PASS" if growth <= MEMORY_NOISE_MB else "MISS"))  # fmt: skip
        for table, (stored, acked, cut) in self.rows.items():
            checks.append((f"rows in {table}: stored / acknowledged (warm-up and run)", f"{stored:,} / {acked:,}",
                           f"acknowledged + 0..{cut:,} cut off by wrk's stop",
                           "PASS" if acked <= stored <= acked + cut else "MISS"))  # fmt: skip
        lag = self.info.get("rollup_s")
        checks.append(("rollups hold every hit sent, after the load's end",
                       f"{lag:.1f} s" if lag is not None else "not within 60 s", f"< {ROLLUP_TARGET:.0f} s",
                       "PASS" if lag is not None and lag < ROLLUP_TARGET else "MISS"))  # fmt: skip
        cpu = self.cpu
        return "\n".join(
            [
                f"logsvc mixed-load benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
                + (" (--quick: smoke run)" if args.quick else ""),
                *table_lines(header, rows),
                "",
                *table_lines(("check", "value", "target", "result"), checks),
                "",
                (
                    f"load: {len(self.kinds)} wrk processes at once (one per kind, -t1, --timeout 30s), closed loop, "
                    f"{sum(k.connections for k in self.kinds)} connections in all (a kind's share of them is its "
                    f"weight in the mix), warm-up of {self.info['warmup']} (not counted; memory 'start' taken after it), "
                    f"then {args.duration} s; p50/p99 of 'all' merge the kinds' latency distributions"
                ),
                (
                    f"CPU during the run: host busy {cpu['host_busy']:.0%} of {os.cpu_count()} CPUs; of that "
                    f"gunicorn {cpu['gunicorn']:.0%}, PostgreSQL (all) {cpu['postgres']:.0%}, db_worker "
                    f"{cpu['db_worker']:.0%}, wrk {cpu['wrk']:.0%}, other (kernel, other tenants) {cpu['other']:.0%}"
                ),
                (
                    f"server: gunicorn {args.workers} sync workers (no keep-alive), DEBUG=false, CONN_MAX_AGE "
                    f"{self.info['conn_max_age']} s; manage.py db_worker; database: {self.where}; rate limits in "
                    f"{self.rate_backend}: {UNTHROTTLED} for Logster, Bytelog, GoatCounter API, count and pixel; "
                    "exports at the default 1/3600 per site"
                ),
                (
                    f"data: {human(args.hits)} hits over 90 days (seed_analytics), {args.users} littlelogs users and "
                    f"{human(args.logs)} logs (seed_social), {human(args.messages)} Logster messages and as many "
                    f"Bytelog events; {self.info['export']}"
                ),
            ]
        )

    def write_details(self) -> None:
        details = {
            "results": {k: vars(r) for k, r in self.results.items()},
            "connection_samples": self.samples,
            "rss_kb_series": self.rss_series,
            "memory_kb": self.memory,
            "cpu": getattr(self, "cpu", {}),
            "info": self.info,
        }
        (OUT / "load-details.txt").write_text(json.dumps(details, indent=1, default=str) + "\n")

    def close(self) -> None:
        for proc in self.wrks:
            if proc.poll() is None:
                proc.kill()
        if self.worker and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        if self.gunicorn:
            self.gunicorn.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run: 10 s of load on less data")
    p.add_argument("--duration", type=int, default=60, help="seconds of mixed load (default 60)")
    p.add_argument("--warmup", type=int, default=5, help="seconds per warm-up run of the same mix (default 5)")
    p.add_argument("--warmup-requests", type=int, default=3000,
                   help="warm-up runs go on until the server answered this many (at most 120 s; default 3000)")  # fmt: skip
    p.add_argument("--connections", type=int, default=32, help="wrk connections in all (default 32)")
    p.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3, for 2 cores)")
    p.add_argument("--hits", type=int, default=100_000, help="GoatCounter hits to seed (default 100k)")
    p.add_argument("--users", type=int, default=300, help="littlelogs users to seed (default 300)")
    p.add_argument("--logs", type=int, default=5_000, help="littlelogs logs to seed (default 5k)")
    p.add_argument("--messages", type=int, default=20_000, help="Logster messages and Bytelog events (default 20k)")
    p.add_argument("--db", choices=["auto", "local", "embedded"], default="auto",
                   help=f"where {DB_NAME} is recreated: the PostgreSQL on 127.0.0.1:5432, else the embedded one")  # fmt: skip
    p.add_argument("--no-redis", action="store_true", help="count rate limits in PostgreSQL even if Redis answers")
    args = p.parse_args(argv)
    apply_quick(
        p,
        args,
        {
            "duration": 10,
            "warmup": 3,
            "warmup_requests": 300,
            "hits": 20_000,
            "users": 100,
            "logs": 1_000,
            "messages": 5_000,
        },
    )
    if args.duration < 1 or args.warmup < 1 or args.connections < 1:
        p.error("--duration, --warmup and --connections must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = LoadBench(args)
    return run_bench(bench, bench.run, "load")


if __name__ == "__main__":
    sys.exit(main())
