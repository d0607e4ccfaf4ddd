#!/usr/bin/env python
"""Ingestion and query benchmark of logsvc over real HTTP: gunicorn + PostgreSQL + wrk on this machine.

Not a test: it prints one table of measurements against their baselines and targets (bench/README.md).
Run it with `make bench` (BENCH_ARGS="--quick" for a smoke run) or `.venv/bin/python bench/ingest.py --help`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
VENV_BIN = Path(sys.executable).parent
WRK = Path("/usr/bin/wrk")
LOCAL_PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
REDIS_URL = "redis://127.0.0.1:6379/14"
BENCH_DB = "logsvc_bench"
UNTHROTTLED = "100000000/60"
ROWS_PER_DAY = 10_000
BATCH_SIZE = 500
SEARCH_WORD = "deadlock"  # the generator puts it in SEARCH_WORD_SHARE of the log messages
SEARCH_WORD_SHARE = 0.02

EVENT_COLUMNS = ("owner_id", "uid", "client_id", "name", "trace_id", "date", "data", "size", "created")
LOG_COLUMNS = (
    "owner_id",
    "message",
    "exception",
    "stack_trace",
    "severity",
    "category",
    "application",
    "user",
    "created",
)

sys.path.insert(0, str(ROOT))  # `python bench/ingest.py` puts bench/ first on the path, not the project


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def human(n: float) -> str:
    """10000 -> 10k, 1000000 -> 1M."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size and n % size == 0:
            return f"{int(n // size)}{suffix}"
    return f"{n:,}"


def port_answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def free_port() -> int:
    """A free loopback port: the first of BENCH_PORTS ("8700-8799") nobody holds when it is set (a machine shared by
    several people's benchmarks), else any the system gives."""
    first, _, last = os.getenv("BENCH_PORTS", "").partition("-")
    for port in range(int(first), int(last or first) + 1) if first else ():
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_handed_out: set[int] = set()  # a port handed out may not be bound yet; each server gets its own


# --- realistic data -----------------------------------------------------------------------------------

EVENT_NAMES = {
    "page.viewed": 30,
    "search.performed": 12,
    "api.called": 10,
    "cart.item_added": 10,
    "user.logged_in": 8,
    "email.sent": 8,
    "order.created": 6,
    "order.paid": 5,
    "order.shipped": 4,
    "invoice.generated": 3,
    "user.signed_up": 2,
    "subscription.renewed": 2,
}
PATHS = [
    "/",
    "/pricing",
    "/products/{n}",
    "/cart",
    "/checkout",
    "/account/orders",
    "/search",
    "/blog/{n}-release-notes",
]
REFERRERS = [
    "",
    "https://www.google.com/",
    "https://news.ycombinator.com/",
    "https://twitter.com/",
    "https://duck.com/",
]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "okhttp/4.12.0",
]


