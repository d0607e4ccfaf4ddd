"""GoatCounter's CSV export: POST /api/v0/export, poll it, download it; written by the real db_worker."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import time_machine
from django.conf import settings
from django.core.files.storage import storages
from django.core.management import call_command
from django.db import transaction
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from analytics.models import Export, Hit, Site
from analytics.services import CleanHit, record_hits
from analytics.tasks import LOCK_NAMESPACE, reap_stale_exports, run_export
from analytics.tests.conftest import database_url
from conftest import client_with_key, make_key

ROOT = Path(settings.BASE_DIR)
URL = "/api/v0/export"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
HEADER = [
    "2Path",
    "Title",
    "Event",
    "UserAgent",
    "Browser",
    "System",
    "Session",
    "Bot",
    "Referrer",
    "Referrer scheme",
    "Screen size",
    "Location",
    "FirstVisit",
    "Date",
]
EXPORT_FIELDS = {
    "id",
    "site_id",
    "format",
    "last_hit_id",
    "created_at",
    "finished_at",
    "num_rows",
    "size",
    "hash",
}
VISITOR = uuid.UUID("287fb97c-bed4-e4f0-8e4f-5c975b8fee06")
AWKWARD_TITLE = 'Commas, "quotes",\nand a second line'


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-export": "1/3600", "goatcounter": "600/60"}


@pytest.fixture
def site(alice) -> Site:
    return Site.objects.create(code="alice-blog", owner=alice)


@pytest.fixture
def client(alice, site):
    return client_with_key(make_key(alice, "export"))


def add_hits(site: Site, hits: list[CleanHit]) -> None:
    with transaction.atomic():
        record_hits(site, hits)


def sample_hits(start: datetime = NOW) -> list[CleanHit]:
    return [
        CleanHit(
            path="/",
            title="Home",
            browser="Firefox 133",
            system="Linux",
            size=1920,
            location="NL",
            ref="https://example.com/a",
            ref_scheme="h",
            visitor=VISITOR,
            created_at=start,
        ),
        CleanHit(path="/essay", title=AWKWARD_TITLE, created_at=start + timedelta(seconds=1)),
        CleanHit(
            path="signup-click",
            title="Sign up",
            event=True,
            browser="Chrome 131",
            system="Windows 10",
            location="US-TX",
            ref="newsletter",
            ref_scheme="c",
            visitor=VISITOR,
            created_at=start + timedelta(seconds=2),
        ),
        CleanHit(path="/", title="Home", visitor=VISITOR, size=390, created_at=start + timedelta(minutes=1)),
    ]


def expected_rows(site: Site, after: int = 0) -> list[list[str]]:
    """The CSV rows the site's hits after `after` should give, built from the database by Python."""
    rows = []
    for hit in Hit.objects.filter(site=site, id__gt=after).select_related("path").order_by("id"):
        rows.append(
            [
                hit.path.path,
                hit.path.title,
                "1" if hit.path.event else "0",
                "",
                hit.browser,
                hit.system,
                hit.visitor.hex if hit.visitor else "",
                "0",
                hit.ref,
                hit.ref_scheme,
                f"{hit.size},0,1" if hit.size is not None else "",
                hit.location,
                "1" if hit.first_visit else "0",
                hit.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ]
        )
    return rows


def parse_csv(gzipped: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(gzip.decompress(gzipped).decode(), newline="")))


@pytest.fixture(autouse=True)
def _worker_keeps_the_test_transaction(monkeypatch):
    # Between tasks the worker drops connections not in autocommit, as a request does: in a test that would
    # end the test's transaction. Everything else of the worker runs as in production.
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)


def download(client, export_id: int):
    r = client.get(f"{URL}/{export_id}/download")
    return r, b"".join(r.streaming_content) if r.streaming else r.content


def export_now(client, **body) -> dict:
    r = client.post(URL, body or None, format="json")
    assert r.status_code == 202, r.content
    return r.json()


# --- starting one: owner, outsider, no key, scope -------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_it_starts_an_export_and_answers_the_export_object(client, site):
    r = client.post(URL)
    assert r.status_code == 202
    body = r.json()
    export = Export.objects.get()
    # What has no value yet is left out (GoatCounter's document allows no null there; a client tests
    # `"error" in body`), but finished_at, which GoatCounter sends as null and clients poll for.
    assert body == {
        "id": export.pk,
        "site_id": site.pk,
        "format": "csv",
        "created_at": "2026-03-04T05:06:07Z",
        "finished_at": None,
    }
    assert export.site == site
    assert DBTaskResult.objects.get().args_kwargs["args"] == [
        export.pk
    ]  # queued with the export, in the same transaction


