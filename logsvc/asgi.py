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

import contextlib
import functools
import os
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from asgiref.wsgi import WsgiToAsgi
from django.core.signals import setting_changed
from django.db import close_old_connections, connections
from django.dispatch import receiver
from django.http import HttpRequest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsvc.settings")

from django.core.wsgi import get_wsgi_application

django_application = WsgiToAsgi(get_wsgi_application())

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[["AsgiRequest", Send], Awaitable[bool]]

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
    """Close the database connections of the lookup threads (tests, which drop their database afterwards)."""
    barrier = threading.Barrier(LOOKUP_THREADS, timeout=5)

    def close() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # each task holds its thread until all threads have one
        connections.close_all()

    for future in [_lookups.submit(close) for _ in range(LOOKUP_THREADS)]:
        future.result()


class Query(dict):
    """The query string as request.GET is read by the hot paths (get, dict, lists), a few times cheaper to make
    than a QueryDict; like QueryDict.dict(), a name given twice keeps its last value."""

    def dict(self) -> dict[str, str]:
        return self

    def lists(self) -> list[tuple[str, list[str]]]:
        return [(name, [value]) for name, value in self.items()]


class AsgiRequest(HttpRequest):
    """Just enough of a Django request for a hot path: META, GET, the Host checked against ALLOWED_HOSTS
    (get_host), the client address as DRF's throttles read it, and is_secure()."""

    def __init__(self, scope: Scope) -> None:
        # Not HttpRequest.__init__: its three empty QueryDicts cost more than the rest of a pixel's parsing.
        self.scope = scope
        self.resolver_match = None
        self._stream = None
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
        self.GET = Query(parse_qsl(query, keep_blank_values=True))

    def _get_scheme(self) -> str:
        return self.scope.get("scheme", "http")


HOT_PATHS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/count(?:/(?P<code>[-a-zA-Z0-9_]+))?"), "analytics.pixel.count_pixel"),
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
                if await _handler(dotted)(request, send):
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
    await django_application(scope, capped(receive), send)


def capped(receive: Receive) -> Receive:
    """receive, ending the body past the largest one any view takes. WsgiToAsgi reads a body whole before Django
    sees it, where gunicorn's sync worker let RequestBodyMiddleware refuse it from its Content-Length (413) or
    its missing length (411) unread: those answers still come from the headers, and no body fills the disk."""
    from django.conf import settings

    limit = max(settings.BODY_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)
    read = 0

    async def receive_capped() -> dict[str, Any]:
        nonlocal read
        if read > limit:
            return {"type": "http.request", "body": b"", "more_body": False}
        message = await receive()
        read += len(message.get("body", b""))
        return message

    return receive_capped


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