class EventFactory:
    """Bytelog events as a client posts them: a name, the client's id, often a trace, a date and ~200 B of data."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.names = list(EVENT_NAMES)
        self.weights = list(EVENT_NAMES.values())
        self.counter = 0

    def item(self, date: datetime) -> dict[str, Any]:
        rng = self.rng
        self.counter += 1
        name = rng.choices(self.names, self.weights)[0]
        data: dict[str, Any] = {
            "user_id": rng.randint(1, 250_000),
            "session": f"{rng.getrandbits(64):016x}",
            "path": rng.choice(PATHS).format(n=rng.randint(1, 5000)),
            "referrer": rng.choice(REFERRERS),
            "ua": rng.choice(AGENTS),
            "country": rng.choice(["DE", "US", "FR", "GB", "NL", "BR", "IN", "JP"]),
        }
        if name.startswith(("order.", "invoice.", "subscription.")):
            data |= {"amount": round(rng.uniform(5, 500), 2), "currency": rng.choice(["EUR", "USD", "GBP"])}
        return {
            "id": self.counter if rng.random() < 0.8 else f"evt-{rng.getrandbits(48):012x}",
            "name": name,
            "trace_id": f"{rng.getrandbits(128):032x}" if rng.random() < 0.7 else "",
            "date": date.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "data": data,
        }

    def rows(self, owner_id: int, dates: Iterable[datetime], created: datetime) -> Iterator[tuple[Any, ...]]:
        """COPY rows of EVENT_COLUMNS, with the values events.services writes for a posted batch."""
        for date in dates:
            item = self.item(date)
            data = json.dumps(item["data"], separators=(",", ":"))
            yield (
                owner_id,
                secrets.token_urlsafe(12),
                json.dumps(item["id"]),
                item["name"],
                item["trace_id"],
                date,
                data,
                len(data.encode()),  # the size events.services keeps at intake, for paging by bytes
                created,
            )


APPLICATIONS = {
    "checkout-api": 25,
    "web-frontend": 20,
    "billing-worker": 12,
    "auth-service": 12,
    "search-indexer": 10,
    "notification-service": 9,
    "inventory-sync": 8,
    "report-generator": 4,
}
SEVERITIES = {0: 5, 1: 15, 2: 40, 3: 22, 4: 13, 5: 4, 6: 1}  # Trace .. Fatal
USERS = ["", "", "system", "alice@example.org", "bob@example.org", "carol@example.net", "dave", "svc-reports"]
QUIET_MESSAGES = [
    ("Http", "Request {verb} /api/orders/{n} completed with 200 in {ms} ms"),
    ("Http", "Request {verb} /api/customers/{n}/invoices completed with 200 in {ms} ms"),
    ("Auth", "User {n} signed in from {ip} using password and TOTP"),
    ("Auth", "Refreshed access token for client app-{n}"),
    ("Cache", "Cache miss for key product:{n}:price, loaded from database in {ms} ms"),
    ("Cache", "Evicted {n} entries from the session cache"),
    ("Queue", "Consumed message {hex} from queue orders.created after {ms} ms"),
    ("Email", "Sent order confirmation for order {n} to customer {n2}"),
    ("Scheduler", "Job nightly-export-{n} finished in {ms} ms, {n2} rows written"),
    ("Payment", "Payment intent {hex} captured for order {n}"),
]
WARNING_MESSAGES = [
    ("Database", "Slow query took {ms} ms: SELECT * FROM orders WHERE customer_id = {n} ORDER BY created DESC"),
    ("Http", "Retrying request to inventory-service (attempt {small} of 5) after connection reset"),
    ("Queue", "Queue orders.created is {n} messages behind, consumer lag {ms} ms"),
    ("Payment", "Payment provider answered 429 for order {n}; backing off {small} s"),
    ("Auth", "Failed sign-in for user {n} from {ip}: wrong password (attempt {small})"),
]
EXCEPTIONS = [
    ("Http", "Request to {svc} timed out after {ms} ms", "System.TimeoutException: The operation has timed out."),
    (
        "Database",
        "Could not save order {n}",
        'Npgsql.PostgresException: 23505: duplicate key value violates unique constraint "orders_pkey"',
    ),
    (
        "Http",
        "Unhandled exception while rendering /account/orders/{n}",
        "System.NullReferenceException: Object reference not set to an instance of an object.",
    ),
    (
        "Queue",
        "Message {hex} could not be processed and was moved to the error queue",
        "System.Text.Json.JsonException: The JSON value could not be converted to System.Int32. Path: $.quantity",
    ),
    (
        "Http",
        "Connection to {svc} was reset",
        "System.IO.IOException: Unable to read data from the transport connection: Connection reset by peer.",
    ),
    (
        "Auth",
        "Access to the key store was refused",
        "System.UnauthorizedAccessException: Access to the path '/var/keys/signing.pem' is denied.",
    ),
]
DEADLOCK = (
    "Database",
    "Deadlock while updating stock for order {n}; the transaction was rolled back",
    (
        "Npgsql.PostgresException: 40P01: deadlock detected. Process {n2} waits for ShareLock on transaction {n}; "
        "blocked by process {small}."
    ),
)
NAMESPACES = ["Shop.Orders", "Shop.Billing", "Shop.Catalog", "Shop.Accounts", "Shop.Infrastructure.Http"]
CLASSES = ["OrderService", "OrderRepository", "InvoiceBuilder", "StockReservation", "PaymentGateway", "RetryPolicy"]
METHODS = ["SaveAsync", "ReserveAsync", "ExecuteAsync", "HandleAsync", "BuildAsync", "SendAsync", "MoveNext"]
FRAMEWORK_FRAMES = [
    "   at System.Runtime.CompilerServices.TaskAwaiter.ThrowForNonSuccess(Task task)",
    "   at System.Runtime.CompilerServices.TaskAwaiter.HandleNonSuccessAndDebuggerNotification(Task task)",
    "   at Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.TaskOfIActionResultExecutor.Execute()",
    "   at Microsoft.AspNetCore.Routing.EndpointMiddleware.<Invoke>g__AwaitRequestTask|6_0(Endpoint endpoint)",
    "   at Npgsql.NpgsqlConnector.ReadMessageLong(Boolean async, DataRowLoadingMode dataRowLoadingMode)",
    "   at System.Net.Http.HttpConnection.SendAsyncCore(HttpRequestMessage request, Boolean async)",
]


class LogFactory:
    """Logster messages: mostly short info lines, some warnings, ~17% errors with an exception and a stack trace.

    The word SEARCH_WORD appears only in the deadlock errors, which are SEARCH_WORD_SHARE of all messages.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = random.Random(seed + 1)
        self.traces = [self._stack_trace(rng) for _ in range(300)]  # a service's errors come from the same code paths
        self.apps, self.app_weights = list(APPLICATIONS), list(APPLICATIONS.values())
        self.severities, self.severity_weights = list(SEVERITIES), list(SEVERITIES.values())

    @staticmethod
    def _stack_trace(rng: random.Random) -> str:
        frames = []
        for _ in range(rng.randint(6, 22)):
            if rng.random() < 0.35:
                frames.append(rng.choice(FRAMEWORK_FRAMES))
            else:
                ns, cls, method = rng.choice(NAMESPACES), rng.choice(CLASSES), rng.choice(METHODS)
                frames.append(
                    f"   at {ns}.{cls}.{method}(Guid id, CancellationToken cancellationToken) in "
                    f"/src/{ns.replace('.', '/')}/{cls}.cs:line {rng.randint(20, 900)}"
                )
        return "\n".join(frames)

    def _fill(self, template: str) -> str:
        rng = self.rng
        return template.format(
            n=rng.randint(1000, 9_999_999),
            n2=rng.randint(1, 250_000),
            ms=rng.randint(3, 30_000),
            small=rng.randint(1, 5),
            hex=f"{rng.getrandbits(64):016x}",
            ip=f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            verb=rng.choice(["GET", "GET", "GET", "POST", "PUT"]),
            svc=rng.choice(["inventory-service", "payment-provider", "search-cluster", "smtp-relay"]),
        )

    def values(self) -> dict[str, Any]:
        """One message as the model's field values (message, exception, stack_trace, severity, ...)."""
        rng = self.rng
        exception = stack_trace = ""
        if rng.random() < SEARCH_WORD_SHARE:
            severity = rng.choice([4, 4, 4, 5])
            category, message, exception = (self._fill(part) for part in DEADLOCK)
            stack_trace = rng.choice(self.traces)
        else:
            severity = rng.choices(self.severities, self.severity_weights)[0]
            if severity >= 4:
                category, message, exception = rng.choice(EXCEPTIONS)
                message, exception = self._fill(message), self._fill(exception)
                stack_trace = rng.choice(self.traces)
            else:
                category, message = rng.choice(WARNING_MESSAGES if severity == 3 else QUIET_MESSAGES)
                message = self._fill(message)
        return {
            "message": message,
            "exception": exception,
            "stack_trace": stack_trace,
            "severity": severity,
            "category": category,
            "application": rng.choices(self.apps, self.app_weights)[0],
            "user": rng.choice(USERS),
        }

    def rows(self, owner_id: int, dates: Iterable[datetime]) -> Iterator[tuple[Any, ...]]:
        for date in dates:
            v = self.values()
            yield (
                owner_id,
                v["message"],
                v["exception"],
                v["stack_trace"],
                v["severity"],
                v["category"],
                v["application"],
                v["user"],
                date,
            )