def test_the_export_object_never_shows_a_server_path(client, site):
    add_hits(site, sample_hits())
    export_id = export_now(client)["id"]
    run_worker()
    body = client.get(f"{URL}/{export_id}").json()
    assert EXPORT_FIELDS <= set(body) and "path" not in body and "file" not in body
    name = Export.objects.get().file
    assert name.startswith("goatcounter-export-alice-blog-") and name not in str(body)
    assert storages["exports"].exists(name)  # in the storage every host reads


def test_it_takes_a_cursor(client, site):
    body = export_now(client, start_from_hit_id=42)
    assert body["start_from_hit_id"] == 42
    assert Export.objects.get().start_from_hit_id == 42


def test_it_matches_field_names_in_any_case_as_goatcounters_server_does(client, site):
    body = export_now(client, Start_From_Hit_ID=7, Format="json")
    assert (body["start_from_hit_id"], body["format"]) == (7, "json")
    assert Export.objects.get().start_from_hit_id == 7


@pytest.mark.parametrize(
    ("body", "field"),
    [({"start_from_hit_id": -1}, "start_from_hit_id"), ({"start_from_hit_id": "7"}, "start_from_hit_id")],
)
def test_it_refuses_a_bad_cursor(client, site, body, field):
    r = client.post(URL, body, format="json")
    assert r.status_code == 400
    assert list(r.json()["errors"]) == [field]
    assert not Export.objects.exists()


def test_it_refuses_a_format_it_cannot_write(client, site):
    r = client.post(URL, {"format": "xml"}, format="json")
    assert r.status_code == 400
    assert r.json() == {"errors": {"format": ['Must be "csv" or "json".']}}
    assert not Export.objects.exists()


def test_it_rejects_a_missing_key(anon_client, site):
    r = anon_client.post(URL)
    assert r.status_code == 401
    assert set(r.json()) == {"error"}
    assert not Export.objects.exists()


def test_it_rejects_a_key_without_the_export_scope(alice, site):
    r = client_with_key(make_key(alice, "count", "stats", "sites")).post(URL)
    assert r.status_code == 403
    assert set(r.json()) == {"error"}
    assert "export" in r.json()["error"]
    assert not Export.objects.exists()


def test_an_outsider_exports_only_his_own_site(charlie, site):
    others = Site.objects.create(code="charlie-shop", owner=charlie)
    body = export_now(client_with_key(make_key(charlie, "export")))
    assert body["site_id"] == others.pk
    assert not Export.objects.filter(site=site).exists()


def test_an_outsider_without_a_site_gets_no_export(charlie, site):
    r = client_with_key(make_key(charlie, "export")).post(URL)
    assert r.status_code == 400
    assert "site" in r.json()["errors"]
    assert not Export.objects.exists()


# --- reading one ----------------------------------------------------------------------------------


def test_it_shows_the_owner_the_export(client, site):
    export_id = export_now(client)["id"]
    r = client.get(f"{URL}/{export_id}")
    assert r.status_code == 200
    assert r.json()["id"] == export_id
    assert r.json()["finished_at"] is None


def test_an_outsider_cannot_see_or_download_anothers_export(client, charlie, site):
    Site.objects.create(code="charlie-shop", owner=charlie)
    export_id = export_now(client)["id"]
    outsider = client_with_key(make_key(charlie, "export"))
    for url in (f"{URL}/{export_id}", f"{URL}/{export_id}/download"):
        r = outsider.get(url)
        assert r.status_code == 404
        assert set(r.json()) == {"error"}


def test_it_answers_404_for_an_export_that_does_not_exist(client, site):
    r = client.get(f"{URL}/999999")
    assert r.status_code == 404
    assert set(r.json()) == {"error"}


def test_reading_needs_the_export_scope(alice, client, site):
    export_id = export_now(client)["id"]
    r = client_with_key(make_key(alice, "stats")).get(f"{URL}/{export_id}")
    assert r.status_code == 403
    assert set(r.json()) == {"error"}


