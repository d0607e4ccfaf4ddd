"""Retention: each app registers what it forgets (in its AppConfig.ready(), as logsvc.cleanup), and the worker runs
every registered purge on a schedule, each pass recorded as a RetentionRun (admin) and printed by `manage.py prune`.

The schedule is a task that queues its own next run (the worker has no cron): run_retention first queues the next
pass RETENTION_INTERVAL_SECONDS ahead, then works, so a worker killed mid-pass still leaves the next one queued.
schedule() queues one only when none is waiting (a transaction-scoped advisory lock makes the check and the
insert one step), so `prune`, `demo` and saving a retention setting can all call it and there is still one.

Each pass first makes sure the partitioned tables (logsvc.partitions) have their months ahead.

A purge takes the time of the pass and returns how many rows it deleted. It deletes in batches of
RETENTION_BATCH rows, each its own short transaction, so no lock is held for long, and calls paused() after each
one, so the pass leaves the database most of its time for ingestion and reads beside it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from logsvc import partitions
from logsvc.models import RetentionRun

logger = logging.getLogger(__name__)

PURGES: dict[str, Callable[[datetime], int]] = {}
RUN_LOCK = (0x7274, 1)  # "rt": one pass at a time
SCHEDULE_LOCK = (0x7274, 2)  # one look at the queue at a time
RUNS_KEPT = timedelta(days=90)  # a pass's record, for the admin; older ones go with the next pass


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Around one batch: afterwards, wait RETENTION_PAUSE_PERCENT of the time it took."""
    started = time.monotonic()
    yield
    time.sleep((time.monotonic() - started) * settings.RETENTION_PAUSE_PERCENT / 100)


def register(name: str, purge: Callable[[datetime], int]) -> None:
    """name says what purge deletes, plural ("log messages"): it is the operator's line and the run's key."""
    PURGES[name] = purge


@contextlib.contextmanager
def _session_lock(key: tuple[int, int]) -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def run(trigger: str, now: datetime | None = None) -> RetentionRun | None:
    """One pass of every registered purge, recorded as a RetentionRun (saved after each purge, so a long pass shows
    its progress); None when another pass is running. An error stops the pass and is kept on the run."""
    with _session_lock(RUN_LOCK) as held:
        if not held:
            return None
        now = now or timezone.now()
        record = RetentionRun.objects.create(started_at=timezone.now(), trigger=trigger)
        try:
            # The months ahead of the partitioned tables first: the purges then drop the old ones.
            partitions.ensure_ahead(now)
            for name, purge in PURGES.items():
                record.deleted[name] = purge(now)
                record.save(update_fields=["deleted"])
        except Exception as error:
            logger.exception("Retention pass %s failed", record.pk)
            record.error = f"{type(error).__name__}: {error}"
        record.finished_at = timezone.now()
        record.save(update_fields=["deleted", "error", "finished_at"])
        RetentionRun.objects.filter(started_at__lt=record.started_at - RUNS_KEPT).delete()
        return record


def schedule(delay: float | None = None) -> bool:
    """Queue a pass in delay seconds (RETENTION_INTERVAL_SECONDS by default) unless one is waiting already;
    whether it queued one. A pass that is running is not waiting: it has queued its successor already."""
    if delay is None:
        delay = settings.RETENTION_INTERVAL_SECONDS
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", SCHEDULE_LOCK)
        waiting = DBTaskResult.objects.filter(task_path=run_retention.module_path, status=TaskResultStatus.READY)
        if waiting.exists():
            return False
        run_retention.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue()
        return True


def purge_task_results(now: datetime) -> int:
    """Delete the worker's finished task results (every rollup, export and deletion leaves one, and the web
    processes ask for a rollup up to once a second each): successful ones after TASK_RESULTS_DAYS, failed ones,
    which an operator may still be reading in the admin, after TASK_FAILURES_DAYS."""
    finished = DBTaskResult.objects.filter(
        Q(status=TaskResultStatus.SUCCESSFUL, finished_at__lt=now - timedelta(days=settings.TASK_RESULTS_DAYS))
        | Q(status=TaskResultStatus.FAILED, finished_at__lt=now - timedelta(days=settings.TASK_FAILURES_DAYS))
    )
    deleted = 0
    while True:
        with paused():
            batch = list(finished.values_list("pk", flat=True)[: settings.RETENTION_BATCH])
            if batch:
                deleted += DBTaskResult.objects.filter(pk__in=batch)._raw_delete(DBTaskResult.objects.db)
        if len(batch) < settings.RETENTION_BATCH:
            return deleted


@task()
def run_retention() -> dict[str, int]:
    schedule()
    record = run("worker")
    return record.deleted if record else {}
