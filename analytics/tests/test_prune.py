"""manage.py prune, GoatCounter's part: expired export files, interrupted exports, bot hits, visitor data."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from analytics.models import BotHit, Export, Path, Salt, Site, VisitorPath
from analytics.tasks import run_export

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path
    settings.EXPORT_TTL_SECONDS = 24 * 60 * 60
    settings.BOT_HIT_DAYS = 30
    settings.EXPORT_MAX_ATTEMPTS = 3


@pytest.fixture
def site(alice) -> Site:
    return Site.objects.create(code="alice-blog", owner=alice)


def prune() -> str:
    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("prune", stdout=out)
    return out.getvalue()


def finished_export(site: Site, name: str, finished_at: datetime) -> Export:
    name = storages["exports"].save(name, ContentFile(b"gzip'd csv"))
    return Export.objects.create(site=site, finished_at=finished_at, num_rows=1, file=name)


def test_it_deletes_expired_export_files_and_keeps_fresh_ones(site, tmp_path, api_client):
    old = finished_export(site, "old.csv.gz", NOW - timedelta(hours=25))
    fresh = finished_export(site, "fresh.csv.gz", NOW - timedelta(hours=23))

    out = prune()

    assert not storages["exports"].exists("old.csv.gz")
    assert storages["exports"].exists("fresh.csv.gz")
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.file, old.num_rows) == ("", 1)  # the export object stays, its download answers 410
    assert fresh.file == "fresh.csv.gz"
    assert "Deleted 1 expired export files" in out
    with time_machine.travel(NOW, tick=False):
        assert api_client.get(f"/api/v0/export/{old.pk}/download").status_code == 410


def test_an_expired_export_whose_file_is_already_gone_is_no_error(site, tmp_path):
    gone = Export.objects.create(site=site, finished_at=NOW - timedelta(days=2), file="gone.csv.gz")
    assert "Deleted 1 expired export files" in prune()
    gone.refresh_from_db()
    assert gone.file == ""


def test_it_requeues_an_interrupted_export_and_fails_one_interrupted_too_often(site):
    interrupted = Export.objects.create(site=site, started_at=NOW - timedelta(minutes=5), attempts=1)
    given_up = Export.objects.create(site=site, started_at=NOW - timedelta(minutes=5), attempts=3)
    queued = Export.objects.create(site=site)  # waits for a worker, its job queued: not the reaper's
    run_export.enqueue(queued.pk)

    out = prune()

    interrupted.refresh_from_db()
    given_up.refresh_from_db()
    queued.refresh_from_db()
    assert (interrupted.started_at, interrupted.finished_at, interrupted.error) == (None, None, "")
    exports = DBTaskResult.objects.filter(task_path=run_export.module_path)  # (prune queues retention's pass too)
    assert sorted(task.args_kwargs["args"] for task in exports) == [[interrupted.pk], [queued.pk]]
    assert given_up.finished_at == NOW
    assert "interrupted 3 times" in given_up.error
    assert (queued.started_at, queued.finished_at) == (None, None)
    assert "2 interrupted exports queued again or failed" in out


def test_it_deletes_bot_hits_older_than_bot_hit_days(site):
    BotHit.objects.create(site=site, path="/old", bot=3, created_at=NOW - timedelta(days=30, seconds=1))
    BotHit.objects.create(site=site, path="/recent", bot=3, created_at=NOW - timedelta(days=29, hours=23))

    out = prune()

    assert list(BotHit.objects.values_list("path", flat=True)) == ["/recent"]
    assert "1 old bot hits" in out


def test_it_deletes_visitor_paths_older_than_a_day(site):
    path = Path.objects.create(site=site, path="/")
    VisitorPath.objects.create(visitor=uuid.uuid4(), path=path, created_at=NOW - timedelta(days=1, seconds=1))
    recent = VisitorPath.objects.create(visitor=uuid.uuid4(), path=path, created_at=NOW - timedelta(hours=23))

    out = prune()

    assert list(VisitorPath.objects.values_list("visitor", flat=True)) == [recent.visitor]
    assert "1 visitor paths" in out


def test_it_deletes_the_salts_of_past_days_and_keeps_todays(db):
    for day in (date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)):
        Salt.objects.create(day=day, value=b"\0" * 32)

    out = prune()

    assert list(Salt.objects.values_list("day", flat=True)) == [date(2026, 3, 4)]
    assert "2 past days' salts" in out


def test_it_prints_zeroes_when_there_is_nothing_to_prune(db):
    out = prune()
    assert out.splitlines() == [
        "Deleted 0 expired idempotency records and 0 rate-limit windows.",
        (
            "Deleted 0 expired export files, 0 old bot hits, 0 visitor paths and 0 past days' salts; "
            "0 interrupted exports queued again or failed."
        ),
        "Retention deleted 0 events, 0 finished tasks, 0 hits and 0 log messages.",
        "0 interrupted deletions queued again.",
    ]
