"""/healthz says when a partitioned table lacks next month's partition (logsvc.partitions): the worker's passes
create the months ahead, and without them next month's rows would all go to the default partition."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection

from logsvc import partitions


def test_healthz_says_when_next_months_partition_is_missing(anon_client, db):
    assert anon_client.get("/healthz").json()["partitions"] == "ok"
    next_month = partitions.add_months(partitions.month_of(datetime.now(UTC)), 1)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{partitions.partition_name("events_event", next_month)}"')
    body = anon_client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["partitions"].startswith(f"no partition for {next_month:%Y-%m} yet in events_event:")
    assert partitions.ensure_ahead() == [partitions.partition_name("events_event", next_month)]
    assert anon_client.get("/healthz").json()["partitions"] == "ok"