# --- downloading: 202 while running, 200 gzip, 410 expired, 409 failed ------------------------------


def test_download_says_202_while_the_export_runs(client, site):
    export_id = export_now(client)["id"]
    r, _ = download(client, export_id)
    assert r.status_code == 202
    assert set(r.json()) == {"status"}  # a 2xx never has an error


def test_download_of_a_finished_export_is_the_gzipd_csv(client, site):
    add_hits(site, sample_hits())
    export_id = export_now(client)["id"]
    run_worker()
    r, body = download(client, export_id)
    assert r.status_code == 200
    assert r["Content-Type"] == "application/gzip"
    assert r["Content-Disposition"].startswith('attachment; filename="goatcounter-export-alice-blog-')
    assert parse_csv(body)[0] == HEADER


def test_download_of_a_failed_export_is_409_with_the_error(client, site):
    export_id = export_now(client)["id"]
    Export.objects.filter(pk=export_id).update(error="The export failed (OSError); start a new one.", finished_at=NOW)
    r, _ = download(client, export_id)
    assert r.status_code == 409
    assert r.json() == {"error": "The export failed (OSError); start a new one."}


def test_download_of_an_expired_export_is_410_and_prune_deletes_the_file(client, site):
    add_hits(site, sample_hits())
    export_id = export_now(client)["id"]
    run_worker()
    name = Export.objects.get().file
    assert storages["exports"].exists(name)
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=settings.EXPORT_TTL_SECONDS + 1)):
        r, _ = download(client, export_id)
        assert r.status_code == 410
        assert set(r.json()) == {"error"}
        call_command("prune", stdout=io.StringIO())
    assert not storages["exports"].exists(name)
    assert Export.objects.get().file == ""
    r, _ = download(client, export_id)
    assert r.status_code == 410
    assert client.get(f"{URL}/{export_id}").json()["num_rows"] == 4  # the export object stays


def test_a_failure_while_writing_is_recorded_and_leaves_no_partial_file(client, site, tmp_path, monkeypatch):
    add_hits(site, sample_hits())
    export_id = export_now(client)["id"]
    (tmp_path / "tmp").write_text("a file where the worker's temporary directory should be")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    run_worker()
    export = Export.objects.get()
    assert export.finished_at is not None
    assert export.error.startswith("The export failed")
    body = client.get(f"{URL}/{export_id}").json()
    assert body["error"] == export.error and body["finished_at"] is not None
    r, _ = download(client, export_id)
    assert r.status_code == 409


def test_a_full_disk_fails_the_export_and_leaves_no_partial_file(client, site, settings, monkeypatch):
    add_hits(site, sample_hits())
    export_id = export_now(client)["id"]

    def disk_full(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gzip.GzipFile, "write", disk_full)
    run_worker()
    export = Export.objects.get()
    assert export.error == "The export failed (OSError); start a new one."
    assert export.finished_at is not None
    assert storages["exports"].listdir("") == ([], [])
    r, _ = download(client, export_id)
    assert r.status_code == 409
    assert r.json() == {"error": export.error}


# --- what the worker writes -----------------------------------------------------------------------


def test_the_worker_writes_every_hit_as_goatcounters_csv(client, site, charlie):
    add_hits(site, sample_hits())
    add_hits(Site.objects.create(code="charlie-shop", owner=charlie), [CleanHit(path="/not-alices")])
    export_id = export_now(client)["id"]
    assert client.get(f"{URL}/{export_id}").json()["finished_at"] is None
    run_worker()

    _, body = download(client, export_id)
    rows = parse_csv(body)
    assert rows[0] == HEADER
    assert rows[1:] == expected_rows(site)
    assert rows[1] == [
        "/",
        "Home",
        "0",
        "",
        "Firefox 133",
        "Linux",
        "287fb97cbed4e4f08e4f5c975b8fee06",
        "0",
        "https://example.com/a",
        "h",
        "1920,0,1",
        "NL",
        "1",
        "2026-03-04T05:06:07Z",
    ]
    assert rows[2][:3] == ["/essay", AWKWARD_TITLE, "0"]  # commas, quotes and a newline survive
    assert rows[3][:3] == ["signup-click", "Sign up", "1"]
    assert rows[4][10] == "390,0,1" and rows[4][12] == "0"  # the same visitor's second view of /

    export = Export.objects.get()
    shown = client.get(f"{URL}/{export_id}").json()
    last = Hit.objects.filter(site=site).order_by("id").last().pk
    assert shown["finished_at"] is not None and "error" not in shown
    assert shown["num_rows"] == export.num_rows == 4
    assert shown["last_hit_id"] == export.last_hit_id == last
    assert shown["hash"] == f"sha256-{hashlib.sha256(body).hexdigest()}"
    assert shown["size"] == "0.1"  # MB, rounded up as GoatCounter
    assert storages["exports"].size(export.file) == len(body)


