"""Retention's schedule and record: one pass waits in the queue whoever asks, the worker's pass queues the next,
and what each pass deleted is in the admin and in prune's output."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from events.models import LogMessage, LogRetention
from logsvc import retention
from logsvc.models import RetentionRun


@pytest.fixture(autouse=True)
def _setup(monkeypatch):
    # The worker drops connections not in autocommit between tasks, which would end the test's transaction.
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)


def waiting() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=retention.run_retention.module_path, status="READY"))


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)


def prune() -> str:
    out = StringIO()
    call_command("prune", stdout=out)
    return out.getvalue()


def old_messages(owner, count: int) -> None:
    created = timezone.now() - timedelta(days=40)
    LogMessage.objects.bulk_create(
        [LogMessage(owner=owner, message="m", severity=2, created=created) for _ in range(count)]
    )


def test_one_pass_waits_however_often_it_is_asked_for(db, settings):
    assert retention.schedule() is True
    assert retention.schedule() is False
    call_command("demo", stdout=StringIO())
    prune()
    [task] = waiting()
    assert abs(task.run_after - timezone.now() - timedelta(seconds=settings.RETENTION_INTERVAL_SECONDS)) < timedelta(
        seconds=30
    )


def test_the_workers_pass_queues_the_next_one(alice, settings):
    LogRetention.objects.create(owner=alice, days=30)
    old_messages(alice, 3)
    retention.schedule(delay=0)
    run_worker()
    run = RetentionRun.objects.get()
    assert (run.trigger, run.deleted["log messages"], run.error) == ("worker", 3, "")
    assert not LogMessage.objects.exists()
    [task] = waiting()  # the next, not yet due: the batch worker left it
    assert task.run_after > timezone.now() + timedelta(seconds=settings.RETENTION_INTERVAL_SECONDS - 30)


def test_prune_prints_what_retention_deleted(alice):
    LogRetention.objects.create(owner=alice, days=30)
    old_messages(alice, 4)
    assert "Retention deleted 0 events, 0 finished tasks, 0 hits and 4 log messages." in prune().splitlines()
    assert RetentionRun.objects.get().trigger == "prune"
    assert len(waiting()) == 1


def test_a_failing_purge_is_recorded_with_what_came_before_it(alice, monkeypatch):
    def broken(now):
        raise RuntimeError("disk on fire")

    LogRetention.objects.create(owner=alice, days=30)
    old_messages(alice, 2)
    monkeypatch.setitem(retention.PURGES, "widgets", broken)
    out = prune()
    assert "(stopped by an error: RuntimeError: disk on fire)" in out
    run = RetentionRun.objects.get()
    assert run.deleted == {"finished tasks": 0, "log messages": 2, "events": 0, "hits": 0}
    assert run.error == "RuntimeError: disk on fire" and run.finished_at is not None


def test_the_admin_shows_each_pass(admin_client, alice):
    LogRetention.objects.create(owner=alice, days=30)
    old_messages(alice, 5)
    prune()
    r = admin_client.get("/admin/logsvc/retentionrun/")
    assert r.status_code == 200
    assert "0 events, 0 finished tasks, 0 hits and 5 log messages" in r.content.decode()
    assert admin_client.get("/admin/logsvc/retentionrun/add/").status_code == 403
    r = admin_client.get("/admin/events/logretention/")
    assert r.status_code == 200 and "alice" in r.content.decode()


def test_a_pass_forgets_the_records_of_passes_long_ago(db):
    old = RetentionRun.objects.create(started_at=timezone.now() - timedelta(days=91), trigger="worker")
    recent = RetentionRun.objects.create(started_at=timezone.now() - timedelta(days=89), trigger="worker")
    prune()
    assert not RetentionRun.objects.filter(pk=old.pk).exists()
    assert RetentionRun.objects.filter(pk=recent.pk).exists() and RetentionRun.objects.count() == 2


def test_a_rule_saved_in_the_admin_queues_the_passes(admin_client, alice):
    r = admin_client.post("/admin/events/logretention/add/", {"owner": alice.pk, "up_to_severity": 7, "days": 7})
    assert r.status_code == 200 and "Ensure this value is less than or equal to 6" in r.content.decode()
    assert not LogRetention.objects.exists() and not waiting()
    r = admin_client.post("/admin/events/logretention/add/", {"owner": alice.pk, "up_to_severity": 1, "days": 7})
    assert r.status_code == 302
    assert LogRetention.objects.get().up_to_severity == 1
    assert len(waiting()) == 1
    run = RetentionRun.objects.create(trigger="prune", deleted={"hits": 3})
    assert admin_client.get(f"/admin/logsvc/retentionrun/{run.pk}/change/").status_code == 200


def test_the_workers_finished_tasks_are_forgotten_after_their_days(db, settings):
    now = timezone.now()

    def result(status: str, days_ago: float | None) -> DBTaskResult:
        finished = None if days_ago is None else now - timedelta(days=days_ago)
        return DBTaskResult.objects.create(
            status=status,
            finished_at=finished,
            run_after=now - timedelta(days=40),
            args_kwargs={"args": [], "kwargs": {}},
            task_path="analytics.tasks.roll_up",
            backend_name="default",
        )

    kept = [
        result("SUCCESSFUL", settings.TASK_RESULTS_DAYS - 0.1),
        result("FAILED", settings.TASK_FAILURES_DAYS - 0.1),
        result("FAILED", settings.TASK_RESULTS_DAYS + 1),  # a failure stays longer, for the operator
        result("READY", None),
        result("RUNNING", None),
    ]
    for _ in range(3):
        result("SUCCESSFUL", settings.TASK_RESULTS_DAYS + 0.1)
    result("FAILED", settings.TASK_FAILURES_DAYS + 0.1)
    settings.RETENTION_BATCH = 2  # several batches

    assert "Retention deleted 0 events, 4 finished tasks, 0 hits and 0 log messages." in prune().splitlines()
    remaining = set(
        DBTaskResult.objects.exclude(task_path=retention.run_retention.module_path).values_list("pk", flat=True)
    )
    assert remaining == {task.pk for task in kept}
