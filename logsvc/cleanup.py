"""What `manage.py prune` runs beside logsvc's own cleanup: each app registers its work in its AppConfig.ready(),
so the shared command runs what the installed apps declare and imports none of them (as logsvc.health does).

A cleanup deletes what has expired and returns one line for the operator saying what it deleted.
"""

from __future__ import annotations

from collections.abc import Callable

CLEANUPS: dict[str, Callable[[], str]] = {}


def register(name: str, cleanup: Callable[[], str]) -> None:
    CLEANUPS[name] = cleanup