def day_times(rng: random.Random, day: datetime, count: int) -> list[datetime]:
    """count moments spread over one day, in order (a day's rows arrive in roughly time order)."""
    return [day + timedelta(seconds=s) for s in sorted(rng.uniform(0, 86_400) for _ in range(count))]


# --- the database -------------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(server_url: str, name: str = BENCH_DB) -> str:
    """Drop and create the database name (BENCH_DB) on the server of server_url; returns its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return with_database(server_url, name)


def prepare_database(choice: str, name: str = BENCH_DB) -> tuple[str, str]:
    """The benchmark database's URL and a description: DATABASE_URL, else local PostgreSQL, else embedded (name)."""
    if choice == "auto" and os.getenv("DATABASE_URL"):
        url = os.environ["DATABASE_URL"]
        return url, f"DATABASE_URL ({urllib.parse.urlsplit(url).path.lstrip('/')})"
    if choice in ("auto", "local") and port_answers(*LOCAL_PG):
        user = os.getenv("PGUSER", "postgres")
        url = recreate_database(f"postgres://{user}@{LOCAL_PG[0]}:{LOCAL_PG[1]}/postgres", name)
        return url, f"local PostgreSQL {LOCAL_PG[0]}:{LOCAL_PG[1]}, database {name} (recreated)"
    if choice == "local":
        sys.exit(f"No PostgreSQL answers on {LOCAL_PG[0]}:{LOCAL_PG[1]}.")
    from logsvc.embedded import embedded_database_url

    log("No DATABASE_URL and no PostgreSQL on 127.0.0.1:5432: starting the embedded PostgreSQL (var/pgdata).")
    url = recreate_database(embedded_database_url(ROOT / "var"), name)  # this process holds the server until it exits
    return url, f"embedded PostgreSQL (var/pgdata), database {name} (recreated)"


def ensure_months(db: Database, tables: Iterable[str], first: datetime, last: datetime) -> None:
    """The months from first to last get their partitions in each table that is partitioned by month
    (logsvc.partitions), as a migrated database has them for its rows; nothing happens to a plain table."""
    for table in tables:
        if db.scalar("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [table]) != "p":
            continue
        month = datetime(first.year, first.month, 1, tzinfo=UTC)
        while month <= last:
            after = (month + timedelta(days=32)).replace(day=1)
            db.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table}_{month:%Y%m} PARTITION OF {table} "
                f"FOR VALUES FROM ('{month.isoformat()}') TO ('{after.isoformat()}')"
            )
            month = after


class Database:
    """Direct psycopg access for what the benchmark does around the app: truncate, COPY, VACUUM, counts."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)
        self.can_checkpoint = True

    def scalar(self, sql: str, params: Any = None) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        assert row is not None
        return row[0]

    def reset(self, *tables: str) -> None:
        """Empty the tables and CHECKPOINT, so no run pays for the previous run's dirty pages."""
        import psycopg

        self.conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
        if self.can_checkpoint:
            try:
                self.conn.execute("CHECKPOINT")
            except psycopg.Error as exc:  # not a superuser (nor pg_checkpoint) on a DATABASE_URL server
                log(f"CHECKPOINT refused ({exc}); runs go on without it")
                self.can_checkpoint = False

    def copy(self, conn: Any, table: str, columns: Iterable[str], rows: Iterable[tuple[Any, ...]]) -> int:
        quoted = ", ".join(f'"{c}"' for c in columns)
        n = 0
        with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        return n

    def vacuum_analyze(self, *tables: str) -> None:
        for table in tables:
            self.conn.execute(f"VACUUM ANALYZE {table}")


# --- processes ----------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process, 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip().startswith("postgres"):
                    pids.append(int(entry.name))
    return pids


def host_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole host since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS, steal / CLOCK_TICKS


class Gunicorn:
    """logsvc under gunicorn's sync workers on a free loopback port, settings bench.settings."""

    app = "logsvc.wsgi:application"
    worker_class = "sync"  # bench/faults.py runs logsvc.asgi with "uvicorn_worker.UvicornWorker"

    def __init__(self, workers: int, env: dict[str, str]) -> None:
        self.workers = workers
        self.env = env
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = OUT / "gunicorn.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        command = [
            str(VENV_BIN / "gunicorn"),
            self.app,
            f"--bind=127.0.0.1:{self.port}",
            f"--workers={self.workers}",
            f"--worker-class={self.worker_class}",
            "--log-level=warning",
            f"--chdir={ROOT}",
        ]
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(command, env=self.env, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=5) as response:
                    if response.status == 200 and len(children(self.proc.pid)) >= self.workers:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /healthz within 60 s; see {self.log_path}")

    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)] if self.proc else []

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # the master stops its workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session it was started in: only its own processes
            proc.wait()


RUNNING: list[subprocess.Popen[Any]] = []  # wrk, while it runs: Ctrl-C kills it


# --- wrk ----------------------------------------------------------------------------------------------

LUA_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\\"requests\\": %d, \\"duration_us\\": %d, \\"bytes\\": %d, \\"connect\\": %d, \\"read\\": %d, "
    .. "\\"write\\": %d, \\"status\\": %d, \\"timeout\\": %d, \\"mean_us\\": %f, \\"p50_us\\": %d, "
    .. "\\"p99_us\\": %d, \\"max_us\\": %d}\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def write_lua(name: str, method: str, headers: dict[str, str], body: str | None = None) -> Path:
    lines = [f'wrk.method = "{method}"']
    for header, value in headers.items():
        lines.append(f'wrk.headers["{header}"] = "{value}"')
    if body is not None:
        assert "]==]" not in body
        lines.append(f"wrk.body = [==[{body}]==]")
    path = OUT / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n" + LUA_DONE)
    return path


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    mean_ms: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    wrk_cpu: float  # CPU seconds wrk used


