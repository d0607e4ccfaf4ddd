#!/usr/bin/env python
"""Scale-out on real engines (issue 15): three app hosts behind HAProxy, pgbouncer, a primary and a streaming
replica, Redis, built on this machine from real parts, loaded, broken on purpose, and torn down.

Needs root (network namespaces) and Debian's haproxy, pgbouncer, redis-server and PostgreSQL 15 binaries.

* hosts: Linux network namespaces lsv-h1..h3 (10.79.0.11-13) on a bridge (10.79.0.1 on this side); each runs
  gunicorn (uvicorn workers, logsvc.asgi) and the worker (`manage.py db_worker`).
* HAProxy on 127.0.0.1:58080, round robin over the hosts, checking `GET /healthz`.
* PostgreSQL: a private primary (initdb, 10.79.0.1:55432) and a streaming replica made with `pg_basebackup -R`
  (10.79.0.1:55433); pgbouncer in transaction mode (10.79.0.1:56432) for the web processes; the workers and
  `migrate` connect directly. Redis (10.79.0.1:56379) holds the cache and rate limits.

During a mixed load through HAProxy (Bytelog writes, each followed by the same client's read of it, reads of
the lists, GoatCounter stats), it kills one host's processes with SIGKILL and brings them back, restarts the
replica and stops pgbouncer for a few seconds. It prints requests and errors by status, acknowledged writes lost
and duplicated, read-your-writes violations, an exact rate limit across hosts, an export made through one host
and downloaded through another, the replica's lag, PostgreSQL connections against web processes, and the CPU per
request with 1, 2 and 3 hosts. Not a test. `sudo .venv/bin/python bench/topology.py --help`.

"errors by status" counts HAProxy's own 503s too: while pgbouncer is stopped every host's /healthz fails, so
HAProxy has no server to send to for those seconds.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
BRIDGE, HOST_IP = "lsv-br0", "10.79.0.1"  # a subnet of its own: another topology may be up
PRIMARY, REPLICA, BOUNCER, REDIS, LB = 55432, 55433, 56432, 56379, 58080
DB = "logsvc_topology"
HOSTS = [f"10.79.0.{11 + n}" for n in range(3)]
WEB_WORKERS = 1  # per host: two cores for everything
BURST_LIMIT = 10


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def sh(*command: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, capture_output=True, text=True, **kwargs)


def as_postgres(*command: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return sh("runuser", "-u", "postgres", "--", *command, **kwargs)


def pg_url(port: int) -> str:
    return f"postgres://postgres@{HOST_IP}:{port}/{DB}"


class Topology:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen] = {}
        self.host_processes: dict[int, list[subprocess.Popen]] = {}

    # --- network -------------------------------------------------------------------------------------------
    def network(self) -> None:
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for n, address in enumerate(HOSTS, 1):
            ns, veth = f"lsv-h{n}", f"lsv-v{n}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", BRIDGE, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    # --- PostgreSQL, pgbouncer, Redis, HAProxy -------------------------------------------------------------
    def databases(self) -> None:
        primary, replica = self.workdir / "primary", self.workdir / "replica"
        as_postgres(str(PG_BIN / "initdb"), "-D", str(primary), "-A", "trust", "-U", "postgres")
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(
                f"listen_addresses = '{HOST_IP}'\nport = {PRIMARY}\nunix_socket_directories = '{self.workdir}'\n"
            )
            conf.write("max_connections = 100\nwal_level = replica\nshared_buffers = 128MB\nfsync = on\n")
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host all all 10.79.0.0/24 trust\nhost replication all 10.79.0.0/24 trust\n")
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(primary), "-l", str(self.workdir / "primary.log"), "-w", "start")
        as_postgres(
            str(PG_BIN / "pg_basebackup"), "-h", HOST_IP, "-p", str(PRIMARY), "-D", str(replica), "-R", "-X", "stream"
        )
        with open(replica / "postgresql.conf", "a") as conf:
            conf.write(f"port = {REPLICA}\nhot_standby = on\nhot_standby_feedback = on\n")
        self.start_replica()
        with psycopg.connect(f"postgres://postgres@{HOST_IP}:{PRIMARY}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB}")

    def start_replica(self) -> None:
        replica = self.workdir / "replica"
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(replica), "-l", str(self.workdir / "replica.log"), "-w", "start")

    def restart_replica(self) -> None:
        replica, log_file = str(self.workdir / "replica"), str(self.workdir / "replica.log")
        # -l: without it the new postmaster keeps pg_ctl's stdout, and waiting for its end never ends
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", replica, "-l", log_file, "-m", "fast", "-w", "restart")

    def pgbouncer(self) -> None:
        folder = self.workdir / "pgbouncer"
        folder.mkdir(exist_ok=True)
        (folder / "users.txt").write_text('"postgres" ""\n')
        (folder / "pgbouncer.ini").write_text(
            f"[databases]\n* = host={HOST_IP} port={PRIMARY}\n[pgbouncer]\nlisten_addr = {HOST_IP}\n"
            f"listen_port = {BOUNCER}\nunix_socket_dir =\nauth_type = trust\nauth_file = {folder / 'users.txt'}\n"
            "pool_mode = transaction\ndefault_pool_size = 8\nmax_client_conn = 500\nadmin_users = postgres\n"
        )
        os.chmod(folder, 0o755)
        self.start_pgbouncer()

    def start_pgbouncer(self) -> None:
        config = str(self.workdir / "pgbouncer" / "pgbouncer.ini")
        self.processes["pgbouncer"] = subprocess.Popen(
            ["pgbouncer", "-u", "nobody", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(0.3)

    def redis(self) -> None:
        self.processes["redis"] = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                HOST_IP,
                "--port",
                str(REDIS),
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )

    def haproxy(self, hosts: int = 3) -> None:
        servers = "\n".join(
            f"    server h{n} {address}:8000 check inter 500ms fall 2 rise 2"
            for n, address in enumerate(HOSTS[:hosts], 1)
        )
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            f"""global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
frontend web
    bind 127.0.0.1:{LB}
    default_backend app