def test_the_worker_writes_the_same_rows_as_json_when_asked(client, site, charlie):
    add_hits(site, sample_hits())
    add_hits(Site.objects.create(code="charlie-shop", owner=charlie), [CleanHit(path="/not-alices")])
    started = export_now(client, format="json")
    assert started["format"] == "json"
    run_worker()

    r, body = download(client, started["id"])
    assert r.status_code == 200 and r["Content-Type"] == "application/gzip"
    assert ".json.gz" in r["Content-Disposition"]
    rows = json.loads(gzip.decompress(body))
    as_csv = [
        [
            row["path"],
            row["title"],
            "1" if row["event"] else "0",
            row["user_agent"] or "",
            row["browser"],
            row["system"],
            row["session"] or "",
            str(row["bot"]),
            row["ref"],
            row["ref_scheme"] or "",
            row["size"] or "",
            row["location"] or "",
            "1" if row["first_visit"] else "0",
            row["created_at"],
        ]
        for row in rows
    ]
    assert as_csv == expected_rows(site)
    assert rows[1]["title"] == AWKWARD_TITLE
    export = Export.objects.get()
    shown = client.get(f"{URL}/{started['id']}").json()
    assert (shown["format"], shown["num_rows"], export.num_rows) == ("json", 4, 4)
    assert shown["hash"] == f"sha256-{hashlib.sha256(body).hexdigest()}"


def test_a_json_export_of_no_hits_is_an_empty_list(client, site):
    export_id = export_now(client, format="json")["id"]
    run_worker()
    _, body = download(client, export_id)
    assert json.loads(gzip.decompress(body)) == []


def test_it_exports_from_a_day_on(client, site):
    add_hits(site, sample_hits(NOW - timedelta(days=2)) + sample_hits(NOW))
    started = export_now(client, format="json", start_from_day="2026-03-04T10:00:00Z")
    assert started["start_from_day"] == "2026-03-04T00:00:00Z"  # the day's start, as GoatCounter
    run_worker()
    _, body = download(client, started["id"])
    assert [row["created_at"][:10] for row in json.loads(gzip.decompress(body))] == ["2026-03-04"] * 4


def test_an_export_of_no_hits_has_only_the_header(client, site):
    export_id = export_now(client)["id"]
    run_worker()
    _, body = download(client, export_id)
    assert parse_csv(body) == [HEADER]
    shown = client.get(f"{URL}/{export_id}").json()
    assert shown["num_rows"] == 0 and "last_hit_id" not in shown


