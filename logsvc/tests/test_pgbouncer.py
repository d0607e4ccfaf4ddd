"""The web tier through pgbouncer in transaction mode (README "Connection pooling"): Debian's pgbouncer, started
here, two servers of two workers each sharing two PostgreSQL connections, the worker connected directly."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings

from analytics.models import Export, Site
from analytics.tests.conftest import database_url
from analytics.tests.test_ratelimit_processes import free_port, server_env, start_servers
from conftest import make_key

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
POOL_SIZE = 2
pytestmark = [
    pytest.mark.skipif(not os.path.exists(PGBOUNCER), reason="needs Debian's pgbouncer"),
    # The embedded PostgreSQL listens only on a socket in this checkout's var/, which pgbouncer (it runs as nobody
    # under root) cannot reach; the machine's PostgreSQL (CI, DATABASE_URL) is reached over TCP.
    pytest.mark.skipif(
        not os.getenv("DATABASE_URL"), reason="needs a PostgreSQL server over TCP (DATABASE_URL), not the embedded one"
    ),
]


@pytest.fixture
def pgbouncer() -> Iterator[int]:
    """pgbouncer in transaction mode in front of the test database's server; its port."""
    db = settings.DATABASES["default"]
    folder = Path(tempfile.mkdtemp(prefix="logsvc-pgbouncer-"))
    folder.chmod(0o755)
    port = free_port()
    (folder / "users.txt").write_text(f'"{db["USER"]}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={db.get("HOST") or "127.0.0.1"} port={db.get("PORT") or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 200
admin_users = {db["USER"]}
"""
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses to run as root
    process = subprocess.Popen(
        [PGBOUNCER, *user, str(folder / "pgbouncer.ini")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(0.5)
    yield port
    process.send_signal(signal.SIGINT)
    process.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


def show(port: int, what: str) -> list[list[str]]:
    """Rows of pgbouncer's admin console (SHOW SERVERS, SHOW POOLS)."""
    db = settings.DATABASES["default"]
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", db["USER"], "-At", "-F", "\t", "pgbouncer", "-c", what],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def test_the_web_tier_works_through_pgbouncer_in_transaction_mode(request, alice, transactional_db, pgbouncer):
    site = Site.objects.create(code="alice-blog", owner=alice)
    events, export = make_key(alice, "events:write", "events:read"), make_key(alice, "export")
    direct = database_url()
    pooled = direct.replace(f":{settings.DATABASES['default'].get('PORT') or 5432}/", f":{pgbouncer}/")
    assert pooled != direct
    env = server_env(DATABASE_URL=pooled, DATABASE_PREPARED_STATEMENTS="false", CONN_MAX_AGE="60")
    bases = start_servers(request, 2, env, workers=2)

    statuses: list[int] = []
    for n in range(40):  # Bytelog's hot path (group commit) and Django's lists, alternately on both servers
        base = bases[n % 2]
        body = {"id": n, "name": "signup", "trace_id": f"t-{n}", "date": "2026-03-04T05:06:07Z", "data": {}}
        auth = {"Authorization": f"Bearer {events}"}
        statuses.append(requests.post(f"{base}/api/v1/events", json=body, headers=auth, timeout=10).status_code)
        statuses.append(requests.get(f"{base}/api/v1/events", headers=auth, timeout=10).status_code)
    assert set(statuses[::2]) == {201} and set(statuses[1::2]) == {200}
    listed = requests.get(f"{bases[0]}/api/v1/events?limit=100", headers={"Authorization": f"Bearer {events}"})
    assert listed.json()["count"] == 40

    # An export: asked for through one server, polled (the poll's transaction lock) before any worker runs, written
    # by the real worker on a direct connection, downloaded through the other server.
    auth = {"Authorization": f"Bearer {export}"}
    r = requests.post(f"{bases[0]}/api/v0/export", json={}, headers=auth, timeout=10)
    assert r.status_code == 202, r.text
    export_id = r.json()["id"]
    for _ in range(3):
        assert (
            requests.get(f"{bases[1]}/api/v0/export/{export_id}", headers=auth, timeout=10).json()["finished_at"]
            is None
        )
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "-v0"],
        cwd=settings.BASE_DIR,
        env={**env, "DATABASE_URL": direct},
    )
    assert worker.wait(timeout=60) == 0
    finished = Export.objects.get(pk=export_id)
    assert finished.finished_at is not None and finished.error == "", finished.error
    r = requests.get(f"{bases[1]}/api/v0/export/{export_id}/download", headers=auth, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(r.content))
    assert gzip.decompress(r.content).startswith(b"2Path,Title,Event")

    servers = [
        row for row in show(pgbouncer, "SHOW SERVERS") if row[2] == settings.DATABASES["default"]["NAME"]
    ]  # type, user, database
    assert 0 < len(servers) <= POOL_SIZE  # eight web workers' connections, two of PostgreSQL's
    assert Site.objects.get(pk=site.pk).code == "alice-blog"