backend app
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz hdr Host localhost
    http-check expect status 200
{servers}
"""
        )
        if "haproxy" in self.processes:
            self.processes["haproxy"].terminate()
            self.processes["haproxy"].wait()
        self.processes["haproxy"] = subprocess.Popen(["haproxy", "-f", str(config)], stderr=subprocess.DEVNULL)

    # --- the application -----------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("DATABASE")},
            "SECRET_KEY": "topology-only",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "*",
            "DATABASE_URL": pg_url(BOUNCER),
            "DATABASE_PREPARED_STATEMENTS": "false",  # Debian's pgbouncer 1.18
            "DATABASE_REPLICA_URL": pg_url(REPLICA),
            "REDIS_URL": f"redis://{HOST_IP}:{REDIS}/0",
            "RATE_LIMIT_BYTELOG": "",
            "RATE_LIMIT_GOATCOUNTER": f"{BURST_LIMIT}/600",
            "STATIC_ROOT": str(self.workdir / "static"),
            "API_KEY_CACHE_SECONDS": "2",
        }

    def migrate(self) -> None:
        env = {**self.env(), "DATABASE_URL": pg_url(PRIMARY)}
        env.pop("DATABASE_REPLICA_URL")
        for command in (["migrate", "-v0"], ["collectstatic", "--no-input", "-v0"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True)

    def start_host(self, n: int) -> None:
        ns, address = f"lsv-h{n}", HOSTS[n - 1]
        web = [
            *("ip", "netns", "exec", ns, str(Path(sys.executable).with_name("gunicorn")), "logsvc.asgi"),
            *("--worker-class=uvicorn_worker.UvicornWorker", f"--bind={address}:8000", f"--workers={WEB_WORKERS}"),
            *("--log-level=warning", "--no-control-socket"),
        ]
        worker = ["ip", "netns", "exec", ns, sys.executable, "manage.py", "db_worker", "--no-startup-delay", "-v0"]
        log_file = open(self.workdir / f"h{n}.log", "ab")  # noqa: SIM115 (the host's processes share it)
        self.host_processes[n] = [
            subprocess.Popen(web, cwd=ROOT, env=self.env(), stdout=log_file, stderr=log_file, start_new_session=True),
            subprocess.Popen(
                worker,
                cwd=ROOT,
                env={**self.env(), "DATABASE_URL": pg_url(PRIMARY)},  # direct: session locks, server-side cursors
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            ),
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://{address}:8000/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"host {n} did not start: see {self.workdir / f'h{n}.log'}")

    def kill_host(self, n: int) -> None:
        for process in self.host_processes.pop(n, []):
            os.killpg(process.pid, signal.SIGKILL)  # the whole session: gunicorn's master and workers
            process.wait()

    def app_pids(self) -> list[int]:
        """Every process of ours that does work: the hosts' process trees, PostgreSQL's, pgbouncer, HAProxy, Redis."""
        roots = [p.pid for procs in self.host_processes.values() for p in procs]
        roots += [p.pid for p in self.processes.values()]
        for data in ("primary", "replica"):
            pid_file = self.workdir / data / "postmaster.pid"
            if pid_file.exists():
                roots.append(int(pid_file.read_text().split()[0]))
        pids, stack = set(), list(roots)
        while stack:
            pid = stack.pop()
            if pid in pids:
                continue
            pids.add(pid)
            try:
                stack += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except OSError:
                pass
        return sorted(pids)

    def teardown(self) -> None:
        for n in list(self.host_processes):
            self.kill_host(n)
        for process in self.processes.values():
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for data in ("replica", "primary"):
            if (self.workdir / data / "postmaster.pid").exists():
                as_postgres(
                    str(PG_BIN / "pg_ctl"), "-D", str(self.workdir / data), "-m", "immediate", "stop", check=False
                )
        for n in range(1, len(HOSTS) + 1):
            sh("ip", "netns", "del", f"lsv-h{n}", check=False)
        sh("ip", "link", "del", BRIDGE, check=False)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Load:
    """Closed-loop clients through the load balancer; each write acknowledged (201) is followed by the same
    client's read of it (read your writes), and remembered to be looked for in the database at the end."""

    def __init__(self, base: str, keys: list[str]) -> None:
        self.base, self.keys = base, keys
        self.statuses: Counter[str] = Counter()
        self.acknowledged: list[str] = []
        self.ryw_violations = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def client(self, key: str) -> None:
        session = requests.Session()
        auth = {"Authorization": f"Bearer {key}"}
        n = 0
        while not self.stop.is_set():
            n += 1
            kind = n % 4
            try:
                if kind in (0, 1):  # a write, then its own read
                    trace = uuid.uuid4().hex
                    body: dict[str, Any] = {
                        "id": n,
                        "name": "topology",
                        "trace_id": trace,
                        "date": "2026-12-06T00:00:00Z",
                        "data": {},
                    }
                    r = session.post(f"{self.base}/api/v1/events", json=body, headers=auth, timeout=10)
                    self.note("write", r.status_code)
                    if r.status_code == 201:
                        with self.lock:
                            self.acknowledged.append(trace)
                        r = session.get(f"{self.base}/api/v1/events/trace/{trace}", headers=auth, timeout=10)
                        self.note("read own", r.status_code)
                        if r.status_code == 200 and r.json().get("count", 0) < 1:
                            with self.lock:
                                self.ryw_violations += 1
                elif kind == 2:
                    self.note(
                        "list", session.get(f"{self.base}/api/v1/events?limit=20", headers=auth, timeout=10).status_code
                    )
                else:
                    self.note("health", session.get(f"{self.base}/healthz", timeout=10).status_code)
            except requests.RequestException as error:
                self.note(kind_name(kind), type(error).__name__)

    def note(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1

    def run(self, seconds: float, during: list[tuple[float, Any]] | None = None) -> None:
        threads = [threading.Thread(target=self.client, args=(key,), daemon=True) for key in self.keys]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        for at, action in sorted(during or [], key=lambda item: item[0]):
            time.sleep(max(0.0, started + at - time.monotonic()))
            action()
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        self.stop.set()
        for thread in threads:
            thread.join()


def kind_name(kind: int) -> str:
    return {0: "write", 1: "write", 2: "list", 3: "health"}[kind]


def setup_data(env: dict[str, str], clients: int) -> dict[str, Any]:
    """A user with one key per client, a site with hits, through Django on the primary (direct)."""
    os.environ.update({**env, "DATABASE_URL": pg_url(PRIMARY)})
    os.environ.pop("DATABASE_REPLICA_URL", None)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsvc.settings")
    import django

    django.setup()
    from django.db import transaction

    from analytics.models import Site
    from analytics.services import CleanHit, record_hits
    from logsvc.models import ApiKey, User

    user = User.objects.create_user("topology", password=uuid.uuid4().hex)
    keys = [ApiKey.create(user=user, name=f"c{n}", scopes=["events:write", "events:read"])[1] for n in range(clients)]
    site = Site.objects.create(code="topology", owner=user)
    with transaction.atomic():
        record_hits(site, [CleanHit(path=f"/p{n % 50}", title="t") for n in range(2000)])
    export_key = ApiKey.create(user=user, name="export", scopes=["export", "sites", "stats"])[1]
    burst_key = ApiKey.create(user=user, name="burst", scopes=["sites"])[1]  # a limit's bucket of its own
    return {"keys": keys, "export_key": export_key, "burst_key": burst_key, "site": site}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="the mixed load's length (default 30)")
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients (default 6)")
    parser.add_argument("--cpu-seconds", type=float, default=10, help="each 1-, 2-, 3-host CPU run (default 10)")
    parser.add_argument("--keep", action="store_true", help="leave the work directory (logs) behind")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("Run as root: it makes network namespaces.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a timeout's SIGTERM still tears everything down

    workdir = Path(tempfile.mkdtemp(prefix="logsvc-topology-"))
    os.chmod(workdir, 0o755)
    shutil.chown(workdir, "postgres")  # PostgreSQL's data, logs and socket; pgbouncer reads its config as nobody
    topology = Topology(workdir)
    try:
        log(f"building in {workdir}")
        topology.network()
        topology.databases()
        topology.pgbouncer()
        topology.redis()
        topology.migrate()
        data = setup_data(topology.env(), args.clients)
        for n in range(1, len(HOSTS) + 1):
            topology.start_host(n)
        topology.haproxy()
        time.sleep(2)  # HAProxy's checks see the hosts up
        base = f"http://127.0.0.1:{LB}"
        report = run(topology, base, data, args)
        print_report(report)
    finally:
        topology.teardown()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def run(topology: Topology, base: str, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {}
    connections: list[int] = []

    def sample_connections() -> None:
        with psycopg.connect(f"postgres://postgres@{HOST_IP}:{PRIMARY}/{DB}", autocommit=True) as conn:
            while not load.stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DB]
                ).fetchone()
                connections.append(row[0] if row else 0)
                time.sleep(0.5)

    def kill_and_restart_host() -> None:
        log("SIGKILL host 2's processes")
        topology.kill_host(2)
        time.sleep(3)
        topology.start_host(2)
        log("host 2 back")

    def restart_replica() -> None:
        log("restarting the replica")
        topology.restart_replica()

    def pause_pgbouncer() -> None:
        log("stopping pgbouncer for 3 s")
        topology.processes["pgbouncer"].terminate()
        topology.processes["pgbouncer"].wait()
        time.sleep(3)
        topology.start_pgbouncer()

    load = Load(base, data["keys"])
    sampler = threading.Thread(target=sample_connections, daemon=True)
    sampler.start()
    s = args.seconds
    actions = [(s * 0.2, kill_and_restart_host), (s * 0.5, restart_replica), (s * 0.7, pause_pgbouncer)]
    log(f"mixed load for {s:.0f} s through HAProxy, {args.clients} clients")
    load.run(s, actions)
    sampler.join()
    report["statuses"] = load.statuses
    report["ryw"] = load.ryw_violations
    with psycopg.connect(pg_url(PRIMARY), autocommit=True) as conn:
        stored = Counter(
            trace
            for (trace,) in conn.execute(
                "SELECT trace_id FROM events_event WHERE trace_id = ANY(%s)", [load.acknowledged]
            ).fetchall()
        )
    report["acknowledged"] = len(load.acknowledged)
    report["lost"] = sum(1 for trace in load.acknowledged if trace not in stored)
    report["duplicated"] = sum(1 for count in stored.values() if count > 1)
    report["connections"] = (max(connections, default=0), len(HOSTS) * WEB_WORKERS)

    # An export asked through host 1 and downloaded through host 3.
    auth = {"Authorization": f"Bearer {data['export_key']}"}
    created = requests.post(f"http://{HOSTS[0]}:8000/api/v0/export", json={}, headers=auth, timeout=10)
    export_id = created.json().get("id")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = requests.get(f"http://{HOSTS[2]}:8000/api/v0/export/{export_id}", headers=auth, timeout=10).json()
        if shown.get("finished_at"):
            break
        time.sleep(0.5)
    download = requests.get(f"http://{HOSTS[2]}:8000/api/v0/export/{export_id}/download", headers=auth, timeout=30)
    rows = len(gzip.decompress(download.content).splitlines()) - 1 if download.status_code == 200 else None
    report["export"] = (created.status_code, download.status_code, rows, shown.get("num_rows"))
    # A rate limit across hosts: a burst through the balancer (round robin) gets exactly the limit's 2xx.
    burst = Counter(
        requests.get(
            f"{base}/api/v0/me", headers={"Authorization": f"Bearer {data['burst_key']}"}, timeout=10
        ).status_code
        for _ in range(BURST_LIMIT * 3)
    )
    report["burst"] = burst

    report["lag"] = requests.get(f"http://{HOSTS[0]}:8000/healthz", timeout=10).json().get("replica_lag_seconds")

    # CPU per request with 1, 2 and 3 hosts behind the balancer.
    cpu: list[tuple[int, int, float]] = []
    for hosts in (1, 2, 3):
        topology.haproxy(hosts)
        time.sleep(1.5)
        pids = topology.app_pids()
        before = cpu_seconds(pids)
        steady = Load(base, data["keys"])
        steady.run(args.cpu_seconds)
        used = cpu_seconds(pids) - before
        done = sum(count for status, count in steady.statuses.items() if status.split()[-1].isdigit())
        cpu.append((hosts, done, used))
    report["cpu"] = cpu
    return report