def test_last_hit_id_is_a_cursor_for_the_newer_hits(client, site, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-export": "10/3600"}
    add_hits(site, sample_hits())
    first = export_now(client)["id"]
    run_worker()
    cursor = client.get(f"{URL}/{first}").json()["last_hit_id"]

    add_hits(site, [CleanHit(path="/new", title="New, page", created_at=NOW + timedelta(days=1))])
    add_hits(site, [CleanHit(path="/newer", created_at=NOW + timedelta(days=2))])
    second = export_now(client, start_from_hit_id=cursor)["id"]
    run_worker()
    _, body = download(client, second)
    rows = parse_csv(body)
    assert [row[0] for row in rows[1:]] == ["/new", "/newer"]
    assert rows[1:] == expected_rows(site, after=cursor)
    shown = client.get(f"{URL}/{second}").json()
    assert shown["start_from_hit_id"] == cursor
    assert shown["num_rows"] == 2
    assert shown["last_hit_id"] == Hit.objects.filter(site=site).order_by("id").last().pk

    third = export_now(client, start_from_hit_id=shown["last_hit_id"])["id"]
    run_worker()
    _, body = download(client, third)
    assert parse_csv(body) == [HEADER]
    again = client.get(f"{URL}/{third}").json()
    assert (again["num_rows"], again["last_hit_id"]) == (0, shown["last_hit_id"])  # the cursor is kept


def test_hits_sent_through_the_count_api_come_back_in_the_export(alice, site):
    client = client_with_key(make_key(alice, "count", "export"))
    hits = [
        {"path": "/one", "title": 'Say "hi", then\nleave', "session": "s1", "size": [1280], "location": "DE"},
        {"path": "/two", "ref": "https://news.example.com/item?id=1", "session": "s1"},
        {"path": "click", "event": True, "session": "s2"},
    ]
    assert client.post("/api/v0/count", {"hits": hits}, format="json").status_code == 202
    export_id = export_now(client)["id"]
    run_worker()
    _, body = download(client, export_id)
    rows = parse_csv(body)
    assert rows[1:] == expected_rows(site)
    assert [(row[0], row[1], row[2]) for row in rows[1:]] == [
        ("/one", 'Say "hi", then\nleave', "0"),
        ("/two", "", "0"),
        ("click", "", "1"),
    ]


# --- rate limit -----------------------------------------------------------------------------------


def test_a_second_export_within_the_hour_is_429_for_any_key_of_the_site(alice, client, site, charlie):
    export_now(client)
    for key in (client, client_with_key(make_key(alice, "export"))):
        r = key.post(URL)
        assert r.status_code == 429
        assert set(r.json()) == {"error"}
        assert 0 < int(r["Retry-After"]) <= 3600
        assert (r["X-Rate-Limit-Limit"], r["X-Rate-Limit-Remaining"]) == ("1", "0")
        assert 0 < int(r["X-Rate-Limit-Reset"]) <= 3600
    assert Export.objects.count() == 1

    Site.objects.create(code="charlie-shop", owner=charlie)
    assert client_with_key(make_key(charlie, "export")).post(URL).status_code == 202  # another site


def test_reading_an_export_is_not_limited_to_one_an_hour(client, site):
    export_id = export_now(client)["id"]
    for _ in range(3):
        assert client.get(f"{URL}/{export_id}").status_code == 200


def test_a_refused_request_does_not_use_up_the_hour(client, site):
    assert client.post(URL, {"format": "xml"}, format="json").status_code == 400
    assert client.post(URL).status_code == 202


# --- a worker that dies mid-export ----------------------------------------------------------------


def db_url() -> str:
    return database_url()


def advisory_lock_held(export_id: int) -> bool:
    with psycopg.connect(db_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND granted",
            [LOCK_NAMESPACE, export_id],
        ).fetchone()
        assert row is not None
        return row[0] > 0


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        time.sleep(0.05)


HOLD_LOCK = """
import sys, time, psycopg
connection = psycopg.connect(sys.argv[1], autocommit=True)
connection.execute("SELECT pg_advisory_lock(%s, %s)", [int(sys.argv[2]), int(sys.argv[3])])
print("locked", flush=True)
time.sleep(60)
"""


def test_an_export_whose_worker_is_alive_is_left_alone_and_rerun_once_it_dies(client, site):
    add_hits(site, sample_hits())
    export_id = export_now(client)["id"]
    Export.objects.filter(pk=export_id).update(started_at=NOW, attempts=1)  # a worker took it...
    holder = subprocess.Popen(  # ...and is still writing it: it holds the export's advisory lock
        [
            sys.executable,
            "-c",
            HOLD_LOCK,
            db_url(),
            str(LOCK_NAMESPACE),
            str(export_id),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        body = client.get(f"{URL}/{export_id}").json()
        assert body["finished_at"] is None
        assert Export.objects.get().started_at is not None  # not taken from under a live worker
        assert DBTaskResult.objects.count() == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    wait_for(lambda: not advisory_lock_held(export_id))

    assert client.get(f"{URL}/{export_id}").json()["finished_at"] is None
    export = Export.objects.get()
    assert export.started_at is None and export.attempts == 1  # queued again
    assert DBTaskResult.objects.count() == 2

    run_worker()
    shown = client.get(f"{URL}/{export_id}").json()
    assert shown["finished_at"] is not None and "error" not in shown
    assert shown["num_rows"] == 4
    assert Export.objects.get().attempts == 2


def test_an_export_interrupted_too_often_ends_failed_so_the_poll_loop_stops(client, site, settings):
    settings.EXPORT_MAX_ATTEMPTS = 2
    export_id = export_now(client)["id"]
    Export.objects.filter(pk=export_id).update(started_at=NOW, attempts=2)  # killed twice
    body = client.get(f"{URL}/{export_id}").json()
    assert body["finished_at"] is not None
    assert "interrupted 2 times" in body["error"]
    r, _ = download(client, export_id)
    assert r.status_code == 409
    assert r.json() == {"error": body["error"]}
    assert reap_stale_exports() == 0  # finished for good


def test_a_queued_job_for_a_failed_export_does_nothing(client, site):
    export_id = export_now(client)["id"]
    Export.objects.filter(pk=export_id).update(error="gave up", finished_at=NOW)
    run_export.call(export_id)
    export = Export.objects.get()
    assert (export.error, export.attempts, export.file) == ("gave up", 0, "")


def subprocess_env(export_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url(),
        "SECRET_KEY": "test-only-secret",
        "DEBUG": "",
        "REDIS_URL": "",
        "EXPORT_DIR": str(export_dir),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "API_KEY_CACHE_SECONDS": "0",
        "CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
    }


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--no-reload", "--interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_worker_while_blocked(env: dict[str, str], export_id: int, lock: str, ready=lambda: True) -> None:
    """Start the real worker and SIGKILL it where `lock`, taken by another connection first, keeps it waiting
    (holding the export's advisory lock, and once ready() is true)."""
    blocker = psycopg.connect(db_url())
    blocker.execute(lock)
    worker = start_worker(env)
    try:
        wait_for(lambda: advisory_lock_held(export_id) and ready(), timeout=30)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        worker.kill()
        blocker.rollback()
        blocker.close()
    wait_for(lambda: not advisory_lock_held(export_id))


def kill_worker_mid_export(env: dict[str, str], export_id: int) -> None:
    """SIGKILL the real worker while it writes the export (started, lock held, file half-written)."""
    # An insert in flight keeps the worker waiting half-way (it waits for the hits before the cursor to commit).
    # The lock is taken a moment before the export is marked started: wait for both.
    kill_worker_while_blocked(
        env,
        export_id,
        f"LOCK TABLE {Hit._meta.db_table} IN ROW EXCLUSIVE MODE",
        ready=lambda: Export.objects.get(pk=export_id).started_at is not None,
    )


def reap(how: str, client, export_id: int) -> None:
    """What notices a dead worker's export by itself: the owner's poll loop, or the hourly `manage.py prune`."""
    if how == "poll":
        assert client.get(f"{URL}/{export_id}").json()["finished_at"] is None
    else:
        call_command("prune", stdout=io.StringIO())


def finish_with_real_worker(env: dict[str, str], export_id: int) -> Export:
    """Run the real worker until the export is finished (done or failed), as a deployment's worker would."""
    worker = start_worker(env)
    try:
        wait_for(lambda: Export.objects.get(pk=export_id).finished_at is not None, timeout=60)
    finally:
        worker.terminate()
        worker.wait(timeout=10)
    return Export.objects.get(pk=export_id)


@pytest.mark.parametrize("reaped_by", ["poll", "prune"])
def test_a_worker_killed_mid_export_is_reaped_and_the_export_finishes(
    transactional_db, client, site, settings, reaped_by
):
    add_hits(site, [CleanHit(path=f"/page/{i}", title=f"Page {i}") for i in range(2000)])
    export_id = export_now(client)["id"]
    env = subprocess_env(settings.EXPORT_DIR)
    kill_worker_mid_export(env, export_id)
    assert not DBTaskResult.objects.ready().exists()  # its job was taken by the worker that died
    reap(reaped_by, client, export_id)
    reaped = Export.objects.get()
    assert (reaped.started_at, reaped.attempts) == (None, 1)  # queued again
    assert DBTaskResult.objects.ready().count() == 1
    assert storages["exports"].listdir("") == ([], [])  # the killed worker stored nothing

    finished = finish_with_real_worker(env, export_id)
    assert (finished.error, finished.num_rows, finished.attempts) == ("", 2000, 2)
    shown = client.get(f"{URL}/{export_id}").json()
    assert shown["finished_at"] is not None and "error" not in shown
    _, body = download(client, export_id)
    assert parse_csv(body)[1:] == expected_rows(site)
    assert storages["exports"].listdir("") == ([], [finished.file])  # the one finished file


def test_an_export_whose_worker_is_killed_every_time_ends_failed_by_itself(transactional_db, client, site, settings):
    settings.EXPORT_MAX_ATTEMPTS = 2
    add_hits(site, [CleanHit(path=f"/page/{i}") for i in range(200)])
    export_id = export_now(client)["id"]
    env = subprocess_env(settings.EXPORT_DIR)
    for attempt in (1, 2):
        kill_worker_mid_export(env, export_id)
        assert Export.objects.get().attempts == attempt
        call_command("prune", stdout=io.StringIO())  # the first time queued again, the second time failed

    failed = Export.objects.get()
    assert failed.finished_at is not None and "interrupted 2 times" in failed.error
    assert not DBTaskResult.objects.ready().exists()  # not queued a third time
    shown = client.get(f"{URL}/{export_id}").json()
    assert shown["finished_at"] is not None and "interrupted 2 times" in shown["error"]  # the poll loop stops
    r, _ = download(client, export_id)
    assert r.status_code == 409
    out = io.StringIO()
    call_command("prune", stdout=out)
    assert "0 interrupted exports" in out.getvalue()  # finished for good
    assert storages["exports"].listdir("") == ([], [])


def test_an_export_whose_worker_dies_before_starting_it_is_queued_again(transactional_db, client, site, settings):
    """Killed after taking the job from the queue but before marking the export started: the job is gone
    (RUNNING for ever), the export looks queued, and without a reap nothing would ever run it."""
    add_hits(site, sample_hits())
    export_id = export_now(client)["id"]
    env = subprocess_env(settings.EXPORT_DIR)
    # A lock on the export table keeps the worker waiting after it took the job (and the export's advisory
    # lock), when it reads the export. (Not a row lock: an UPDATE sent before the kill would still commit.)
    kill_worker_while_blocked(env, export_id, f"LOCK TABLE {Export._meta.db_table} IN ACCESS EXCLUSIVE MODE")
    export = Export.objects.get()
    assert (export.started_at, export.finished_at, export.attempts) == (None, None, 0)
    assert not DBTaskResult.objects.ready().exists()

    call_command("prune", stdout=io.StringIO())
    assert DBTaskResult.objects.ready().count() == 1
    finished = finish_with_real_worker(env, export_id)
    assert (finished.error, finished.num_rows, finished.attempts) == ("", 4, 1)


def test_a_poll_does_not_queue_an_export_waiting_for_a_worker_again(client, site):
    export_id = export_now(client)["id"]
    for _ in range(3):
        assert client.get(f"{URL}/{export_id}").json()["finished_at"] is None
    assert reap_stale_exports() == 0
    assert DBTaskResult.objects.count() == 1  # its one job, still waiting


# --- the seed's shell loop against a real server and worker -----------------------------------------


SEED_SCRIPT = """\
token={token}
api=http://127.0.0.1:{port}/api/v0
curl() {{
    \\command curl --silent \\
        -H 'Content-Type: application/json' \\
        -H "Authorization: Bearer $token" \\
        $@
}}

# Start a new export, get ID from response object.
id=$(curl -X POST "$api/export" | jq .id)

# The export is started in the background, so we'll need to wait until it's finished.
while :; do
    sleep 1

    finished=$(curl "$api/export/$id" | jq .finished_at)
    if [ "$finished" != "null" ]; then
        # Download the export.
        curl "$api/export/$id/download" | gzip -d

        break
    fi
done
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_seeds_shell_loop_downloads_the_hits(transactional_db, alice, site, settings):
    add_hits(site, sample_hits())
    token = make_key(alice, "export")
    port = free_port()
    env = subprocess_env(settings.EXPORT_DIR)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "logsvc.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = start_worker(env)
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, timeout=20)
        script = textwrap.dedent(SEED_SCRIPT).format(token=token, port=port)
        done = subprocess.run(["bash", "-c", script], capture_output=True, timeout=30, check=True)
    finally:
        for process in (server, worker):
            process.terminate()
        for process in (server, worker):
            process.wait(timeout=10)
    rows = list(csv.reader(io.StringIO(done.stdout.decode(), newline="")))
    assert rows[0] == HEADER
    assert rows[1:] == expected_rows(site)
    assert Export.objects.get().num_rows == 4
