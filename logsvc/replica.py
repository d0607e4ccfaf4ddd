"""Reads that tolerate a little lag go to a PostgreSQL read replica (DATABASE_REPLICA_URL, alias "replica").

Which reads: a view says so (`replica_reads = True` on its class, or the `@replica_reads` decorator): stats and the
dashboard, public timelines and pages, Loggator, the list and search APIs; and the worker's exports
(`alias_with_commits_before`). Everything else, and every write, goes to the primary ("default"). Within a
marked GET, ReplicaRouter sends the ORM's reads of the apps' models to the replica, and the raw SQL of the hot
reads asks `reads()` which alias to use. Keys, tokens, sessions, rate limits, idempotency records, the queue and
stored files are always read on the primary: they are read by key, and a stale one would refuse a client.

Read your own writes: a client (its credentials: an API key, a bearer token, a session cookie) that wrote in the
last `window()` seconds reads from the primary. The mark is kept in the cache (Redis or PostgreSQL), so it holds
whichever host the next request reaches.

The replica is used only while it is within DATABASE_REPLICA_MAX_LAG seconds of the primary: each process stamps a
heartbeat row on the primary and reads it back from the replica at most once every CHECK_SECONDS; how old the
replica's copy is, by the primary's clock, bounds how much it may be missing (its lag plus at most one heartbeat
interval). Past the bound, or when the replica does not answer, reads go to the primary, and the replica is
tried again DOWN_SECONDS later. A query that fails on the replica mid-request is answered from the primary.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

PRIMARY = "default"
REPLICA = "replica"
CHECK_SECONDS = 1.0  # how often a process measures the replica's lag
DOWN_SECONDS = 5.0  # how long a replica that failed is left alone
# The apps whose models a marked read may take from the replica, and those of their models it may not.
REPLICA_APPS = {"events", "social", "analytics", "logsvc"}
PRIMARY_MODELS = {
    "logsvc.User",  # who signed in a moment ago (its session's user), whose key or token it is
    "logsvc.ApiKey",
    "logsvc.RateLimitCounter",
    "logsvc.IdempotencyRecord",
    "logsvc.StoredFile",
    "logsvc.StoredChunk",
    "logsvc.ReplicaHeartbeat",
    "analytics.Export",
    "analytics.Import",
}

_reads: ContextVar[str] = ContextVar("logsvc_reads", default=PRIMARY)


def configured() -> bool:
    return REPLICA in settings.DATABASES


def reads() -> str:
    """The alias this code's lag-tolerant reads use now: "replica" inside a marked view that may, else "default"."""
    return _reads.get()


def window() -> float:
    """Seconds a client's reads stay on the primary after its write: longer than any lag the replica is used with."""
    return settings.DATABASE_REPLICA_MAX_LAG + CHECK_SECONDS + 1


class ReplicaRouter:
    """Django's database router (DATABASE_ROUTERS): reads to reads(), writes and migrations to the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        alias = _reads.get()
        if alias != PRIMARY and (model._meta.app_label not in REPLICA_APPS or model._meta.label in PRIMARY_MODELS):
            return PRIMARY
        return alias

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # one database, two copies of it

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == PRIMARY


# --- the replica's lag ----------------------------------------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.checked = -1e9  # time.monotonic() of the last measure
        self.lag: float | None = None  # seconds behind; None: not measured, or not answering
        self.error = ""
        self.lock = threading.Lock()


_state = _State()


def stamp_heartbeat() -> datetime:
    """Stamp the heartbeat on the primary, now by its clock; returns the stamp."""
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute(
            "INSERT INTO logsvc_replicaheartbeat (id, at) VALUES (1, clock_timestamp()) "
            "ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at RETURNING at"
        )
        return cursor.fetchone()[0]


def _replica_heartbeat() -> datetime | None:
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT at FROM logsvc_replicaheartbeat WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else None


def measure() -> float | None:
    """Measure the replica's lag now (seconds; None when it does not answer), and remember it."""
    try:
        seen = _replica_heartbeat()  # first: what the replica has, then what the primary has now
        primary = stamp_heartbeat()
    except DatabaseError as error:
        _forget_replica_connection()
        _state.lag, _state.error = None, " ".join(str(error).split())[:200] or type(error).__name__
        logger.warning("The read replica does not answer: %s", _state.error)
    else:
        _state.lag = float("inf") if seen is None else max(0.0, (primary - seen).total_seconds())
        _state.error = ""
    _state.checked = time.monotonic()
    return _state.lag


def lag() -> float | None:
    """The replica's lag as last measured, measured again when it is older than CHECK_SECONDS (DOWN_SECONDS for
    a replica that did not answer); None when it does not answer."""
    wait = CHECK_SECONDS if _state.lag is not None else DOWN_SECONDS
    if time.monotonic() - _state.checked >= wait and _state.lock.acquire(blocking=False):
        try:
            measure()
        finally:
            _state.lock.release()
    return _state.lag


def usable() -> bool:
    current = lag()
    return current is not None and current <= settings.DATABASE_REPLICA_MAX_LAG


def failed(error: BaseException) -> None:
    """A query on the replica failed: leave it alone for DOWN_SECONDS."""
    _forget_replica_connection()
    _state.lag, _state.error, _state.checked = None, str(error).strip()[:200], time.monotonic()


