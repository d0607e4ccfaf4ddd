"""Asking the worker for a task from the request path (the rollups of hits, of log messages and events) at most once
an interval per process, so a stream of rows costs one queue row an interval, not one a row.

A row that comes while the task last asked for may not have started yet is left to it. A later one gets a task
deferred to the next free slot, so the last rows of a burst (or of a quiet owner) are handled within the interval
too, not whenever this process happens to store the next row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

_background: set[asyncio.Task] = set()


class Nudge:
    """Call it once rows are committed; interval names the setting (seconds) and what says what is asked for in the
    log line of a failure (the rows are stored: the next request asks again)."""

    def __init__(self, task: Any, interval: str, what: str) -> None:
        self.task, self.interval, self.what = task, interval, what
        # When (time.monotonic()) the task this process last asked for may start: it handles every row committed
        # before then.
        self.next_slot = 0.0

    def due(self) -> bool:
        """Whether this process would ask now (a cheap check for the hot paths)."""
        return time.monotonic() >= self.next_slot

    def __call__(self) -> None:
        now = time.monotonic()
        if now < self.next_slot:
            return
        slot = max(now, self.next_slot + getattr(settings, self.interval))
        try:
            self.task.using(run_after=timezone.now() + timedelta(seconds=slot - now)).enqueue()
        except Exception:
            logger.exception("Could not schedule %s", self.what)
            return
        self.next_slot = slot

    def from_event_loop(self) -> None:
        """Ask, after a commit on an ASGI hot path, off the event loop; nothing when it is not due."""
        if not self.due():
            return
        from logsvc.asgi import run_sync  # builds Django's WSGI app: not for the worker's imports

        task = asyncio.get_running_loop().create_task(run_sync(self))
        _background.add(task)
        task.add_done_callback(_background.discard)