def print_report(report: dict[str, Any]) -> None:
    statuses: Counter[str] = report["statuses"]
    total = sum(statuses.values())
    errors = {status: count for status, count in statuses.items() if not status.split()[-1].startswith("2")}
    lines = [
        ("requests", f"{total}"),
        ("errors by status", ", ".join(f"{s}: {c}" for s, c in sorted(errors.items())) or "none"),
        ("writes acknowledged", f"{report['acknowledged']}"),
        ("acknowledged lost (must be 0)", f"{report['lost']}"),
        ("acknowledged duplicated (must be 0)", f"{report['duplicated']}"),
        ("read-your-writes violations (must be 0)", f"{report['ryw']}"),
        (f"rate limit {BURST_LIMIT} over 3 hosts", ", ".join(f"{s}: {c}" for s, c in sorted(report["burst"].items()))),
        ("export via host 1, download via host 3", "asked {}, downloaded {}, {} rows of {}".format(*report["export"])),
        ("replica lag (s)", f"{report['lag']}"),
        ("PostgreSQL connections / web processes", "{} / {}".format(*report["connections"])),
    ]
    for hosts, done, used in report["cpu"]:
        per = f"{used / done * 1000:.2f} ms" if done else "-"
        lines.append((f"CPU per request, {hosts} host(s)", f"{per} ({done} requests, {used:.1f} CPU s)"))
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
