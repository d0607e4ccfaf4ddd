"""Database helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, ServerBindingCursor
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.backends.utils import CursorWrapper
from psycopg.pq import Format

from logsvc import replica


@contextmanager
def prepared_cursor(using: str | None = None) -> Iterator[CursorWrapper]:
    """A cursor for the fixed SQL of hot reads: its parameters are bound by the server, so psycopg prepares
    a statement run more than a few times on this connection, and PostgreSQL parses and plans it once per
    connection, not once per request (planning was half of a timeline query's database CPU).

    The ORM's own cursors keep binding on the client (Django's default). With DATABASE_PREPARED_STATEMENTS
    off (a pooler in transaction mode that cannot carry them), psycopg prepares nothing and this is a plain
    cursor. Queried like any Django cursor: its queries are logged and wrapped as theirs are.

    using: the database; by default the one this request's lag-tolerant reads use (logsvc.replica.reads(): the
    replica in a view marked for it, else the primary). Reads that must see the latest write pass "default".
    """
    connection = connections[using or replica.reads()]
    connection.validate_thread_sharing()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        # django-stubs declare ServerBindingCursor without psycopg's cursor base, and make_cursor() as taking a wrapper
        cursor = ServerBindingCursor(connection.connection)  # type: ignore[call-arg]
    # as Django's own cursors: times in the connection's time zone when a test or a view changed it
    if connection.timezone != connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone:
        register_tzloader(connection.timezone, cursor)
    wrapped = (
        connection.make_debug_cursor(cursor)  # type: ignore[arg-type]
        if connection.queries_logged
        else connection.make_cursor(cursor)  # type: ignore[arg-type]
    )
    with wrapped:
        yield wrapped
