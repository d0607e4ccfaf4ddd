"""A read replica (DATABASE_REPLICA_URL): real servers, reading from a real second database.

The "replica" is a copy of the test database (CREATE DATABASE ... TEMPLATE) taken before the writes: a read the
server sends there does not see them, which is how a test tells where a read went. Its heartbeat says how far
behind it is: left as copied it is "keeping up" (DATABASE_REPLICA_MAX_LAG is large), set an hour back it is
behind. The worker's exports read through it the same way. A real streaming standby is bench/topology.py's.
"""

from __future__ import annotations

import csv
import gzip
import io
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
from django.conf import settings
from django.core.files.storage import storages
from django.db import connections, transaction

from analytics.models import Export, Site
from analytics.services import CleanHit, record_hits
from analytics.tasks import run_export
from analytics.tests.conftest import database_url
from analytics.tests.test_ratelimit_processes import server_env, start_servers
from conftest import make_key
from logsvc import replica

EVENTS = "/api/v1/events"


def admin_url(name: str = "postgres") -> str:
    """database_url() naming another database: a server's, or the embedded one's (its socket in the query)."""
    return urlunsplit(urlsplit(database_url())._replace(path=f"/{name}"))


@pytest.fixture
def replica_copy(transactional_db) -> Iterator[str]:
    """A function making the copy of the test database as it is now (committed); its URL."""
    made: list[str] = []

    def copy() -> str:
        name = f"{connections['default'].settings_dict['NAME']}_replica_{uuid.uuid4().hex[:8]}"
        connections.close_all()  # a template may have no other sessions
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{connections["default"].settings_dict["NAME"]}"')
        made.append(name)
        return admin_url(name)

    yield copy  # type: ignore[misc]
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def events_seen(base: str, key: str) -> int:
    r = requests.get(f"{base}{EVENTS}", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["count"]


def post_event(base: str, key: str) -> None:
    body: dict[str, Any] = {"id": 1, "name": "signup", "trace_id": "t-1", "date": "2026-03-04T05:06:07Z", "data": {}}
    r = requests.post(f"{base}{EVENTS}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 201, r.text


def health(base: str) -> dict:
    r = requests.get(f"{base}/healthz", timeout=10)
    assert r.status_code == 200
    return r.json()


def test_reads_go_to_a_replica_that_keeps_up_and_a_writer_reads_its_own_writes(request, alice, replica_copy):
    writer, reader = make_key(alice, "events:write", "events:read"), make_key(alice, "events:read")
    replica.stamp_heartbeat()  # the copy gets a fresh heartbeat: it is "up to date" when made
    url = replica_copy()
    [base] = start_servers(request, 1, server_env(DATABASE_REPLICA_URL=url, DATABASE_REPLICA_MAX_LAG="600"))

    post_event(base, writer)
    assert events_seen(base, writer) == 1  # its own write, from the primary
    assert events_seen(base, reader) == 0  # another client: the replica, which lacks it
    shown = health(base)
    assert shown["replica"] == "ok" and shown["status"] == "ok"
    assert 0 <= shown["replica_lag_seconds"] < 600

    # Loggator: anyone with the id reads the event; the replica's miss is looked for on the primary
    uid = requests.get(f"{base}{EVENTS}", headers={"Authorization": f"Bearer {writer}"}, timeout=10).json()
    uid = uid["events"][0]["url"].rsplit("/", 1)[1].removesuffix(".json")
    r = requests.get(f"{base}/api/events/{uid}.json", timeout=10)
    assert r.status_code == 200 and r.json()["name"] == "signup"

    # The replica falls an hour behind: every read goes to the primary once the server has measured it.
    with psycopg.connect(url, autocommit=True) as copy:
        copy.execute("UPDATE logsvc_replicaheartbeat SET at = at - interval '1 hour'")
    time.sleep(replica.CHECK_SECONDS + 0.2)
    assert events_seen(base, reader) == 1
    shown = health(base)
    assert shown["status"] == "degraded" and "behind" in shown["replica"]
    assert shown["replica_lag_seconds"] > 3000


def test_a_replica_that_goes_away_mid_use_is_read_around(request, alice, replica_copy):
    writer, reader = make_key(alice, "events:write", "events:read"), make_key(alice, "events:read")
    replica.stamp_heartbeat()
    url = replica_copy()
    [base] = start_servers(request, 1, server_env(DATABASE_REPLICA_URL=url, DATABASE_REPLICA_MAX_LAG="600"))
    post_event(base, writer)
    assert events_seen(base, reader) == 0  # from the replica

    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{urlsplit(url).path[1:]}" WITH (FORCE)')  # its connections cut too
    assert events_seen(base, reader) == 1  # the failed read answered from the primary, not a 500
    assert events_seen(base, reader) == 1
    shown = health(base)
    assert shown["status"] == "degraded" and shown["replica"].startswith("unreachable")
    assert shown["replica_lag_seconds"] is None


def test_an_unreachable_replica_leaves_reads_on_the_primary(request, alice, transactional_db):
    writer, reader = make_key(alice, "events:write", "events:read"), make_key(alice, "events:read")
    unreachable = admin_url().rsplit("@", 1)[0] + "@127.0.0.1:1/nothing"
    [base] = start_servers(request, 1, server_env(DATABASE_REPLICA_URL=unreachable))
    post_event(base, writer)
    started = time.monotonic()
    assert events_seen(base, reader) == 1
    assert events_seen(base, reader) == 1
    assert time.monotonic() - started < 5  # a refused connection costs nothing that a client notices
    shown = health(base)
    assert shown["status"] == "degraded" and shown["replica"].startswith("unreachable")


def run_worker(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "-v0"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def exported_titles(export: Export) -> set[str]:
    export.refresh_from_db()
    assert export.error == "" and export.finished_at is not None
    with storages["exports"].open(export.file) as stored:
        rows = list(csv.reader(io.StringIO(gzip.decompress(stored.read()).decode())))
    return {row[1] for row in rows[1:]}


def test_an_export_reads_its_hits_from_a_replica_that_has_them_else_from_the_primary(alice, replica_copy):
    site = Site.objects.create(code="alice-blog", owner=alice)
    with transaction.atomic():
        record_hits(site, [CleanHit(path="/", title="Home"), CleanHit(path="/about", title="Home")])
    replica.stamp_heartbeat()
    url = replica_copy()
    with psycopg.connect(url, autocommit=True) as copy:  # what only the replica says, to tell where a read went
        copy.execute("UPDATE analytics_path SET title = 'from the replica'")
        copy.execute("UPDATE logsvc_replicaheartbeat SET at = now() + interval '1 hour'")  # it has every commit
    env = server_env(DATABASE_REPLICA_URL=url, DATABASE_REPLICA_MAX_LAG="5")

    first = Export.objects.create(site=site)
    run_export.enqueue(first.pk)
    run_worker(env)
    assert exported_titles(first) == {"from the replica"}

    with psycopg.connect(url, autocommit=True) as copy:
        copy.execute("UPDATE logsvc_replicaheartbeat SET at = now() - interval '1 hour'")  # an hour behind
    second = Export.objects.create(site=site)
    run_export.enqueue(second.pk)
    run_worker(env)
    assert exported_titles(second) == {"Home"}  # the primary's
