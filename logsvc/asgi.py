"""The web server's application: the hot ingestion paths served asynchronously with group commit
(logsvc.groupcommit), every other path by Django as under gunicorn's sync workers.

    gunicorn logsvc.asgi -k uvicorn_worker.UvicornWorker ...   (make run, the Dockerfile)

A hot path's handler answers each request only after the commit that holds its rows; concurrent requests
share that commit. Anything a handler does not take on (another method, a redirect to https, a Host
Django must refuse) goes to Django, which answers it as it always has. Django runs on one thread per
process, as a sync worker would, with its persistent database connection; its request body is read in full
by the event loop first, so a slow client holds no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote_plus

from asgiref.sync import sync_to_async
from asgiref.wsgi import WsgiToAsgiInstance
from django.core.signals import setting_changed
from django.db import close_old_connections, connections
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.request import HttpHeaders

if TYPE_CHECKING:
    from wsgiref.types import StartResponse

    from logsvc.models import ApiKey

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsvc.settings")

from django.core.wsgi import get_wsgi_application

django_wsgi = get_wsgi_application()

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
Handler = Callable[["AsgiRequest", Receive, Send], Awaitable[bool]]

# The hot paths' few blocking lookups (a site not seen for 10 s, the day's salt, scheduling a rollup) run here,
# never on Django's thread, where they would wait behind a slow page.
LOOKUP_THREADS = 2
_lookups = ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="hot-path-lookups")


def _fresh(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    close_old_connections()  # what Django does at each request: a connection broken meanwhile is replaced
    return function(*args, **kwargs)


async def run_sync(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking (ORM) call off the event loop."""
    return await sync_to_async(_fresh, thread_sensitive=False, executor=_lookups)(function, *args, **kwargs)


def close_lookup_connections() -> None:
    """Close the database connections of the lookup threads and of Django's thread (tests, which drop their
    database afterwards)."""
    barrier = threading.Barrier(LOOKUP_THREADS, timeout=5)

    def close() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # each task holds its thread until all threads have one
        connections.close_all()

    for future in [_lookups.submit(close) for _ in range(LOOKUP_THREADS)]:
        future.result()
    _django.submit(connections.close_all).result()


class Query(dict):
    """The query string as request.GET is read by the hot paths (get, dict, lists), a few times cheaper to make
    than a QueryDict; like QueryDict.dict(), a name given twice keeps its last value."""

    def dict(self) -> dict[str, str]:
        return self

    def lists(self) -> list[tuple[str, list[str]]]:
        return [(name, [value]) for name, value in self.items()]


def parse_query(query: str) -> Query:
    """What parse_qsl(query, keep_blank_values=True) gives, as a Query; a part with nothing to decode is taken as it
    is (parse_qsl decoded every name and value: a sixth of a pixel hit's parsing)."""
    pairs = Query()
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            if "%" in part or "+" in part:
                name, value = unquote_plus(name), unquote_plus(value)
            pairs[name] = value
    return pairs


class Headers(Mapping[str, str]):
    """request.headers, read from META when asked (building Django's HttpHeaders parsed every header)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self._meta = meta

    def __getitem__(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        return self._meta[key if key in HttpHeaders.UNPREFIXED_HEADERS else f"HTTP_{key}"]

    def __iter__(self) -> Iterator[str]:
        return iter(HttpHeaders(self._meta))

    def __len__(self) -> int:
        return len(HttpHeaders(self._meta))


class AsgiRequest(HttpRequest):
    """Just enough of a Django request for a hot path: META, GET, the Host checked against ALLOWED_HOSTS
    (get_host), the client address as DRF's throttles read it, and is_secure()."""

    kwargs: dict[str, str]  # the hot path's named groups, set by application()
    auth: ApiKey  # set by a hot path that checked a key, as DRF would have (analytics.pixel.post_count)

    def __init__(self, scope: Scope) -> None:
        # Not HttpRequest.__init__: its three empty QueryDicts cost more than the rest of a pixel's parsing.
        self.scope = scope
        self.resolver_match = None
        self._stream = None  # type: ignore[assignment]  # no stream: a hot path reads its body from receive()
        self.content_type = self.content_params = None
        self.method = scope["method"]
        self.path = self.path_info = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client") or ("", 0)
        meta: dict[str, Any] = {"REMOTE_ADDR": client[0], "QUERY_STRING": query, "REQUEST_METHOD": self.method}
        server = scope.get("server") or ("", 0)
        meta["SERVER_NAME"], meta["SERVER_PORT"] = server[0] or "", str(server[1] or "")
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1").upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = f"HTTP_{key}"
            text = value.decode("latin-1")
            meta[key] = f"{meta[key]},{text}" if key in meta else text
        self.META = meta
        self.headers = Headers(meta)  # type: ignore[assignment]
        self.GET = parse_query(query)  # type: ignore[assignment]  # a plain dict: cheaper than a QueryDict
        self.body_messages: list[dict[str, Any]] | None = None  # what a hot path read of the body

    def _get_scheme(self) -> str:
        return self.scope.get("scheme", "http")


HOT_PATHS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/count(?:/(?P<code>[-a-zA-Z0-9_]+))?"), "analytics.pixel.count_pixel"),
    (re.compile(r"/api/v1/events/?"), "events.asgi.post_event"),
    (re.compile(r"/api/Log/?"), "events.asgi.post_log_message"),
    (re.compile(r"/api/v0/count"), "analytics.pixel.post_count"),
]
_handlers: dict[str, Handler] = {}