def run_wrk(url: str, script: Path, *, threads: int, connections: int, seconds: int) -> WrkResult:
    command = [str(WRK), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout=30s", "--latency"]
    proc = subprocess.Popen(
        [*command, "-s", str(script), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C reaches only this script, which stops wrk and gunicorn itself
    )
    RUNNING.append(proc)
    try:
        output = proc.stdout.read() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        RUNNING.remove(proc)
    match = re.search(r"^BENCH_RESULT (\{.*\})$", output, re.MULTILINE)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{output}")
    r = json.loads(match.group(1))
    seconds_run = r["duration_us"] / 1e6
    return WrkResult(
        requests=r["requests"],
        seconds=seconds_run,
        rps=r["requests"] / seconds_run,
        mean_ms=r["mean_us"] / 1000,
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        errors={k: r[k] for k in ("connect", "read", "write", "status", "timeout") if r[k]},
        wrk_cpu=usage.ru_utime + usage.ru_stime,
    )


# --- measurements -------------------------------------------------------------------------------------


@dataclass
class Run:
    """One measured run: a rate (req/s or rows/s), and what it cost."""

    config: str
    round: int
    rate: float
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class HttpCase:
    key: str
    title: str
    path: str
    script: Path
    unit: str = "req/s"
    rows_per_request: int = 1
    table: str = ""  # where the rows land (checked against wrk's count)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.runs: list[Run] = []
        self.env_lines: dict[str, str] = {}
        self.query_results: dict[tuple[str, int], list[tuple[WrkResult, dict[str, Any]]]] = {}
        self.search_share: dict[int, float] = {}
        self.gunicorn: Gunicorn | None = None

    # -- setup

    def setup(self) -> None:
        args = self.args
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "gunicorn.log").write_text("")
        if not WRK.exists():
            sys.exit("wrk is not installed at /usr/bin/wrk. Install it with: apt-get install wrk")
        url, where = prepare_database(args.db)
        self.db_url = url
        self.env_lines["database"] = where
        redis_ok = not args.no_redis and port_answers(*REDIS)
        self.rate_backend = f"Redis ({REDIS_URL})" if redis_ok else "PostgreSQL (logsvc_ratelimitcounter; no Redis)"
        self.server_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": url,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": REDIS_URL if redis_ok else "",
            "RATE_LIMIT_LOGSTER": UNTHROTTLED,
            "RATE_LIMIT_BYTELOG": UNTHROTTLED,
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        log(f"Database: {where}; migrating")
        for command in (["migrate", "--no-input", "-v0"], ["createcachetable"]):
            subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), *command], env=self.server_env, check=True, cwd=ROOT
            )
        # This process uses Django too (the bench user, the SQL the views run), as one more client.
        os.environ.update({k: v for k, v in self.server_env.items() if k != "ALLOWED_HOSTS"})
        os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
        import django

        django.setup()
        from events.models import Event, LogMessage
        from logsvc.models import SCOPES, ApiKey, User

        if User.objects.filter(username="bench").exists() or Event.objects.exists() or LogMessage.objects.exists():
            if not args.force:
                sys.exit(
                    "The database already holds events, log messages or a 'bench' user, and the benchmark empties "
                    "those tables. Point DATABASE_URL at a throwaway database, or pass --force."
                )
            User.objects.filter(username="bench").delete()
        user = User.objects.create_user(username="bench", email="bench@example.org")
        _, self.raw_key = ApiKey.create(user=user, name="bench", scopes=[name for name, _ in SCOPES])
        self.owner_id = user.pk
        self.server_env["BENCH_OWNER_ID"] = str(user.pk)
        self.events_table = Event._meta.db_table
        self.logs_table = LogMessage._meta.db_table
        self.db = Database(url)
        self.gunicorn = Gunicorn(args.workers, self.server_env)
        self.cases = self.write_scripts()
        self.env_lines["PostgreSQL"] = (
            f"{self.db.scalar('SHOW server_version')}, shared_buffers {self.db.scalar('SHOW shared_buffers')}, "
            f"synchronous_commit {self.db.scalar('SHOW synchronous_commit')}, "
            f"max_wal_size {self.db.scalar('SHOW max_wal_size')}"
        )

    def write_scripts(self) -> list[HttpCase]:
        now = datetime.now(UTC)
        events = EventFactory(seed=1)
        one_event = json.dumps(events.item(now))
        batch = json.dumps([events.item(now + timedelta(milliseconds=i)) for i in range(BATCH_SIZE)])
        self.batch_body_bytes = len(batch)
        logster = json.dumps(
            {
                "Message": "Request GET /api/orders/48213 completed with 200 in 112 ms for customer 20817",
                "Severity": 2,
                "Category": "Http",
                "Application": "checkout-api",
                "User": "alice@example.org",
            }
        )
        self.bodies = {"a": one_event, "b": logster, "c": one_event, "d": batch}
        json_type = {"Content-Type": "application/json"}
        bearer = {**json_type, "Authorization": f"Bearer {self.raw_key}"}
        return [
            HttpCase("a", "baseline POST /bench/insert, 1 row", "/bench/insert",
                     write_lua("post_baseline", "POST", json_type, one_event), table=self.events_table),
            HttpCase("b", "Logster POST /api/Log, 1 message", "/api/Log",
                     write_lua("post_logster", "POST", {**json_type, "ApiKey": self.raw_key}, logster),
                     table=self.logs_table),
            HttpCase("c", "Bytelog POST /api/v1/events, 1 event", "/api/v1/events",
                     write_lua("post_bytelog_one", "POST", bearer, one_event), table=self.events_table),
            HttpCase("d", f"Bytelog POST /api/v1/events, {BATCH_SIZE}-event batches", "/api/v1/events",
                     write_lua(f"post_bytelog_batch{BATCH_SIZE}", "POST", bearer, batch), unit="events/s",
                     rows_per_request=BATCH_SIZE, table=self.events_table),
        ]  # fmt: skip

    def preflight(self, case: HttpCase, expected: int) -> None:
        """One request by hand: the endpoint must answer as expected, or the numbers mean nothing."""
        assert self.gunicorn is not None  # setup() made it
        headers = {"Content-Type": "application/json"}
        for line in case.script.read_text().splitlines():
            if m := re.match(r'wrk\.headers\["(.+)"\] = "(.*)"', line):
                headers[m.group(1)] = m.group(2)
        request = urllib.request.Request(
            self.gunicorn.base + case.path, data=self.bodies[case.key].encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        if status != expected:
            raise RuntimeError(f"{case.path} answered {status}, not {expected}: {body[:500]!r}")

    # -- ingestion

    def measured_wrk(
        self, url: str, script: Path, seconds: int, connections: int, count: Callable[[], int] | None = None
    ) -> tuple[WrkResult, dict[str, Any]]:
        """One wrk run after a warm-up, with the CPU that gunicorn, PostgreSQL, wrk and the rest of the host used
        (and how much count() grew over the measured run: the rows stored)."""
        assert self.gunicorn is not None  # setup() made it
        wrk = {"threads": min(self.args.threads, connections), "connections": connections}
        run_wrk(url, script, seconds=self.args.warmup, **wrk)
        rows_before = count() if count else 0
        server_pids, pg_pids = self.gunicorn.pids(), self.postgres_pids()
        before, host0 = {pid: process_cpu(pid) for pid in server_pids + pg_pids}, host_cpu()
        result = run_wrk(url, script, seconds=seconds, **wrk)
        after, host1 = {pid: process_cpu(pid) for pid in before}, host_cpu()
        # A process gone by the second reading (a backend whose connection reached CONN_MAX_AGE, a worker that
        # gunicorn replaced) reads 0: its run is unknown, so it counts 0, not minus everything it had spent before.
        gone = [pid for pid in before if after[pid] == 0 < before[pid]]

        def spent(pids: list[int]) -> float:
            return sum(max(0.0, after[pid] - before[pid]) for pid in pids)

        rows_stored = count() - rows_before if count else 0
        n = max(result.requests, 1)
        busy = max(host1[0] - host0[0], 1e-9)
        gunicorn, postgres = spent(server_pids), spent(pg_pids)
        cpu = {
            "gunicorn_ms_per_req": 1000 * gunicorn / n,
            "postgres_ms_per_req": 1000 * postgres / n,
            "host_ms_per_req": 1000 * busy / n,
            "host_busy": busy / (result.seconds * (os.cpu_count() or 1)),
            "steal": (host1[1] - host0[1]) / (result.seconds * (os.cpu_count() or 1)),
            "wrk_cpu_share": result.wrk_cpu / busy,
            # kernel work not charged to a process, and everything else running on the host (other tenants)
            "other_cpu_share": max(0.0, busy - gunicorn - postgres - result.wrk_cpu) / busy,
        }
        if count:
            cpu["rows_stored"] = rows_stored
        if gone:
            cpu["processes_gone"] = len(gone)
            log(f"  !! {len(gone)} measured process(es) ended during the run: their CPU is missing from it")
        if result.errors:
            log(f"  !! wrk counted errors {result.errors} on {url}")
        return result, cpu

    def postgres_pids(self) -> list[int]:
        """The PostgreSQL processes whose CPU counts as the server's: all of them here."""
        return postgres_pids()

    @staticmethod
    def cpu_note(cpu: dict[str, Any]) -> str:
        return (
            f"server CPU {cpu['gunicorn_ms_per_req']:.2f}+{cpu['postgres_ms_per_req']:.2f} ms/req (gunicorn+PG), "
            f"wrk {cpu['wrk_cpu_share']:.0%} and other {cpu['other_cpu_share']:.0%} of busy CPU"
        )

    def measure_http(self, case: HttpCase, round_no: int) -> Run:
        assert self.gunicorn is not None  # setup() made it
        db = self.db
        db.reset(self.events_table, self.logs_table)
        self.gunicorn.start()
        try:
            self.preflight(case, {"b": 200}.get(case.key, 201))
            url = self.gunicorn.base + case.path
            result, cpu = self.measured_wrk(
                url,
                case.script,
                self.args.duration,
                self.args.connections,
                count=lambda: db.scalar(f"SELECT count(*) FROM {case.table}"),
            )
        finally:
            self.gunicorn.stop()
        detail = {
            "rps": result.rps,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "errors": result.errors,
            "rows_by_wrk": result.requests * case.rows_per_request,
            **cpu,
        }
        if detail["rows_stored"] < detail["rows_by_wrk"]:
            log(f"  !! ({case.key}) fewer rows stored than wrk counted: the server dropped or refused some")
        run = Run(case.key, round_no, result.rps * case.rows_per_request, case.unit, detail)
        log(
            f"  ({case.key}) round {round_no}: {run.rate:,.0f} {case.unit}, p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms, rows stored {detail['rows_stored']:,} (wrk counted "
            f"{detail['rows_by_wrk']:,}), {self.cpu_note(cpu)}"
        )
        return run

    def measure_copy(self, round_no: int, rows: list[tuple[Any, ...]], big_rows: list[tuple[Any, ...]]) -> list[Run]:
        """(e) the database ceiling: the same rows (d) sends, by COPY from this process, 500 per COPY+commit."""
        import psycopg

        db = self.db
        runs = []
        with psycopg.connect(self.db_url) as conn:
            db.reset(self.events_table)
            start = time.perf_counter()
            for i in range(0, len(rows), BATCH_SIZE):
                db.copy(conn, self.events_table, EVENT_COLUMNS, rows[i : i + BATCH_SIZE])
                conn.commit()
            seconds = time.perf_counter() - start
            runs.append(Run("e", round_no, len(rows) / seconds, "rows/s", {"rows": len(rows), "seconds": seconds}))
            db.reset(self.events_table)
            start = time.perf_counter()
            db.copy(conn, self.events_table, EVENT_COLUMNS, big_rows)
            conn.commit()
            seconds = time.perf_counter() - start
            runs.append(Run("e_big", round_no, len(big_rows) / seconds, "rows/s", {"rows": len(big_rows)}))
        log(
            f"  (e) round {round_no}: COPY {BATCH_SIZE} per commit {runs[0].rate:,.0f} rows/s; "
            f"one COPY of {human(len(big_rows))} rows {runs[1].rate:,.0f} rows/s"
        )
        return runs

    def ingest_phase(self) -> None:
        args = self.args
        cases = self.cases
        log(f"Building {human(args.copy_rows)} + {human(args.big_copy_rows)} event rows for COPY (not timed)")
        factory = EventFactory(seed=2)
        now = datetime.now(UTC)
        rows = list(factory.rows(self.owner_id, (now for _ in range(args.copy_rows)), now))
        big_rows = list(factory.rows(self.owner_id, (now for _ in range(args.big_copy_rows)), now))
        order = [*cases, None]  # None: the COPY runs
        for round_no in range(1, args.rounds + 1):
            rotated = order[round_no - 1 :] + order[: round_no - 1]  # no config always goes first
            log(f"Round {round_no}/{args.rounds}: " + ", ".join(c.key if c else "e" for c in rotated))
            for case in rotated:
                if case is None:
                    self.runs.extend(self.measure_copy(round_no, rows, big_rows))
                else:
                    self.runs.append(self.measure_http(case, round_no))
        self.db.reset(self.events_table, self.logs_table)

    # -- queries

    def load(self, sizes: tuple[int, int]) -> Iterator[int]:
        """Fill both tables to each size in turn (10,000 rows a day; the first size's day in the middle)."""
        import psycopg
        from tqdm import tqdm

        events, logs = EventFactory(seed=3), LogFactory(seed=4)
        rng = random.Random(5)
        days_total = max(1, sizes[-1] // ROWS_PER_DAY)
        first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_total)
        self.query_day = first + timedelta(days=days_total // 2)
        ensure_months(self.db, (self.events_table, self.logs_table), first, datetime.now(UTC))
        other_days = [first + timedelta(days=d) for d in range(days_total) if d != days_total // 2]
        loaded = 0
        with psycopg.connect(self.db_url) as conn:
            for size in sizes:
                chunks = [self.query_day] if loaded == 0 else []
                while (loaded + len(chunks) * ROWS_PER_DAY) < size and other_days:
                    chunks.append(other_days.pop(0))
                n = min(size - loaded, len(chunks) * ROWS_PER_DAY)
                with tqdm(total=2 * n, unit="rows", desc=f"loading to {human(size)}", unit_scale=True) as bar:
                    for day in chunks:
                        count = min(ROWS_PER_DAY, size - loaded)
                        times = day_times(rng, day, count)
                        created = times[-1]
                        self.db.copy(conn, self.events_table, EVENT_COLUMNS, events.rows(self.owner_id, times, created))
                        bar.update(count)
                        self.db.copy(conn, self.logs_table, LOG_COLUMNS, logs.rows(self.owner_id, times))
                        conn.commit()
                        bar.update(count)
                        loaded += count
                log(f"VACUUM ANALYZE at {human(size)} rows per table")
                self.db.vacuum_analyze(self.events_table, self.logs_table)
                total = self.db.scalar(f"SELECT count(*) FROM {self.logs_table}")
                matching = self.db.scalar(
                    f"SELECT count(*) FROM {self.logs_table} WHERE search @@ websearch_to_tsquery('english', %s)",
                    [SEARCH_WORD],
                )
                self.search_share[size] = matching / total
                yield size

    def query_phase(self) -> None:
        assert self.gunicorn is not None  # setup() made it
        args = self.args
        sizes = (args.small_rows, args.large_rows)
        for size in self.load(sizes):
            day = self.query_day.date().isoformat()
            api = {"ApiKey": self.raw_key}
            self.query_urls = {
                "search": f"/api/Log?q={SEARCH_WORD}&limit=50",
                "date": f"/api/v1/events?start={day}&end={day}&limit=100",
            }
            scripts = {key: write_lua(f"get_{key}", "GET", api) for key in self.query_urls}
            if size == sizes[-1]:
                self.explain(size)
            self.gunicorn.start()
            try:
                self.check_queries()
                for round_no in range(1, args.rounds + 1):
                    for key, path in self.query_urls.items():
                        url = self.gunicorn.base + path
                        result, cpu = self.measured_wrk(url, scripts[key], args.query_duration, args.query_connections)
                        self.query_results.setdefault((key, size), []).append((result, cpu))
                        log(
                            f"  {key} @ {human(size)} round {round_no}: mean {result.mean_ms:.2f} ms, "
                            f"p99 {result.p99_ms:.1f} ms, {result.rps:,.0f} req/s, {self.cpu_note(cpu)}"
                        )
            finally:
                self.gunicorn.stop()

    def check_queries(self) -> None:
        assert self.gunicorn is not None  # setup() made it
        for key, path in self.query_urls.items():
            request = urllib.request.Request(self.gunicorn.base + path, headers={"ApiKey": self.raw_key})
            with urllib.request.urlopen(request, timeout=60) as response:
                body = json.loads(response.read())
            got = len(body["Messages"]) if key == "search" else len(body["events"])
            want = 50 if key == "search" else 100
            if got != want:
                raise RuntimeError(f"{path} returned {got} items, not {want}: the data or the query is wrong")

    def explain(self, size: int) -> None:
        """EXPLAIN (ANALYZE, BUFFERS) of the SQL the two views really run, taken from the views themselves."""
        from django.db import connection, connections
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client()
        lines = [f"EXPLAIN (ANALYZE, BUFFERS) at {human(size)} rows per table, run in-process through the views.\n"]
        for path in self.query_urls.values():
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, headers={"ApiKey": self.raw_key})
            assert response.status_code == 200, response.content[:300]
            lines.append(f"=== GET {path}: {len(captured.captured_queries)} queries")
            for query in captured.captured_queries:
                lines.append(f"-- {query['time']} s: {query['sql']}")
            for query in captured.captured_queries:
                sql = query["sql"]
                if self.events_table not in sql and self.logs_table not in sql:
                    continue
                with connection.cursor() as cursor:
                    for _ in range(2):  # the second run is the warm one, as under wrk
                        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                        plan = [row[0] for row in cursor.fetchall()]
                lines.append(f"\n{sql}\n" + "\n".join(plan) + "\n")
        # The writes' SQL too, for the record of what a POST costs.
        for label, path, body, headers in (
            ("Logster POST", "/api/Log", self.bodies["b"], {"ApiKey": self.raw_key}),
            ("Bytelog POST (1 event)", "/api/v1/events", self.bodies["c"], {"Authorization": f"Bearer {self.raw_key}"}),
        ):
            with CaptureQueriesContext(connection) as captured:
                response = client.post(path, body, content_type="application/json", headers=headers)
            lines.append(f"=== {label} {path} -> {response.status_code}: {len(captured.captured_queries)} queries")
            lines.extend(f"-- {q['sql'][:300]}" for q in captured.captured_queries)
        (OUT / f"explain-{human(size)}.txt").write_text("\n".join(lines) + "\n")
        connections.close_all()
        log(f"EXPLAIN plans written to {OUT / f'explain-{human(size)}.txt'}")

    # -- report

    def median(self, config: str) -> tuple[float, float, float] | None:
        rates = [r.rate for r in self.runs if r.config == config]
        return (statistics.median(rates), min(rates), max(rates)) if rates else None

    def paired(self, a: str, b: str) -> float | None:
        """The median over rounds of a/b, each from runs of the same round (robust to the host's drift)."""
        by_round = {(r.config, r.round): r.rate for r in self.runs}
        ratios = [by_round[(a, n)] / by_round[(b, n)] for n in range(1, self.args.rounds + 1) if (a, n) in by_round]
        return statistics.median(ratios) if ratios else None

    def server_cpu(self, details: Iterable[dict[str, Any]], per: float = 1) -> str:
        """Median gunicorn+PostgreSQL CPU ms per request (per `per` rows): the noise-resistant cost."""
        values = [(d["gunicorn_ms_per_req"] + d["postgres_ms_per_req"]) / per for d in details if d]
        return f"{statistics.median(values):.2f}" if values else ""

    def report(self) -> str:
        args = self.args
        rows: list[tuple[str, ...]] = []
        labels = {"e_big": "e+"}

        def rate_row(key: str, title: str, unit: str, base: str | None, target: float | None, per: float = 1) -> None:
            m = self.median(key)
            if m is None:
                return
            cpu = self.server_cpu((r.detail for r in self.runs if r.config == key and "host_busy" in r.detail), per)
            row = [f"({labels.get(key, key)}) {title}", f"{m[0]:,.0f} {unit} ({m[1]:,.0f}-{m[2]:,.0f})", cpu]
            if base is None:
                rows.append((*row, "", "", "", ""))
                return
            bm = self.median(base)
            ratio = self.paired(key, base)
            if bm is None or ratio is None:
                rows.append((*row, "", "", "", ""))
                return
            assert target is not None  # given with a base
            verdict = "PASS" if ratio >= target else "MISS"
            rows.append((*row, f"({base}) {bm[0]:,.0f}", f"{ratio:.2f}", f">= {target}", verdict))

        rate_row("a", "baseline: plain Django view, json.loads + ORM create", "req/s", None, None)
        rate_row("b", "Logster POST /api/Log, 1 message", "req/s", "a", 0.8)
        rate_row("c", "Bytelog POST /api/v1/events, 1 event", "req/s", "a", 0.8)
        rate_row("d", f"Bytelog POST, {BATCH_SIZE}-event batches", "events/s", "e", 0.5, per=BATCH_SIZE / 1000)
        rate_row("e", f"DB ceiling: COPY {BATCH_SIZE} rows per COPY+commit, 1 conn", "rows/s", None, None)
        rate_row("e_big", f"info: one COPY of {human(args.big_copy_rows)} rows", "rows/s", None, None)
        small, large = args.small_rows, args.large_rows
        for key, title in (
            ("search", f"Logster GET search q={SEARCH_WORD}&limit=50"),
            ("date", "Bytelog GET one day, limit=100 (+count)"),
        ):
            if (key, small) not in self.query_results or (key, large) not in self.query_results:
                continue
            runs = {size: self.query_results[(key, size)] for size in (small, large)}
            mean = {size: statistics.median(r.mean_ms for r, _ in runs[size]) for size in runs}
            rps = {size: statistics.median(r.rps for r, _ in runs[size]) for size in runs}
            cpu = {size: self.server_cpu(c for _, c in runs[size]) for size in runs}
            if key == "search":
                title += f" ({self.search_share[small]:.1%}/{self.search_share[large]:.1%} match)"
            ratio = mean[large] / mean[small]
            rows.append(
                (f"(f) {title} @{human(small)}", f"{mean[small]:.2f} ms/req ({rps[small]:,.0f} req/s)", cpu[small])
                + ("",) * 4
            )
            rows.append(
                (
                    f"(f) {title} @{human(large)}",
                    f"{mean[large]:.2f} ms/req ({rps[large]:,.0f} req/s)",
                    cpu[large],
                    f"@{human(small)} {mean[small]:.2f} ms",
                    f"{ratio:.2f}",
                    "<= 1.5",
                    "PASS" if ratio <= 1.5 else "MISS",
                )
            )
        header = ("measurement", "value: median (min-max)", "srv CPU ms", "baseline", "ratio", "target", "result")

        cpu_model = next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")),
            platform.processor(),
        )  # fmt: skip
        wrk_version = subprocess.run([str(WRK), "-v"], check=False, capture_output=True, text=True).stdout.split(" [")[
            0
        ]
        import django

        lines = [
            (
                f"logsvc ingest benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
                f"{' (--quick: smoke run, not for decisions)' if args.quick else ''}"
            ),
            *table_lines(header, rows),
            "",
            (
                "ratio: (b),(c) vs (a) and (d) vs (e) are medians of per-round paired ratios (runs taken side by "
                f"side); (f) is the {human(large)}/{human(small)} ratio of median mean latencies."
            ),
            (
                "srv CPU ms: median CPU of gunicorn + PostgreSQL processes per request (per 1,000 events for (d)), "
                "from /proc: steadier than req/s on a shared host"
            ),
            (
                f"environment: {os.cpu_count()} CPUs ({cpu_model}), {platform.system()} {platform.release()}, "
                f"Python {platform.python_version()}, Django {django.get_version()}"
            ),
            f"  database: {self.env_lines['database']}; PostgreSQL {self.env_lines['PostgreSQL']}",
            f"  rate limits: {self.rate_backend}, RATE_LIMIT_LOGSTER/BYTELOG={UNTHROTTLED}",
            (
                f"  server: gunicorn, {args.workers} sync workers (no keep-alive: a TCP connection per request), "
                "DEBUG=false, settings bench.settings (logsvc.settings + /bench/insert), restarted for every run"
            ),
            (
                f"  load: {wrk_version}, ingest -t{args.threads} -c{args.connections} -d{args.duration}s, "
                f"queries -t{min(args.threads, args.query_connections)} -c{args.query_connections} "
                f"-d{args.query_duration}s; {args.warmup} s warm-up per run; {args.rounds} interleaved rounds; "
                "wrk, gunicorn and PostgreSQL share the CPUs"
            ),
            (
                f"  bodies: 1 event {len(self.bodies['a'])} B, Logster message {len(self.bodies['b'])} B, "
                f"{BATCH_SIZE}-event batch {self.batch_body_bytes:,} B; COPY (e): {human(args.copy_rows)} rows "
                "a round from one connection, rows built before timing"
            ),
            (
                "  ingest runs start from empty tables (TRUNCATE + CHECKPOINT); query data: "
                f"{ROWS_PER_DAY:,} rows a day per table, the queried day in the middle"
            ),
        ]
        return "\n".join(lines)

    def write_details(self) -> None:
        lines = ["Per-run details (rates; CPU per request from /proc; host_busy = busy share of all CPUs)"]
        for run in sorted(self.runs, key=lambda r: (r.config, r.round)):
            detail = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in run.detail.items())
            lines.append(f"{run.config} round {run.round}: {run.rate:,.0f} {run.unit}; {detail}")
        for (key, size), results in sorted(self.query_results.items()):
            for i, (r, cpu) in enumerate(results, 1):
                lines.append(
                    f"{key}@{human(size)} round {i}: mean {r.mean_ms:.2f} ms, p50 {r.p50_ms:.2f} ms, "
                    f"p99 {r.p99_ms:.2f} ms, {r.rps:,.1f} req/s, errors {r.errors}; "
                    + ", ".join(f"{k}={v:.3g}" for k, v in cpu.items())
                )
        (OUT / "ingest-details.txt").write_text("\n".join(lines) + "\n")

    def close(self) -> None:
        for proc in RUNNING:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if self.gunicorn:
            self.gunicorn.stop()