def _forget_replica_connection() -> None:
    try:
        connections[REPLICA].close()
    except DatabaseError:
        pass


def health() -> str:
    """/healthz's "replica": ok, or why reads are not going to it (registered in LogsvcConfig.ready)."""
    current = lag()
    if current is None:
        return f"unreachable ({_state.error}); reads go to the primary"
    if current > settings.DATABASE_REPLICA_MAX_LAG:
        return f"{current:.1f} s behind, more than DATABASE_REPLICA_MAX_LAG; reads go to the primary"
    return "ok"


def alias_with_commits_before(moment: datetime) -> str:
    """The replica once it has replayed everything the primary committed before moment (its clock), waiting up
    to DATABASE_REPLICA_MAX_LAG for it; else the primary. For long reads off the web (the exports)."""
    if not configured() or not usable():
        return PRIMARY
    deadline = time.monotonic() + settings.DATABASE_REPLICA_MAX_LAG
    try:
        stamp_heartbeat()
        while True:
            seen = _replica_heartbeat()
            if seen is not None and seen >= moment:
                return REPLICA
            if time.monotonic() >= deadline:
                return PRIMARY
            time.sleep(0.05)
    except DatabaseError as error:
        failed(error)
        return PRIMARY


# --- read your own writes -------------------------------------------------------------------------------------

_marked: dict[str, float] = {}  # client -> time.monotonic() when this process last marked it


def client_of(meta: Any, cookies: Any) -> str | None:
    """Who a request is, for read-your-writes: a hash of its credentials, or None when it has none."""
    credential = meta.get("HTTP_AUTHORIZATION") or meta.get("HTTP_APIKEY") or cookies.get(settings.SESSION_COOKIE_NAME)
    if not credential:
        return None
    return hashlib.sha256(credential.encode(errors="replace")).hexdigest()[:32]


def note_write(client: str | None) -> None:
    """client wrote: its reads stay on the primary for window() seconds, on every host."""
    if client is None or not configured():
        return
    now = time.monotonic()
    # marked for 1.5 windows, again once half a window has passed: at least a window after every write
    if now - _marked.get(client, -1e9) >= window() / 2:
        cache.set(f"logsvc:wrote:{client}", 1, timeout=int(window() * 1.5) + 1)
        if len(_marked) > 100_000:
            _marked.clear()
        _marked[client] = now


def needs_note(client: str | None) -> bool:
    """Whether note_write(client) would have anything to do (an async caller then runs it in a thread)."""
    return client is not None and configured() and time.monotonic() - _marked.get(client, -1e9) >= window() / 2


def wrote_recently(client: str | None) -> bool:
    if client is None:
        return False
    if time.monotonic() - _marked.get(client, -1e9) < window():
        return True  # this process marked it: no need to ask the cache
    return cache.get(f"logsvc:wrote:{client}") is not None


# --- which views -----------------------------------------------------------------------------------------------


def replica_reads[F: Callable[..., Any]](view: F) -> F:
    """Mark a function view whose GETs tolerate a little lag."""
    view.replica_reads = True  # type: ignore[attr-defined]
    return view


def _marked_view(view_func: Any) -> bool:
    target = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None) or view_func
    return bool(getattr(target, "replica_reads", False))


class ReplicaMiddleware:
    """Chooses each request's reads (after the session and authentication middleware), notes its writes, and
    answers a marked view again from the primary when the replica fails under it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not configured():
            return self.get_response(request)
        _reads.set(PRIMARY)  # whatever an earlier request on this thread left
        try:
            response = self.get_response(request)
        finally:
            _reads.set(PRIMARY)
        if request.method not in ("GET", "HEAD", "OPTIONS") and response.status_code < 400:
            note_write(client_of(request.META, request.COOKIES))
            signed_in = response.cookies.get(settings.SESSION_COOKIE_NAME)
            if signed_in is not None and signed_in.value:  # a new session (a sign-in) is a client of its own
                note_write(client_of({}, {settings.SESSION_COOKIE_NAME: signed_in.value}))
        return response

    def process_view(self, request: HttpRequest, view_func: Any, args: Any, kwargs: Any) -> None:
        if not configured() or request.method not in ("GET", "HEAD") or not _marked_view(view_func):
            return
        if wrote_recently(client_of(request.META, request.COOKIES)) or not usable():
            return
        request._replica_view = (view_func, args, kwargs)  # type: ignore[attr-defined]
        _reads.set(REPLICA)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        replayed = getattr(request, "_replica_view", None)
        if replayed is None or _reads.get() != REPLICA or not isinstance(exception, DatabaseError):
            return None
        logger.warning("A read on the replica failed, answered from the primary: %s", exception)
        failed(exception)
        _reads.set(PRIMARY)
        view_func, args, kwargs = replayed
        return view_func(request, *args, **kwargs)


def on_primary_when_missing[F: Callable[..., Any]](view: F) -> F:
    """A marked view's 404 from the replica is looked for again on the primary: an id handed out a moment ago
    (a Loggator event just posted by another client) is found wherever it is read."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from django.http import Http404

        try:
            return view(*args, **kwargs)
        except Http404:
            if _reads.get() != REPLICA:
                raise
            _reads.set(PRIMARY)
            return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