def _handler(dotted: str) -> Handler:
    handler = _handlers.get(dotted)
    if handler is None:
        from django.utils.module_loading import import_string

        handler = _handlers[dotted] = import_string(dotted)
    return handler


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        for pattern, dotted in HOT_PATHS:
            if match := pattern.fullmatch(scope["path"]):
                request = AsgiRequest(scope)
                request.kwargs = match.groupdict(default="")
                if await _handler(dotted)(request, receive, send):
                    return
                if request.body_messages is not None:  # read, then left to Django: it gets the same body
                    await to_django(scope, _replay(request.body_messages, receive), send)
                    return
                break
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await to_django(scope, receive, send)


def _replay(messages: list[dict[str, Any]], receive: Receive) -> Receive:
    pending = iter(messages)

    async def receive_again() -> dict[str, Any]:
        message = next(pending, None)
        return message if message is not None else await receive()

    return receive_again


async def read_body(request: AsgiRequest, receive: Receive, limit: int) -> bytes | None:
    """The request's body for a hot path, or None (too long, late, or its client gone) to leave it to Django,
    which reads what is left and answers as always; the messages read are kept for it (body_messages)."""
    from django.conf import settings

    request.body_messages = messages = []
    size = 0
    try:
        async with asyncio.timeout(settings.REQUEST_BODY_TIMEOUT):
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    return None
                size += len(message.get("body", b""))
                if size > limit:
                    return None
                if not message.get("more_body"):
                    break
    except TimeoutError:
        return None
    return b"".join(message.get("body", b"") for message in messages)


async def to_django(scope: Scope, receive: Receive, send: Send) -> None:
    """Hand a request to Django once its body has arrived, as a sync worker behind a buffering proxy would get it.

    The body is read here, by the event loop: a client that sends it slowly holds no thread, and one that has
    not sent it within REQUEST_BODY_TIMEOUT gets a 408. Reading stops past the largest body any view takes:
    RequestBodyMiddleware answers 413 (or 411 without a length) from the headers, and no body fills the memory.
    """
    from django.conf import settings

    from logsvc.exceptions import error_response

    if scope["type"] != "http":
        return  # no websockets
    limit = max(settings.BODY_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)
    messages: list[dict[str, Any]] = []
    read = 0
    try:
        async with asyncio.timeout(settings.REQUEST_BODY_TIMEOUT):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # gone before its request was whole: nothing to answer
                messages.append(message)
                read += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
                if read > limit:
                    messages[-1] = {**message, "more_body": False}
                    break
    except TimeoutError:
        seconds = settings.REQUEST_BODY_TIMEOUT
        response = error_response(scope["path"], 408, f"The request body did not arrive within {seconds} s.")
        await send_response(
            send, 408, [("Content-Type", response["Content-Type"]), ("Connection", "close")], response.content
        )
        return
    body = tempfile.SpooledTemporaryFile(max_size=65536)  # noqa: SIM115 (closed below)
    for message in messages:
        body.write(message.get("body", b""))
    body.seek(0)
    bridge = WsgiToAsgiInstance(django_wsgi)
    bridge.scope = scope
    environ = bridge.build_environ(scope, body)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(_django, _run_django, environ, send, loop)
    finally:
        body.close()


# Django's thread: one per process, as a sync worker has, so its persistent database connection is one too.
_django = ThreadPoolExecutor(max_workers=1, thread_name_prefix="django")


def _run_django(environ: dict[str, Any], send: Send, loop: asyncio.AbstractEventLoop) -> None:
    """Run the WSGI application on Django's thread and stream its answer through the event loop.

    (asgiref's WsgiToAsgi does this with async_to_sync, whose per-context executors broke under concurrent
    keep-alive requests: "CurrentThreadExecutor already quit or is broken".)
    """

    def blocking_send(message: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(send(message), loop).result()

    head: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        head["status"] = int(status.split(" ", 1)[0])
        head["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    # Django never calls the write() a WSGI start_response returns
    result = django_wsgi(environ, cast("StartResponse", start_response))
    try:
        started = False
        for chunk in result:
            if not started:
                blocking_send({"type": "http.response.start", "status": head["status"], "headers": head["headers"]})
                started = True
            if chunk:
                blocking_send({"type": "http.response.body", "body": chunk, "more_body": True})
        if not started:
            blocking_send({"type": "http.response.start", "status": head["status"], "headers": head["headers"]})
        blocking_send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if hasattr(result, "close"):
            result.close()  # Django's request_finished: its connection is closed if it must be


async def send_response(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def security_headers(request: AsgiRequest) -> list[tuple[str, str]]:
    """The headers Django's middleware adds to every answer (SecurityMiddleware, XFrameOptionsMiddleware,
    corsheaders' Vary), so a hot path answers as Django would."""
    return list(_security_headers(request.is_secure()))


@functools.cache
def _security_headers(secure: bool) -> tuple[tuple[str, str], ...]:
    from django.conf import settings

    headers = [("X-Frame-Options", settings.X_FRAME_OPTIONS), ("Vary", "origin")]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        headers.append(("Referrer-Policy", settings.SECURE_REFERRER_POLICY))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    if settings.SECURE_HSTS_SECONDS and secure:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        headers.append(("Strict-Transport-Security", value))
    return tuple(headers)


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    _security_headers.cache_clear()  # tests that change a setting