def first_value(cursor: Any) -> Any:
    """The first column of a query's one row (SHOW, a count: there is always one)."""
    row = cursor.fetchone()
    assert row is not None
    return row[0]


def table_lines(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """The header, a rule and the rows, in columns as wide as their widest cell."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

    return [fmt(header), fmt(tuple("-" * w for w in widths)), *(fmt(r) for r in rows)]


def apply_quick(p: argparse.ArgumentParser, args: argparse.Namespace, values: dict[str, Any]) -> None:
    """Under --quick, these values for the options the command line left at their defaults."""
    if args.quick:
        for name, value in values.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The options every benchmark here shares: rounds, warm-up, wrk threads and gunicorn workers."""
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run (default 2)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3, for 2 cores)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(p)
    p.add_argument("--quick", action="store_true", help="a ~3-minute smoke run (short runs, 100k rows at most)")
    p.add_argument("--duration", type=int, default=10, help="seconds per ingest run (default 10)")
    p.add_argument("--query-duration", type=int, default=8, help="seconds per query run (default 8)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections for ingestion (default 32)")
    p.add_argument("--query-connections", type=int, default=4, help="wrk connections for queries (default 4)")
    p.add_argument("--copy-rows", type=int, default=200_000, help="rows per (e) run, 500 per COPY (default 200k)")
    p.add_argument("--big-copy-rows", type=int, default=1_000_000, help="rows of the one big COPY (default 1M)")
    p.add_argument("--small-rows", type=int, default=10_000, help="rows per table, first query size (default 10k)")
    p.add_argument("--large-rows", type=int, default=1_000_000, help="rows per table, second size (default 1M)")
    p.add_argument("--db", choices=["auto", "local", "embedded"], default="auto", help="where the database runs")
    p.add_argument("--no-redis", action="store_true", help="count rate limits in PostgreSQL even if Redis answers")
    p.add_argument("--skip-ingest", action="store_true", help="only the query measurements (f)")
    p.add_argument("--skip-queries", action="store_true", help="only the ingestion measurements (a)-(e)")
    p.add_argument("--force", action="store_true", help="use a DATABASE_URL database that already has data")
    args = p.parse_args(argv)
    quick = {"duration": 3, "query_duration": 3, "warmup": 1, "copy_rows": 50_000, "big_copy_rows": 200_000}
    apply_quick(p, args, quick | {"large_rows": 100_000})
    if args.rounds < 1 or args.large_rows <= args.small_rows or args.copy_rows < BATCH_SIZE:
        p.error("need --rounds >= 1, --large-rows > --small-rows and --copy-rows >= 500")
    return args


def run_bench(bench: Any, measure: Any, name: str) -> int:
    """Set up, measure, print and write the table, and always stop the servers: Ctrl-C and SIGTERM included."""

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: `cmd &` starts with it ignored
        signal.signal(signum, stop)
    started = time.monotonic()
    try:
        bench.setup()
        measure()
        table = bench.report()
        bench.write_details()
    except KeyboardInterrupt:
        log("Interrupted: stopping gunicorn and wrk")
        return 130
    finally:
        bench.close()
    (OUT / f"{name}.txt").write_text(table + "\n")
    print()
    print(table)
    print(f"\n(written to {OUT / f'{name}.txt'}; per-run details in {OUT / f'{name}-details.txt'}; "
          f"took {(time.monotonic() - started) / 60:.1f} min)")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)

    def measure() -> None:
        if not args.skip_ingest:
            bench.ingest_phase()
        if not args.skip_queries:
            bench.query_phase()

    return run_bench(bench, measure, "ingest")


if __name__ == "__main__":
    sys.exit(main())
