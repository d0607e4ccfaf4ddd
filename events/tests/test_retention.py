"""Logster and Bytelog retention, enforced by the real worker: the most specific rule of a message's (or event's)
owner decides, 0 days keeps for ever, and what no rule covers stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from events.models import Event, EventRetention, LogMessage, LogRetention
from logsvc import retention
from logsvc.models import RetentionRun

DEBUG, INFO, ERROR = 1, 2, 4


@pytest.fixture(autouse=True)
def _setup(settings, monkeypatch):
    settings.RETENTION_BATCH = 2  # several batches from a handful of rows
    # The worker drops connections not in autocommit between tasks, which would end the test's transaction.
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)


def run_worker() -> RetentionRun:
    DBTaskResult.objects.filter(task_path=retention.run_retention.module_path, status="READY").delete()
    assert retention.schedule(delay=0)
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)
    return RetentionRun.objects.get(trigger="worker")


def message(owner, days_old: float, severity: int = INFO, application: str = "web") -> LogMessage:
    created = timezone.now() - timedelta(days=days_old)
    return LogMessage.objects.create(
        owner=owner, message=f"{application} {severity} {days_old}", severity=severity, application=application,
        created=created,
    )  # fmt: skip


def event(owner, days_old: float, name: str = "click") -> Event:
    return Event.objects.create(owner=owner, name=name, date=timezone.now() - timedelta(days=days_old))


def test_the_most_specific_log_rule_decides(alice, charlie):
    LogRetention.objects.create(owner=alice, days=90)  # the owner's default
    LogRetention.objects.create(owner=alice, up_to_severity=DEBUG, days=7)  # Verbose and Debug: a week
    LogRetention.objects.create(owner=alice, application="billing", days=0)  # for ever
    LogRetention.objects.create(owner=alice, application="shop", days=30)
    LogRetention.objects.create(owner=alice, application="shop", up_to_severity=INFO, days=14)
    gone = [
        message(alice, 10, DEBUG),
        message(alice, 8, 0),
        message(alice, 100, ERROR),
        message(alice, 40, ERROR, "shop"),
        message(alice, 20, INFO, "shop"),
    ]
    kept = [
        message(alice, 10, INFO),
        message(alice, 80, ERROR),
        message(alice, 2, DEBUG),
        message(alice, 1000, ERROR, "billing"),
        message(alice, 100, DEBUG, "billing"),  # the application's rule is more specific than the severity's
        message(alice, 20, ERROR, "shop"),
        message(alice, 10, DEBUG, "shop"),
        message(charlie, 1000, DEBUG),  # charlie set nothing: kept for ever
    ]
    run = run_worker()
    assert set(LogMessage.objects.values_list("pk", flat=True)) == {m.pk for m in kept}
    assert run.deleted["log messages"] == len(gone)
    assert run.error == "" and run.finished_at is not None


def test_a_rule_for_one_application_leaves_the_others_alone(alice):
    LogRetention.objects.create(owner=alice, application="noisy", days=1)
    old_noisy, old_other = message(alice, 5, ERROR, "noisy"), message(alice, 500, ERROR, "quiet")
    run_worker()
    assert list(LogMessage.objects.values_list("pk", flat=True)) == [old_other.pk]
    assert not LogMessage.objects.filter(pk=old_noisy.pk).exists()


def test_log_messages_are_searched_as_before_after_a_pass(alice, api_client):
    LogRetention.objects.create(owner=alice, days=30)
    message(alice, 60)
    new = message(alice, 1)
    run_worker()
    r = api_client.get("/api/Log")
    assert r.status_code == 200
    assert [m["MessageId"] for m in r.json()["Messages"]] == [str(new.pk)]


def test_the_event_name_rule_comes_before_the_default(alice, charlie):
    EventRetention.objects.create(owner=alice, days=30)
    EventRetention.objects.create(owner=alice, name="audit", days=0)
    EventRetention.objects.create(owner=alice, name="click", days=7)
    gone = [event(alice, 8), event(alice, 31, "signup")]
    kept = [event(alice, 6), event(alice, 29, "signup"), event(alice, 900, "audit"), event(charlie, 900)]
    run = run_worker()
    assert set(Event.objects.values_list("pk", flat=True)) == {e.pk for e in kept}
    assert run.deleted["events"] == len(gone)
    # Loggator's public read of a deleted event is a 404, of a kept one as before
    assert Client().get(f"/api/events/{gone[0].uid}.json").status_code == 404
    assert Client().get(f"/api/events/{kept[0].uid}.json").status_code == 200


def test_nothing_is_deleted_without_rules(alice):
    message(alice, 5000, DEBUG)
    event(alice, 5000)
    run = run_worker()
    assert run.deleted == {"finished tasks": 0, "log messages": 0, "events": 0, "hits": 0}
    assert LogMessage.objects.count() == Event.objects.count() == 1
