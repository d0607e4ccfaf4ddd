"""HTTP behaviour shared by every API family: JSON errors, bodies, JSON-P, method override, redirects."""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.urls import is_valid_path

from logsvc.exceptions import error_response, family_for_path

GetResponse = Callable[[HttpRequest], HttpResponse]
JSON_TYPES = ("application/json", "application/javascript", "application/vnd.oai.openapi")


class ApiErrorMiddleware:
    """No error under /api/ is ever an HTML page: Django's own 404, 405, 413 and 500 pages become
    the family's JSON envelope with the same status. Outermost, so it sees every response."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and not response.get("Content-Type", "").startswith(JSON_TYPES)
            and not is_browsable_api_page(response)
            and family_for_path(request.path)
        ):
            new = error_response(request.path, response.status_code)
            for header, value in response.items():
                if header.lower() not in ("content-type", "content-length"):
                    new[header] = value
            return new
        return response


def is_browsable_api_page(response: HttpResponse) -> bool:
    """DRF's browsable API, asked for by a browser: its error pages carry the forms a signed-in user
    writes with (a 405 on a POST-only endpoint shows the POST form), so they stay HTML."""
    renderer = getattr(response, "accepted_renderer", None)
    return getattr(renderer, "format", None) == "api"


NUL_MESSAGE = "Must not contain NUL (U+0000) characters."


class NulParameterMiddleware:
    """A NUL (%00) anywhere in an API request's path or query parameters is a 400 in the family's envelope,
    before any view: PostgreSQL can't take one in a text value, so every lookup it reached was a 500."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if not family_for_path(path):
            return self.get_response(request)
        if "\x00" in path:
            return error_response(path, 400, NUL_MESSAGE, details={"path": [NUL_MESSAGE]})
        for name, values in request.GET.lists():
            if name == "callback" and request.method == "GET":
                continue  # JsonpMiddleware refuses any callback that is not a function name, in its own words
            if "\x00" in name or any("\x00" in value for value in values):
                return error_response(path, 400, NUL_MESSAGE, details={name.replace("\x00", "\\0"): [NUL_MESSAGE]})
        return self.get_response(request)


