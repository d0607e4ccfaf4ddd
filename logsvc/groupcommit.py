"""Group commit: the writes of concurrent requests share one transaction, and each is answered after its commit.

A request hands its item to GroupCommit.submit() and awaits the result. One task per process takes every item
waiting, runs the caller's `write(connection, items)` in one transaction on its own psycopg connection and
commits; while that commit is in flight the next requests queue up, so under load a commit carries many
requests and when idle it carries one, with no timer to wait for. Nothing is acknowledged before its commit:
submit() returns only after COMMIT succeeded, and raises otherwise.

Failures stay with the requests they concern:
- a statement fails (a constraint, bad data): the transaction is rolled back and every item is tried again in a
  transaction of its own, so only the item at fault gets the error;
- a deadlock or serialization failure: the batch is tried again, up to three times;
- the connection breaks, or COMMIT itself fails: every item of that batch gets Unavailable (its outcome may be
  unknown: the client may retry, with an Idempotency-Key where the API has one), and the next batch opens a new
  connection. Other batches are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from django.conf import settings

logger = logging.getLogger(__name__)

Write = Callable[[psycopg.AsyncConnection, list[Any]], Awaitable[list[Any]]]


class Unavailable(Exception):
    """The database could not take or confirm this item's batch: nothing about it was acknowledged."""


def conninfo() -> dict[str, Any]:
    """psycopg.connect() keywords for the default database of the settings."""
    db = settings.DATABASES["default"]
    params: dict[str, Any] = {"dbname": db["NAME"], **db.get("OPTIONS", {})}
    for name, value in (
        ("user", db.get("USER")),
        ("password", db.get("PASSWORD")),
        ("host", db.get("HOST")),
        ("port", db.get("PORT")),
    ):
        if value:
            params[name] = value
    params.pop("pool", None)
    params.setdefault("connect_timeout", 5)
    params.setdefault("application_name", "logsvc-groupcommit")
    return params


class GroupCommit:
    """One batcher per kind of item, made at import; it binds to the event loop (and process) that uses it."""

    def __init__(self, write: Write, *, name: str, max_items: int = 2000) -> None:
        self.write = write
        self.name = name
        self.max_items = max_items
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._conn: psycopg.AsyncConnection | None = None
        self.batches = 0  # for tests and the benchmark: how many transactions carried how many items
        self.items = 0

    async def submit(self, item: Any) -> Any:
        """Store item with the others waiting; its result once committed. Raises Unavailable, or the
        exception `write` raised for this item alone."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop or os.getpid() != self._pid:
            self._bind(loop)
        future = loop.create_future()
        self._pending.append((item, future))
        assert self._wakeup is not None  # _bind() made it
        self._wakeup.set()
        return await future

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        # A new loop (a test's) or a forked worker: the old connection and task belong to someone else.
        self._loop, self._pid = loop, os.getpid()
        self._pending = []
        self._conn = None
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(), name=f"groupcommit-{self.name}")

    async def _run(self) -> None:
        assert self._wakeup is not None  # _bind() made it before this task
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[: self.max_items], self._pending[self.max_items :]
                try:
                    await self._commit(batch)
                except Exception as error:  # a bug: fail the batch, keep serving
                    logger.exception("group commit %s failed", self.name)
                    self._fail(batch, Unavailable(str(error)))

    def forget(self) -> None:
        """Close the connection without a loop (its loop may be gone: a test's); the next batch opens another."""
        conn, self._conn, self._loop = self._conn, None, None
        if conn is not None and not conn.closed:
            conn.pgconn.finish()

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(**conninfo())
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):  # already broken
                await conn.close()

    async def _commit(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        live = [(item, future) for item, future in batch if not future.done()]
        if not live:
            return
        items = [item for item, _ in live]
        for attempt in range(3):
            try:
                conn = await self._connection()
                results = await self.write(conn, items)
                # A refused COMMIT (a deferred foreign key) is known to have kept nothing, like a failed statement;
                # a COMMIT whose answer is lost is not: OperationalError, below.
                await conn.commit()
            except psycopg.errors.TransactionRollback:  # deadlock, serialization: nothing was kept, try again
                await self._rollback()
                if attempt == 2:
                    self._fail(live, Unavailable("the database kept refusing this batch"))
                    return
                continue
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as error:
                await self._drop_connection()
                self._fail(live, Unavailable(f"database unavailable: {error}"))
                return
            except psycopg.Error as error:
                await self._rollback()
                if len(live) == 1:
                    self._fail(live, error)
                else:  # one item's fault: each alone, so only that one fails
                    for one in live:
                        await self._commit([one])
                return
            except BaseException:
                await self._rollback()
                raise
            break
        self.batches += 1
        self.items += len(live)
        for (_, future), result in zip(live, results, strict=True):
            if not future.done():  # its client may have gone (the rows are committed all the same)
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _rollback(self) -> None:
        try:
            if self._conn is not None and not self._conn.closed:
                await self._conn.rollback()
        except (psycopg.Error, OSError):
            await self._drop_connection()

    @staticmethod
    def _fail(batch: list[tuple[Any, asyncio.Future]], error: BaseException) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(error)
