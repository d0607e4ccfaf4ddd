"""Log messages (by created) and events (by date) are partitioned by month (logsvc.partitions): the migration keeps
every row, id, uid and search, reads by id and uid work as before, an event of long ago is stored, and retention
drops a month whose rows are all past their owners' rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from events.models import Event, EventRetention, LogMessage, LogRetention
from logsvc import partitions, retention
from logsvc.models import RetentionRun

LOGS, EVENTS = LogMessage._meta.db_table, Event._meta.db_table
BEFORE = ("events", "0005_eventretention_logretention")
AFTER = ("events", "0006_partition_logs_and_events")


@pytest.fixture(autouse=True)
def _setup(settings, monkeypatch):
    settings.RETENTION_BATCH = 2
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    partitions._known.clear()


def where(table: str) -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, tableoid::regclass::text FROM {table}")
        return dict(cursor.fetchall())


def names(table: str) -> list[str]:
    return [p.name for p in partitions.partitions(table)]


def months_ago(n: int) -> datetime:
    return partitions.add_months(partitions.month_of(timezone.now()), -n)


def run_worker() -> RetentionRun:
    DBTaskResult.objects.filter(task_path=retention.run_retention.module_path, status="READY").delete()
    assert retention.schedule(delay=0)
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)
    return RetentionRun.objects.get(trigger="worker")


def message(owner, created: datetime, **fields) -> LogMessage:
    return LogMessage.objects.create(owner=owner, message="disk full", severity=4, created=created, **fields)


def test_reads_by_id_and_uid_work_in_any_partition(alice, api_client, anon_client, admin_client):
    now = timezone.now()
    partitions.ensure(LOGS, [months_ago(5)])
    recent, old = message(alice, now), message(alice, months_ago(5) + timedelta(days=2))
    odd = message(alice, datetime(1999, 1, 1, tzinfo=UTC))
    assert [where(LOGS)[m.pk] for m in (recent, old, odd)] == [
        partitions.partition_name(LOGS, partitions.month_of(now)),
        partitions.partition_name(LOGS, months_ago(5)),
        f"{LOGS}_default",
    ]
    for stored in (recent, old, odd):
        r = api_client.get(f"/api/Log/{stored.pk}")
        assert r.status_code == 200 and r.json()["MessageId"] == str(stored.pk)
        assert admin_client.get(f"/admin/events/logmessage/{stored.pk}/change/").status_code == 200
    # The search column is generated in every partition
    r = api_client.get("/api/Log", {"q": "disk"})
    assert r.status_code == 200

    r = api_client.post("/api/v1/events", {"name": "signup", "date": "1990-05-01T00:00:00Z"}, format="json")
    assert r.status_code == 201  # a date long before any partition: stored, in the default one
    shared = Event.objects.get()
    assert where(EVENTS)[shared.pk] == f"{EVENTS}_default"
    r = anon_client.get(f"/api/events/{shared.uid}.json")
    assert r.status_code == 200 and r.json()["name"] == "signup"
    assert admin_client.get(f"/admin/events/event/{shared.pk}/change/").status_code == 200
    partitions.ensure(EVENTS, [datetime(1990, 5, 1, tzinfo=UTC)])  # moved to its month, read all the same
    assert where(EVENTS)[shared.pk] == f"{EVENTS}_199005"
    assert anon_client.get(f"/api/events/{shared.uid}.json").status_code == 200


def test_retention_drops_a_month_only_when_every_owner_lets_it_go(alice, charlie):
    old = months_ago(4)
    partitions.ensure(LOGS, [old])
    partitions.ensure(EVENTS, [old])
    LogRetention.objects.create(owner=alice, days=60)
    LogRetention.objects.create(owner=alice, up_to_severity=1, days=7)
    EventRetention.objects.create(owner=alice, days=60)
    for _ in range(3):
        message(alice, old + timedelta(days=1))
        Event.objects.create(owner=alice, name="click", date=old + timedelta(days=1))
    kept = message(charlie, old + timedelta(days=2))  # charlie has no rule: kept for ever
    fresh = message(alice, timezone.now())

    run = run_worker()
    assert partitions.partition_name(LOGS, old) in names(LOGS)  # charlie's message holds the month
    assert set(LogMessage.objects.values_list("pk", flat=True)) == {kept.pk, fresh.pk}
    assert partitions.partition_name(EVENTS, old) not in names(EVENTS)  # dropped whole
    assert not Event.objects.exists()
    assert run.deleted == {**run.deleted, "log messages": 3, "events": 3}

    kept.delete()
    message(alice, old + timedelta(days=3), application="billing")
    EventRetention.objects.create(owner=alice, name="keep", days=0)  # no month of alice's events goes now
    partitions.ensure(EVENTS, [old])
    Event.objects.create(owner=alice, name="keep", date=old + timedelta(days=1))
    RetentionRun.objects.all().delete()
    run = run_worker()
    assert partitions.partition_name(LOGS, old) not in names(LOGS)
    assert run.deleted["log messages"] == 1
    assert partitions.partition_name(EVENTS, old) in names(EVENTS) and Event.objects.count() == 1


def test_a_rule_for_one_application_drops_no_month(alice):
    old = months_ago(4)
    partitions.ensure(LOGS, [old])
    LogRetention.objects.create(owner=alice, application="web", days=30)  # what of other applications?
    message(alice, old + timedelta(days=1), application="web")
    message(alice, old + timedelta(days=1), application="billing")
    run = run_worker()
    assert partitions.partition_name(LOGS, old) in names(LOGS)
    assert run.deleted["log messages"] == 1
    assert list(LogMessage.objects.values_list("application", flat=True)) == ["billing"]


@pytest.mark.django_db(transaction=True)
def test_the_migration_partitions_populated_tables(alice):
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    try:
        with connection.cursor() as cursor:
            assert not partitions.is_partitioned(LOGS, cursor) and not partitions.is_partitioned(EVENTS, cursor)
        start = datetime(2027, 1, 1, tzinfo=UTC)
        for n in range(60):
            at = start + timedelta(days=7 * n)
            LogMessage.objects.create(owner=alice, message=f"disk {n} full", severity=n % 7, created=at)
            Event.objects.create(owner=alice, name=f"e{n}", date=at, data={"n": n})
        messages = dict(LogMessage.objects.values_list("id", "created"))
        events = dict(Event.objects.values_list("uid", "date"))
        executor = MigrationExecutor(connection)
        executor.migrate([AFTER])
        with connection.cursor() as cursor:
            assert partitions.is_partitioned(LOGS, cursor) and partitions.is_partitioned(EVENTS, cursor)
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY contype",
                [EVENTS],
            )
            assert cursor.fetchall() == [
                ("events_event_pkey", "PRIMARY KEY (id, date)"),
                ("event_uid_unique", "UNIQUE (uid, date)"),
            ]
        assert dict(LogMessage.objects.values_list("id", "created")) == messages
        assert dict(Event.objects.values_list("uid", "date")) == events
        placed = where(LOGS)
        assert all(placed[i] == partitions.partition_name(LOGS, partitions.month_of(at)) for i, at in messages.items())
        assert LogMessage.objects.filter(search="disk").count() == 60  # the generated column, recomputed
        assert Event.objects.get(uid=next(iter(events))).data == {"n": 0}
        # New rows take ids after the old ones
        last = max(messages)
        assert LogMessage.objects.create(owner=alice, message="new", severity=1).pk == last + 1
        executor = MigrationExecutor(connection)
        executor.migrate([BEFORE])
        with connection.cursor() as cursor:
            assert not partitions.is_partitioned(EVENTS, cursor)
            cursor.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'event_uid_unique'",
            )
            assert cursor.fetchone()[0] == "UNIQUE (uid)"
        assert LogMessage.objects.count() == 61
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.parametrize(
    ("table", "where", "condition"), [(EVENTS, "uid = 'x'", "(uid)::text = 'x'::text"), (LOGS, "id = 1", "id = 1")]
)
def test_a_read_by_id_or_uid_uses_each_months_index(db, table, where, condition):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # empty months: the planner would read them all
        cursor.execute(f"EXPLAIN SELECT * FROM {table} WHERE {where}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan and plan.count(f"Index Cond: ({condition})") == len(names(table)), plan


def test_a_page_over_several_months_lists_each_row_once(alice, api_client):
    """Logster's and Bytelog's pages fetch their rows by id within the span of the page's times (so PostgreSQL reads
    the page's months, not every month's index): a page whose rows are months apart still holds them all."""
    now = timezone.now()
    partitions.ensure(LOGS, [months_ago(5)])
    stored = [
        message(alice, moment) for moment in (now, months_ago(5) + timedelta(days=2), datetime(1999, 1, 1, tzinfo=UTC))
    ]
    first = api_client.get("/api/Log", {"limit": 2}).json()
    assert [m["MessageId"] for m in first["Messages"]] == [str(stored[0].pk), str(stored[1].pk)]
    second = api_client.get(first["Next"]).json()
    assert [m["MessageId"] for m in second["Messages"]] == [str(stored[2].pk)] and second["Next"] is None

    partitions.ensure(EVENTS, [months_ago(3)])
    for moment in (months_ago(3) + timedelta(days=1), now - timedelta(minutes=5)):
        r = api_client.post("/api/v1/events", {"name": "signup", "date": moment.isoformat()}, format="json")
        assert r.status_code == 201
    listed = api_client.get("/api/v1/events", {"start": months_ago(4).date().isoformat(), "limit": 1}).json()
    assert listed["count"] == 2 and [e["date"][:10] for e in listed["events"]] == [
        (months_ago(3) + timedelta(days=1)).date().isoformat()
    ]
