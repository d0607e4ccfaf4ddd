from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from django.db import connection, models, transaction
from django.utils import timezone

from events.models import Event, LogMessage, new_uid
from events.rollups import schedule_roll_up
from logsvc.models import User

EVENT_COPY_COLUMNS = ("owner_id", "uid", "client_id", "name", "trace_id", "date", "data", "size", "created")


def ingest_log_messages(*, owner: User, items: list[dict[str, Any]]) -> list[LogMessage]:
    """Store checked messages (see validation.clean_log_message).

    All or nothing: one message is one INSERT, and bulk_create wraps a batch in its own transaction.
    No transaction of our own around a single row: its BEGIN/COMMIT cost a third of the insert's time.
    """
    if len(items) == 1:
        messages = [LogMessage.objects.create(owner=owner, **items[0])]
    else:
        messages = LogMessage.objects.bulk_create([LogMessage(owner=owner, **item) for item in items])
    transaction.on_commit(schedule_roll_up)  # the explorer's histogram rollup (events.rollups), once stored
    return messages


def ingest_events(*, owner: User, items: list[dict[str, Any]]) -> None:
    """Store checked events (see validation.clean_event).

    One event is an ORM insert; a batch is one COPY, several times faster than bulk_create. Either is
    one statement, so all or nothing on its own.
    """
    now = timezone.now()
    if len(items) == 1:
        item = items[0]
        Event.objects.create(
            owner=owner,
            client_id=item["client_id"],
            name=item["name"],
            trace_id=item["trace_id"],
            date=item.get("date") or now,
            # Value(None) stores a JSON null; a bare None would be SQL NULL
            data=models.Value(None, output_field=models.JSONField()) if item["data"] is None else item["data"],
            size=len(item["data_json"]),
            created=now,
        )
    else:
        copy_events(owner, items, now)
    transaction.on_commit(schedule_roll_up)  # the explorer's histogram rollup (events.rollups), once stored


def copy_events(owner: User, items: list[dict[str, Any]], now: datetime) -> None:
    table = Event._meta.db_table
    sql = f"COPY {table} ({', '.join(EVENT_COPY_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for item in items:
            client_id = item["client_id"]
            copy.write_row(
                (
                    owner.pk,
                    new_uid(),
                    None if client_id is None else orjson.dumps(client_id).decode(),
                    item["name"],
                    item["trace_id"],
                    item.get("date") or now,
                    item["data_json"].decode(),
                    len(item["data_json"]),
                    now,
                )
            )
