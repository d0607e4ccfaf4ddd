"""What /healthz reports beside the database: each app registers a check of its own background work.

A check returns "ok" or a sentence for the operator. A failing check makes the answer "degraded", still a 200:
the process serves requests, so a load balancer should keep it; a person or a monitor reads the detail.
"""

from __future__ import annotations

from collections.abc import Callable

CHECKS: dict[str, Callable[[], str]] = {}


def register(name: str, check: Callable[[], str]) -> None:
    CHECKS[name] = check
