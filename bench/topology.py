#!/usr/bin/env python
"""Scale-out on real engines (issue 15): three app hosts behind HAProxy, pgbouncer, a streaming replica, Redis.

Builds this topology from real parts on this machine, as root, and tears it down afterwards:

- three app hosts, each a Linux network namespace (ls-app1..3) with its own address (10.77.0.11..13) on a bridge
  (ls-br0, 10.77.0.1 in the root namespace); each runs gunicorn (logsvc.asgi, uvicorn workers) and the worker
  (`manage.py db_worker`), with its own EXPORT_DIR and MEDIA_ROOT, so nothing is shared through a local disk;
- HAProxy (Debian) on 127.0.0.1 in front of them, checking each host's /healthz every second;
- pgbouncer (Debian) in transaction mode between the web processes and PostgreSQL; the workers and migrations
  connect directly (they hold session state: LISTEN, advisory locks, long transactions);
- a PostgreSQL primary and a streaming replica (a second cluster made with pg_basebackup), Debian's binaries;
- one Redis (the cache) for all hosts.

Then it measures:
1. CPU per request with 1, 2 and 3 hosts in HAProxy (wrk through the load balancer, the same load each time):
   all server processes' CPU (app hosts, PostgreSQL, pgbouncer, HAProxy) over the requests answered. This
   machine has 2 cores, so throughput cannot grow with hosts; the cost per request must not grow either.
2. Writes and reads through the load balancer while, in turn: one host's processes are SIGKILLed and brought
   back, the replica restarts, pgbouncer stops for a few seconds, Redis stops for a few seconds. Clients retry like an SDK, with the same
   Idempotency-Key (bench/faults.py's clients). Prints requests, errors by status, acknowledged items lost and
   duplicated (both must be 0), PostgreSQL connections in use against web processes, and the replica's lag.
3. A rate limit spread over the three hosts gives exactly the configured number of 2xx; an export made
   through one host downloads through another; a write through one host is read back at once through another
   (read-your-writes violations must be 0).

Not a test (it needs root, and minutes). `.venv/bin/python bench/topology.py --help`; writes
bench/out/topology.txt.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/topology.py` puts bench/ first on the path, not the project

from bench.faults import FAMILIES, Client, FaultRun, families  # after the path fix above
from bench.ingest import (
    OUT,
    UNTHROTTLED,
    VENV_BIN,
    WRK,
    children,
    log,
    process_cpu,
    run_bench,
    run_wrk,
    table_lines,
    write_lua,
)

BRIDGE, NET = "ls-br0", "10.77.0"
GATEWAY = f"{NET}.1"  # the root namespace: PostgreSQL, pgbouncer, Redis, HAProxy's back side
PRIMARY_PORT, REPLICA_PORT, BOUNCER_PORT, REDIS_PORT, APP_PORT = 5441, 5442, 6441, 6391, 8000
LB_PORT, LB_ADMIN = 8441, "/tmp/ls-haproxy.sock"
DISK = "/tmp/logsvc-topology-disk"  # each host's own disk: a tmpfs here in its own mount namespace
DATABASE = "logsvc_topology"
RATE = "60/120"  # GoatCounter's /api/v0 limit, left on for the burst check


def sh(*command: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=check, text=True, capture_output=True, **kwargs)


def pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        sys.exit("Debian's PostgreSQL server binaries are needed (/usr/lib/postgresql/*/bin)")
    return versions[-1].parent


@dataclass
class Host:
    """One app host: a network namespace with gunicorn and a worker."""

    number: int
    root: Path
    web: subprocess.Popen[bytes] | None = None  # the host's shell: gunicorn and the worker are its children
    workers: int = 0  # gunicorn's

    @property
    def name(self) -> str:
        return f"ls-app{self.number}"

    @property
    def address(self) -> str:
        return f"{NET}.{10 + self.number}"

    def web_processes(self) -> int:
        """gunicorn's workers on this host (its processes but the master)."""
        gunicorns = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                gunicorns += b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
        return max(0, gunicorns - 1)

    def pids(self) -> list[int]:
        """Every process of this host: its shell, gunicorn with its workers, the worker."""
        found = []
        for proc in (self.web,):
            if proc is not None and proc.poll() is None:
                stack = [proc.pid]
                while stack:
                    pid = stack.pop()
                    found.append(pid)
                    stack += children(pid)
        return found