class GzipBodyTooLarge(Exception):
    pass


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing to inflate past limit bytes (gzip bombs)."""
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise GzipBodyTooLarge
    if not inflater.eof:
        raise zlib.error("truncated gzip stream")
    return out


class RequestBodyMiddleware:
    """Caps request bodies (413), requires a length (411), and inflates gzip bodies (415 for others).

    Runs before any parser reads the body, so the cap holds for JSON and XML alike (DRF's XML path
    would skip Django's own DATA_UPLOAD_MAX_MEMORY_SIZE check).
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        body_methods = ("POST", "PUT", "PATCH", "DELETE")
        if request.method in body_methods and family_for_path(request.path) and (error := self.prepare_body(request)):
            return error
        return self.get_response(request)

    def prepare_body(self, request: HttpRequest) -> HttpResponse | None:
        meta = request.META
        path = request.path
        if not meta.get("CONTENT_LENGTH"):
            if meta.get("HTTP_TRANSFER_ENCODING"):
                return error_response(path, 411, "Send the request with a Content-Length header, not chunked.")
            return None
        try:
            length = int(meta["CONTENT_LENGTH"])
        except ValueError:
            return error_response(path, 400, "The Content-Length header is not a number.", field="Content-Length")
        if length > settings.BODY_MAX_BYTES:
            return error_response(
                path,
                413,
                f"The request body is {length} bytes; the limit is {settings.BODY_MAX_BYTES} bytes. "
                "Send fewer items per request.",
            )
        encoding = meta.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding in ("", "identity"):
            return None
        if encoding not in ("gzip", "x-gzip"):
            return error_response(
                path, 415, f"Content-Encoding {encoding!r} is not supported: send the body as is, or gzip it."
            )
        limit = settings.BODY_MAX_DECOMPRESSED_BYTES
        try:
            body = gunzip(request.body, limit)
        except GzipBodyTooLarge:
            return error_response(
                path, 413, f"The body inflates past the limit of {limit} bytes. Send fewer items per request."
            )
        except zlib.error:
            return error_response(path, 400, "The body is not valid gzip, though Content-Encoding says it is.")
        # The parsers read _body/_stream; after this the request looks as if it came uncompressed.
        request._body = body
        request._stream = io.BytesIO(body)
        meta["CONTENT_LENGTH"] = str(len(body))
        del meta["HTTP_CONTENT_ENCODING"]
        return None


CALLBACK_RE = re.compile(r"[A-Za-z_$][\w$]{0,63}(\.[A-Za-z_$][\w$]{0,63}){0,3}")


class JsonpMiddleware:
    """`?callback=name` on an API GET wraps the JSON as `/**/name(...);` (the Loggator seed).

    Such a request is always anonymous: its cookies and credentials are dropped before anything reads
    them, so another site's <script> tag can never read a signed-in user's data.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        callback = request.GET.get("callback") if request.method == "GET" else None
        if callback is None or not family_for_path(request.path):
            return self.get_response(request)
        if not CALLBACK_RE.fullmatch(callback):
            return error_response(
                request.path,
                400,
                "The callback parameter must be a JavaScript function name, such as handleEvent.",
                field="callback",
            )
        for header in ("HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_APIKEY"):
            request.META.pop(header, None)
        request.COOKIES = {}
        response = self.get_response(request)
        if not response.get("Content-Type", "").startswith("application/json") or response.streaming:
            return response
        # U+2028/2029 are valid in JSON but end a line in older JavaScript engines.
        payload = response.content.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")
        response.content = b"/**/" + callback.encode() + b"(" + payload + b");"
        response["Content-Type"] = "application/javascript; charset=utf-8"
        response["Content-Length"] = str(len(response.content))  # else a server cuts the body short
        response["X-Content-Type-Options"] = "nosniff"
        return response


class MethodOverrideMiddleware:
    """`POST` with `_method=DELETE` (query, form field or X-HTTP-Method-Override, and for littlelogs a
    JSON body field too) is a DELETE; no other override."""

    JSON_BODY_LIMIT = 64 * 1024  # a delete carries no real body; don't parse big ones twice

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path.startswith("/api/"):
            method = request.GET.get("_method") or request.headers.get("X-HTTP-Method-Override", "")
            if not method and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                method = request.POST.get("_method", "")
                # CSRF reads the form's token only on a POST: carry it over as the header a DELETE is checked by.
                if token := request.POST.get("csrfmiddlewaretoken"):
                    request.META.setdefault(settings.CSRF_HEADER_NAME, token)
            elif not method and request.content_type == "application/json" and request.path.startswith("/api/1/"):
                method = self._json_method(request)
            if method.upper() == "DELETE":
                request.method = "DELETE"
        return self.get_response(request)

    def _json_method(self, request: HttpRequest) -> str:
        if int(request.META.get("CONTENT_LENGTH") or 0) > self.JSON_BODY_LIMIT:
            return ""
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return ""  # the view's parser will say what is wrong with it
        method = body.get("_method") if isinstance(body, dict) else None
        return method if isinstance(method, str) else ""


class HttpResponsePermanentRedirectKeepMethod(HttpResponsePermanentRedirect):
    status_code = 308


class SlashRedirectMiddleware:
    """A path that exists only with a trailing slash redirects there: 301 for GET/HEAD, 308 for the
    other methods, so a POST body survives (Django's APPEND_SLASH would answer 301 to all)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        path = request.path_info
        if (
            response.status_code == 404
            and not path.endswith("/")
            and not is_valid_path(path, getattr(request, "urlconf", None))
            and is_valid_path(f"{path}/", getattr(request, "urlconf", None))
        ):
            location = request.get_full_path(force_append_slash=True)
            if request.method in ("GET", "HEAD"):
                return HttpResponsePermanentRedirect(location)
            return HttpResponsePermanentRedirectKeepMethod(location)
        return response


class RateLimitHeadersMiddleware:
    """Writes X-Rate-Limit-Limit/-Remaining/-Reset on every response a rate limit counted."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if usage := getattr(request, "rate_limit", None):
            response["X-Rate-Limit-Limit"] = str(usage.limit)
            response["X-Rate-Limit-Remaining"] = str(usage.remaining)
            response["X-Rate-Limit-Reset"] = str(usage.reset)
        return response