class Cluster:
    """A PostgreSQL cluster of our own, run as the postgres system user from Debian's binaries."""

    def __init__(self, root: Path, port: int, name: str) -> None:
        self.bin, self.root, self.port, self.name = pg_bin(), root, port, name
        self.data = root / name
        self.log_path = root / f"{name}.log"
        self.user = pwd.getpwnam("postgres")

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [str(self.bin / program), *args], check=True, user="postgres", cwd=self.root, timeout=timeout,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=utf8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1,{GATEWAY}'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nmax_connections = 200\n"
                "shared_buffers = 256MB\nlog_min_duration_statement = 2000\n"
            )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {NET}.0/24 trust\nhost replication all {NET}.0/24 trust\n")

    def clone(self, primary: Cluster) -> None:
        """A streaming replica of primary: pg_basebackup -R, then its own port."""
        self._run(
            "pg_basebackup", "-h", GATEWAY, "-p", str(primary.port), "-U", "postgres", "-D", str(self.data),
            "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.port}\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop", timeout=45)

    def pids(self) -> list[int]:
        try:
            master = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [master, *children(master)]

    def url(self, host: str = GATEWAY) -> str:
        return f"postgres://postgres@{host}:{self.port}/{DATABASE}"


class Topology(FaultRun):
    """bench/faults.py's clients and its lost/duplicated accounting, sent through HAProxy to three hosts."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.hosts: list[Host] = []
        self.daemons: dict[str, subprocess.Popen[bytes]] = {}
        self.samples: list[tuple[float, int, int, float | None]] = []  # (time, client backends, web processes, lag)
        self.cpu_rows: list[tuple[str, ...]] = []
        self.checks: list[tuple[str, bool, str]] = []
        self.statuses: Counter[str] = Counter()

    # -- the topology

    def setup(self) -> None:
        if os.geteuid() != 0:
            sys.exit("bench/topology.py builds network namespaces: run it as root")
        for program in ("haproxy", "pgbouncer", "redis-server", "ip"):
            if not shutil.which(program) and not Path(f"/usr/sbin/{program}").exists():
                sys.exit(f"{program} is needed: apt-get install haproxy pgbouncer redis-server iproute2")
        OUT.mkdir(parents=True, exist_ok=True)
        self.work = self.tmp = Path(tempfile.mkdtemp(prefix="logsvc-topology-"))
        os.chmod(self.work, 0o755)
        self.network()
        self.databases()
        self.gunicorn = _Balancer()  # type: ignore[assignment] # Client.send() reads only its .port
        self.server_env = self.environment()
        log("Migrating (directly to the primary, as migrations must)")
        direct = {**self.server_env, "DATABASE_URL": self.primary.url()}
        for command in (["migrate", "--no-input", "-v0"], ["createcachetable"]):
            subprocess.run([sys.executable, str(ROOT / "manage.py"), *command], env=direct, check=True, cwd=ROOT)
        self.keys = self.create_keys()
        self.families = families(self.keys, self.site.code)
        for number in (1, 2, 3):
            self.hosts.append(Host(number, self.work / f"app{number}"))
        for host in self.hosts:
            self.start_host(host)
        self.start_balancer(self.hosts)
        self.settings = f"PostgreSQL {self.pg_version()}, pgbouncer transaction mode, HAProxy {self.haproxy_version()}"

    def network(self) -> None:
        log(f"Network: bridge {BRIDGE} {GATEWAY}/24 and three namespaces")
        self.teardown_network()
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for number in (1, 2, 3):
            ns, veth = f"ls-app{number}", f"ls-veth{number}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", BRIDGE)
            sh("ip", "link", "set", veth, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{NET}.{10 + number}/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    @staticmethod
    def teardown_network() -> None:
        for number in (1, 2, 3):
            sh("ip", "netns", "del", f"ls-app{number}", check=False)
            sh("ip", "link", "del", f"ls-veth{number}", check=False)
        sh("ip", "link", "del", BRIDGE, check=False)

    def databases(self) -> None:
        pg_root = self.work / "pg"
        pg_root.mkdir()
        shutil.chown(pg_root, "postgres", "postgres")
        self.primary = Cluster(pg_root, PRIMARY_PORT, "primary")
        log(f"PostgreSQL primary: initdb, {GATEWAY}:{PRIMARY_PORT}")
        self.primary.init()
        self.primary.start()
        sh(str(self.primary.bin / "createdb"), "-h", GATEWAY, "-p", str(PRIMARY_PORT), "-U", "postgres", DATABASE)
        log(f"PostgreSQL replica: pg_basebackup -R of the primary, {GATEWAY}:{REPLICA_PORT}")
        self.replica = Cluster(pg_root, REPLICA_PORT, "replica")
        self.replica.clone(self.primary)
        self.replica.start()
        log(f"pgbouncer in transaction mode on {GATEWAY}:{BOUNCER_PORT}; Redis on {GATEWAY}:{REDIS_PORT}")
        bouncer = self.work / "pgbouncer"
        bouncer.mkdir()
        (bouncer / "pgbouncer.ini").write_text(
            f"[databases]\n{DATABASE} = host={GATEWAY} port={PRIMARY_PORT} dbname={DATABASE}\n"
            f"[pgbouncer]\nlisten_addr = {GATEWAY}\nlisten_port = {BOUNCER_PORT}\nauth_type = trust\n"
            f"auth_file = {bouncer / 'users.txt'}\npool_mode = transaction\ndefault_pool_size = 10\n"
            "max_client_conn = 1000\nserver_reset_query =\nignore_startup_parameters = extra_float_digits,options\n"
            f"unix_socket_dir =\nlogfile = {bouncer / 'pgbouncer.log'}\nadmin_users = postgres\n"
        )
        (bouncer / "users.txt").write_text('"postgres" ""\n')
        shutil.chown(bouncer, "postgres", "postgres")
        self.bouncer_config = bouncer / "pgbouncer.ini"
        self.start_bouncer()
        self.start_redis()

    def start_redis(self) -> None:
        self.daemons["redis"] = subprocess.Popen(
            ["redis-server", "--bind", GATEWAY, "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.wait_port(GATEWAY, REDIS_PORT, "Redis")

    def start_bouncer(self) -> None:
        self.daemons["pgbouncer"] = subprocess.Popen(
            ["pgbouncer", str(self.bouncer_config)], user="postgres",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.wait_port(GATEWAY, BOUNCER_PORT, "pgbouncer")

    def environment(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "RATE_LIMIT_", "GUNICORN"))},
            "DJANGO_SETTINGS_MODULE": "logsvc.settings",
            "DATABASE_URL": f"postgres://postgres@{GATEWAY}:{BOUNCER_PORT}/{DATABASE}",
            "DATABASE_REPLICA_URL": self.replica.url(),
            "DATABASE_PREPARED_STATEMENTS": "false",  # pgbouncer 1.18 in transaction mode cannot carry them
            "DISABLE_SERVER_SIDE_CURSORS": "true",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "*",
            "REDIS_URL": f"redis://{GATEWAY}:{REDIS_PORT}/0",
            "RATE_LIMIT_LOGSTER": UNTHROTTLED,
            "RATE_LIMIT_BYTELOG": UNTHROTTLED,
            "RATE_LIMIT_GOATCOUNTER": RATE,
            "RATE_LIMIT_GOATCOUNTER_COUNT": UNTHROTTLED,
            "RATE_LIMIT_GOATCOUNTER_PIXEL": UNTHROTTLED,
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }

    def start_host(self, host: Host, workers: int = 0) -> None:
        """gunicorn (workers, else --workers) and the worker in the host's namespace, with a disk of its own: a
        tmpfs mounted at DISK in the host's own mount namespace, so the same path holds other files on every
        host, as on real machines."""
        host.workers = workers or self.args.workers
        env = {**self.server_env, "EXPORT_DIR": f"{DISK}/exports", "MEDIA_ROOT": f"{DISK}/media",
               "IMPORT_DIR": f"{DISK}/imports", "WORKER_DATABASE_URL": self.primary.url()}  # fmt: skip
        web = [
            str(VENV_BIN / "gunicorn"), "logsvc.asgi:application", f"--bind={host.address}:{APP_PORT}",
            f"--workers={host.workers}", "--worker-class=uvicorn_worker.UvicornWorker", "--preload",
            "--keep-alive=15", "--timeout=20", "--log-level=warning", f"--chdir={ROOT}",
        ]  # fmt: skip
        # The worker holds a session (its queue's locks): straight to the primary, never through pgbouncer
        worker = f'DATABASE_URL="$WORKER_DATABASE_URL" {sys.executable} {ROOT / "manage.py"} db_worker'
        script = (
            f"mkdir -p {DISK} && mount -t tmpfs -o size=512m tmpfs {DISK} && mkdir {DISK}/exports {DISK}/media "
            f'{DISK}/imports && {{ {worker} & "$@" & wait; }}'
        )
        command = ["ip", "netns", "exec", host.name, "unshare", "--mount", "--propagation", "private",
                   "sh", "-c", script, "host", *web]  # fmt: skip
        host.root.mkdir(parents=True, exist_ok=True)
        log_file = (host.root / "server.log").open("ab")
        host.web = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=log_file, start_new_session=True, cwd=ROOT
        )
        self.wait_http(host.address, APP_PORT, f"{host.name} gunicorn", proc=host.web)

    def kill_host(self, host: Host) -> None:
        """SIGKILL every process of the host at once, as a machine that loses power."""
        for pid in host.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if host.web is not None:
            host.web.wait()
        host.web = None

    def start_balancer(self, hosts: list[Host]) -> None:
        servers = "\n".join(f"    server {h.name} {h.address}:{APP_PORT} check inter 1s fall 2 rise 2" for h in hosts)
        config = self.work / "haproxy.cfg"
        config.write_text(
            "global\n    maxconn 4000\n"
            f"    stats socket {LB_ADMIN} mode 600 level admin\n"
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n"
            "    retries 2\n    option redispatch\n"
            f"frontend web\n    bind 127.0.0.1:{LB_PORT}\n    default_backend apps\n"
            "backend apps\n    balance roundrobin\n    option httpchk GET /healthz\n"
            "    http-check expect status 200\n"
            f"{servers}\n"
        )
        self.stop_daemon("haproxy")
        self.daemons["haproxy"] = subprocess.Popen(
            ["haproxy", "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        self.wait_http("127.0.0.1", LB_PORT, "HAProxy")
        time.sleep(2.5)  # its health checks mark the servers up

    def stop_daemon(self, name: str) -> None:
        proc = self.daemons.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @staticmethod
    def wait_port(host: str, port: int, what: str, timeout: float = 30) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")

    @staticmethod
    def wait_http(host: str, port: int, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = request(host, port, "GET", "/healthz")
                if status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not answer /healthz on {host}:{port} within 90 s")

    def pg_version(self) -> str:
        import psycopg

        with psycopg.connect(self.primary.url(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    @staticmethod
    def haproxy_version() -> str:
        return sh("haproxy", "-v").stdout.split()[2]

    def create_keys(self) -> dict[str, str]:
        """bench/faults.py's user, keys and site, written straight to the primary; a reader, an export and a burst
        key beside them."""
        env, self.server_env = self.server_env, {**self.server_env, "DATABASE_URL": self.primary.url()}
        self.server_env.pop("DATABASE_REPLICA_URL")  # this process writes the fixtures and reads them back
        try:
            keys = super().create_keys()
        finally:
            self.server_env = env
        from analytics.models import Site
        from logsvc.models import ApiKey, User

        owner = User.objects.get(pk=self.owner_id)
        # wrk's messages and the read-your-writes events are another user's: the faults' markers stay alone
        other = User.objects.create_user(username="topology", email="topology@example.org")
        _, self.reader_key = ApiKey.create(user=other, name="reader", scopes=["events:read", "events:write"])
        _, self.wrk_key = ApiKey.create(user=other, name="wrk", scopes=["logs:write"])
        export_key, self.export_key = ApiKey.create(user=owner, name="export", scopes=["export", "stats", "count"])
        Site.objects.get(pk=self.site.pk).api_keys.add(export_key)
        _, self.burst_key = ApiKey.create(user=owner, name="burst", scopes=["stats"])
        return keys

    # -- 1. CPU per request with 1, 2 and 3 hosts

    def cpu_per_request(self) -> None:
        script = write_lua(
            "topology-logster", "POST", {"Content-Type": "application/json", "ApiKey": self.wrk_key},
            json.dumps({"Message": "topology", "Severity": 2, "Category": "Bench", "Application": "topology"}),
        )  # fmt: skip
        measured: dict[int, list[tuple[int, float, Counter[str], float]]] = {1: [], 2: [], 3: []}
        rounds = range(self.args.cpu_rounds)  # 1 2 3, then 3 2 1: a drift of the host's speed hits all alike
        order = [n for r in rounds for n in ((1, 2, 3) if r % 2 == 0 else (3, 2, 1))]
        for count in order:
            # The same web processes each time (--web-processes), spread over 1, 2 or 3 hosts: on one machine
            # more processes would only add contention, and it is the hosts' cost that is measured
            for host in self.hosts:
                wanted = self.args.web_processes // count if host.number <= count else 0
                if host.workers != wanted or host.web is None:
                    self.kill_host(host)
                    host.workers = 0
                    if wanted:
                        self.start_host(host, wanted)
            self.start_balancer(self.hosts[:count])
            run_wrk(f"http://127.0.0.1:{LB_PORT}/api/Log", script, threads=1, connections=4, seconds=4)  # warm
            before = self.server_cpu()
            result = run_wrk(
                f"http://127.0.0.1:{LB_PORT}/api/Log", script, threads=2, connections=8,
                seconds=self.args.cpu_seconds,
            )  # fmt: skip
            spent = self.server_cpu()
            spent.subtract(before)
            errors = sum(result.errors.values())
            ok = result.requests - errors
            measured[count].append((ok, result.seconds, spent, result.p99_ms))
            if errors:
                self.failures.append(f"wrk through {count} host(s): errors {result.errors}")
            log(
                f"{count} host(s): {ok / result.seconds:,.0f} requests/s, {spent.total() * 1000 / max(ok, 1):.2f} ms CPU"
            )
        for count, runs in measured.items():
            ok, seconds = sum(r[0] for r in runs), sum(r[1] for r in runs)
            spent = sum((r[2] for r in runs), Counter())
            each = {part: f"{spent[part] * 1000 / max(ok, 1):.2f}" for part in ("app", "postgres", "proxies")}
            self.cpu_rows.append((
                f"{count}", f"{len(runs)}", f"{ok:,}", f"{ok / seconds:,.0f}", f"{spent.total() * 1000 / max(ok, 1):.2f}",
                each["app"], each["postgres"], each["proxies"], f"{max(r[3] for r in runs):.1f}",
            ))  # fmt: skip
        base = spent_per(measured[1])
        self.cpu_ratio = max(spent_per(measured[n]) for n in (2, 3)) / base if base else float("inf")
        for host in self.hosts:  # --workers each for the rest
            if host.workers != self.args.workers or host.web is None:
                self.kill_host(host)
                self.start_host(host)
        self.start_balancer(self.hosts)

    def server_cpu(self) -> Counter[str]:
        """CPU seconds so far of the app hosts, of PostgreSQL (both clusters) and of the proxies and Redis."""
        parts = {
            "app": [pid for host in self.hosts for pid in host.pids()],
            "postgres": self.primary.pids() + self.replica.pids(),
            "proxies": [proc.pid for proc in self.daemons.values() if proc.poll() is None],
        }
        return Counter({part: sum(process_cpu(pid) for pid in pids) for part, pids in parts.items()})

    # -- 2. faults through the load balancer

    def measure(self) -> None:
        self.cpu_per_request()
        self.burst()  # before the faults: a Redis outage splits a window's count between Redis and PostgreSQL
        args = self.args
        log(f"{args.clients} clients per family through HAProxy for {args.duration} s, with faults")
        self.started = time.monotonic()
        clients = [Client(self, f, i) for f in self.families.values() for i in range(args.clients)]
        extra = [self.chaos, self.sample, self.read_your_writes]
        threads = [*clients, *(threading.Thread(target=t, name=t.__name__, daemon=True) for t in extra)]
        for thread in threads:
            thread.start()
        deadline = self.started + args.duration
        while (now := time.monotonic()) < deadline:
            time.sleep(min(10, deadline - now))
            self.progress()
        self.stop_sending.set()
        log("Stopping: clients finish (and retry) the request in hand")
        limit = time.monotonic() + (args.retries + 1) * (args.timeout + 2)
        for thread in threads:
            thread.join(max(0.0, limit - time.monotonic()))
        if stuck := [t.name for t in threads if t.is_alive()]:
            self.failures.append(f"still running after their retries: {', '.join(stuck)}")
        self.pg = _Primary(self.primary)  # type: ignore[assignment] # FaultRun.read_stored() reads only its .url
        time.sleep(2)  # the replica catches up before anything is read from it
        self.read_stored()
        self.export_across_hosts()

    def progress(self) -> None:
        with self.lock:
            sent = list(self.sent)
        errors = sum(1 for s in sent for o in s.outcomes if not o.startswith("2"))
        log(
            f"{time.monotonic() - self.started:5.0f} s: {len(sent):,} requests done, "
            f"{sum(s.acked for s in sent):,} acknowledged, {errors:,} failed attempts (retried)"
        )

    def chaos(self) -> None:
        duration = self.args.duration
        victim = self.hosts[1]
        steps = [
            (0.15, f"SIGKILL every process of {victim.name} (gunicorn and worker)", lambda: self.kill_host(victim)),
            (0.35, f"{victim.name} starts again", lambda: self.start_host(victim)),
            (0.50, "the replica restarts (pg_ctl restart -m fast)", self.restart_replica),
            (0.70, f"pgbouncer stops for {self.args.bouncer_down:.0f} s (SIGKILL), then starts", self.bounce_bouncer),
            (0.85, f"Redis stops for {self.args.bouncer_down:.0f} s (SIGKILL), then starts", self.bounce_redis),
        ]
        for at, what, action in steps:
            if self.stop_sending.wait(max(0.0, self.started + duration * at - time.monotonic())):
                return
            self.event(what)
            try:
                action()
            except Exception as error:  # noqa: BLE001 - a fault that could not be made is reported, not fatal
                self.failures.append(f"{what}: {error}")

    def restart_replica(self) -> None:
        self.replica.stop("fast")
        self.replica.start()

    def bounce_bouncer(self) -> None:
        proc = self.daemons.pop("pgbouncer")
        proc.kill()
        proc.wait()
        time.sleep(self.args.bouncer_down)
        self.start_bouncer()

    def bounce_redis(self) -> None:
        proc = self.daemons.pop("redis")
        proc.kill()
        proc.wait()
        time.sleep(self.args.bouncer_down)
        self.start_redis()

    def sample(self) -> None:
        """Every half second: PostgreSQL client backends on the primary, web processes up, the replica's lag."""
        import psycopg

        while not self.stop_sending.wait(0.5):
            web = sum(host.web_processes() for host in self.hosts)
            try:
                with psycopg.connect(self.primary.url(), autocommit=True, connect_timeout=2) as conn:
                    backends = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                        "AND datname = %s AND pid <> pg_backend_pid()",
                        [DATABASE],
                    ).fetchone()
                    lag_row = conn.execute(
                        "SELECT EXTRACT(epoch FROM replay_lag) FROM pg_stat_replication LIMIT 1"
                    ).fetchone()
            except psycopg.Error:
                continue
            lag = float(lag_row[0]) if lag_row and lag_row[0] is not None else None
            self.samples.append((time.monotonic(), int(backends[0]) if backends else 0, web, lag))

    def read_your_writes(self) -> None:
        """An event written through one host is read back at once through the next one, by its own key."""
        self.ryw: Counter[str] = Counter()
        n = 0
        while not self.stop_sending.wait(0.2):
            n += 1
            alive = [h for h in self.hosts if h.web is not None and h.web.poll() is None]
            if len(alive) < 2:
                continue
            writer, reader = alive[n % len(alive)], alive[(n + 1) % len(alive)]
            marker = f"ryw-{self.token}-{n}"
            headers = {"Authorization": f"Bearer {self.reader_key}", "Content-Type": "application/json"}
            try:
                status, _ = request(writer.address, APP_PORT, "POST", "/api/v1/events", headers=headers,
                                    body={"id": marker, "name": "topology.ryw", "trace_id": marker})  # fmt: skip
                if status not in (200, 201, 202):
                    self.ryw["write failed"] += 1
                    continue
                status, body = request(reader.address, APP_PORT, "GET", f"/api/v1/events/trace/{marker}",
                                       headers=headers)  # fmt: skip
            except (OSError, http.client.HTTPException):
                self.ryw["connection error"] += 1
                continue
            if status != 200:
                self.ryw[f"read {status}"] += 1
                continue
            self.ryw["checked"] += 1
            if marker not in body:
                self.ryw["violations"] += 1

    # -- 3. across hosts

    def burst(self) -> None:
        """RATE (60 per 120 s) of /api/v0 for one key, 100 requests spread over the three hosts."""
        limit = int(RATE.split("/")[0])
        statuses: Counter[int] = Counter()
        for n in range(limit + 40):
            host = self.hosts[n % 3]
            status, _ = request(host.address, APP_PORT, "GET", "/api/v0/me",
                                headers={"Authorization": f"Bearer {self.burst_key}"})  # fmt: skip
            statuses[status] += 1
        ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
        self.checks.append((
            f"rate limit {RATE} over 3 hosts: exactly {limit} of {limit + 40} answered 2xx", ok == limit,
            ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items())),
        ))  # fmt: skip

    def export_across_hosts(self) -> None:
        """POST an export through host 1; a worker (any host's) writes it; host 2 reports it; every host serves it."""
        headers = {"Authorization": f"Bearer {self.export_key}", "Content-Type": "application/json"}
        one, two, _ = self.hosts
        status, body = request(one.address, APP_PORT, "POST", "/api/v0/export", headers=headers, body={})
        if status != 202:
            self.checks.append(("export through one host, downloaded through another", False, f"POST {status}"))
            return
        export_id = json.loads(body)["id"]
        deadline = time.monotonic() + 60
        finished = False
        while time.monotonic() < deadline and not finished:
            status, body = request(two.address, APP_PORT, "GET", f"/api/v0/export/{export_id}", headers=headers)
            finished = status == 200 and bool(json.loads(body).get("finished_at"))
            time.sleep(0.5)
        downloads = {}  # every host serves it, whichever host's worker wrote it
        for host in self.hosts:
            status, data = request(host.address, APP_PORT, "GET", f"/api/v0/export/{export_id}/download",
                                   headers=headers, raw=True)  # fmt: skip
            rows = -1
            if status == 200:
                with contextlib.suppress(OSError, EOFError):
                    rows = gzip.decompress(data).count(b"\n") - 1
            downloads[host.name] = (status, rows)
        self.checks.append(
            (
                "an export made through host 1, reported by host 2, downloaded through every host",
                finished and all(status == 200 and rows > 0 for status, rows in downloads.values()),
                f"finished={finished}; downloads: "
                + ", ".join(f"{name} {status} ({rows:,} rows)" for name, (status, rows) in downloads.items()),
            )
        )

    # -- the report

    def report(self) -> str:
        sent = self.sent
        header = ("family", "requests", "acked", "gave up", "items acked", "lost", "duplicated", "retried attempts")
        rows, lost, duplicated = [], 0, 0
        for family in FAMILIES:
            mine = [s for s in sent if s.family == family]
            stored = self.stored.get(family, Counter())
            acked = [m for s in mine if s.acked for m in s.markers]
            family_lost = sum(1 for m in acked if not stored[m])
            family_dup = sum(1 for n in stored.values() if n > 1)
            lost, duplicated = lost + family_lost, duplicated + family_dup
            rows.append((
                family, f"{len(mine):,}", f"{sum(s.acked for s in mine):,}",
                f"{sum(1 for s in mine if not s.acked and not s.rejected):,}", f"{len(acked):,}", f"{family_lost}",
                f"{family_dup}", f"{sum(len(s.outcomes) - 1 for s in mine):,}",
            ))  # fmt: skip
        statuses = Counter(o for s in sent for o in s.outcomes)
        backends = max((b for _, b, _, _ in self.samples), default=0)
        web = max((w for _, _, w, _ in self.samples), default=0)
        lags = [lag for *_, lag in self.samples if lag is not None]
        ryw = getattr(self, "ryw", Counter())
        self.checks[:0] = [
            ("acknowledged items lost", lost == 0, f"{lost}"),
            ("acknowledged items stored twice", duplicated == 0, f"{duplicated}"),
            (
                "read-your-writes: an event written through one host, read at once through another",
                ryw["checked"] > 0 and ryw["violations"] == 0,
                f"{ryw['violations']} violations of {ryw['checked']} checked"
                + (
                    f" ({', '.join(f'{k} {v}' for k, v in ryw.items() if k not in ('checked', 'violations'))})"
                    if len(ryw) > 2
                    else ""
                ),
            ),
        ]
        self.failures += [f"{name}: {value}" for name, ok, value in self.checks if not ok]
        args = self.args
        lines = [
            f"logsvc on three hosts, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {self.settings}",
            "",
            (
                f"CPU per request (POST /api/Log through HAProxy, wrk 8 connections, {args.cpu_seconds} s each; "
                f"{args.web_processes} gunicorn workers in all, split over the hosts):"
            ),
            *table_lines(
                (
                    "hosts",
                    "rounds",
                    "answered",
                    "requests/s",
                    "server CPU ms/request",
                    "app",
                    "PostgreSQL",
                    "proxies+Redis",
                    "p99 ms",
                ),
                self.cpu_rows,
            ),
            (
                f"CPU per request with 2 or 3 hosts over 1 host: at most {self.cpu_ratio:.2f}x (target: no growth beyond "
                "noise, <= 1.2x)"
            ),
            "",
            f"Faults through HAProxy ({args.clients} clients per family, {args.duration} s):",
            *table_lines(header, rows),
            "",
            "attempts by outcome: " + ", ".join(f"{o} {n:,}" for o, n in statuses.most_common()),
            (
                f"PostgreSQL client backends on the primary, most seen: {backends} (web processes: {web}, "
                f"each with its own pool in Django; pgbouncer pool size 10, plus 3 workers and this script)"
            ),
            (
                f"replica lag (pg_stat_replication.replay_lag): max {max(lags, default=0) * 1000:.0f} ms, "
                f"samples {len(lags)}"
            ),
            "",
            *(f"{'PASS' if ok else 'FAIL'}  {name}: {value}" for name, ok, value in self.checks),
            "",
            "faults: " + "; ".join(f"{t - self.started:.0f} s {what}" for t, what in self.events),
        ]
        if self.failures:
            lines += ["", "FAILED:", *(f"  {f}" for f in self.failures)]
        return "\n".join(lines)

    def write_details(self) -> None:
        timeline = [f"{t - self.started:7.2f} s  {what}" for t, what in sorted(self.events)]
        samples = [f"{t - self.started:7.2f} s  backends {b} web {w} lag {lag}" for t, b, w, lag in self.samples]
        (OUT / "topology-details.txt").write_text("\n".join([*timeline, *samples]) + "\n")

    def close(self) -> None:
        self.abort.set()
        self.stop_sending.set()
        for host in self.hosts:
            with contextlib.suppress(Exception):
                self.kill_host(host)
            with contextlib.suppress(OSError):
                shutil.copy(host.root / "server.log", OUT / f"topology-{host.name}.log")
        for name in list(self.daemons):
            self.stop_daemon(name)
        for cluster in (getattr(self, "replica", None), getattr(self, "primary", None)):
            if cluster is not None:
                cluster.stop("immediate")
        self.teardown_network()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def spent_per(runs: list[tuple[int, float, Counter[str], float]]) -> float:
    """Server CPU seconds per answered request over runs of (answered, seconds, CPU seconds by part, p99)."""
    answered = sum(r[0] for r in runs)
    return sum(r[2].total() for r in runs) / answered if answered else 0.0


class _Balancer:
    port = LB_PORT


class _Primary:
    def __init__(self, cluster: Cluster) -> None:
        self.url = cluster.url()


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    raw: bool = False,
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(host, port, timeout=20)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, data if raw else data.decode(errors="replace")
    finally:
        connection.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a 40 s fault run and 10 s per CPU measurement")
    p.add_argument("--duration", type=int, default=120, help="seconds of load and faults (default 120)")
    p.add_argument("--cpu-seconds", type=int, default=20, help="seconds of wrk per host count (default 20)")
    p.add_argument(
        "--web-processes", type=int, default=6,
        help="gunicorn workers in all while CPU per request is measured, split over the hosts (default 6)",
    )  # fmt: skip
    p.add_argument("--cpu-rounds", type=int, default=2, help="wrk runs per host count, interleaved (default 2)")
    p.add_argument("--clients", type=int, default=2, help="client threads per family (default 2)")
    p.add_argument("--batch", type=int, default=5, help="items per request at most (default 5)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers per host (default 2)")
    p.add_argument("--timeout", type=float, default=20, help="client timeout per attempt, seconds (default 20)")
    p.add_argument("--retries", type=int, default=20, help="retries of a failed request (default 20)")
    p.add_argument("--bouncer-down", type=float, default=3, help="seconds pgbouncer stays down (default 3)")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.cpu_seconds, args.cpu_rounds = 40, 10, 1
    args.worker_timeout, args.kill_every, args.crash_at, args.pg_down, args.sync, args.preload = (
        20,
        (1, 1),
        0.5,
        0,
        False,
        True,
    )
    return args


def main(argv: list[str] | None = None) -> int:
    if not WRK.exists():
        sys.exit("wrk is needed: make system-packages")
    run = Topology(parse_args(argv))
    code = run_bench(run, run.measure, "topology")
    return code or (1 if run.failures else 0)


if __name__ == "__main__":
    sys.exit(main())
