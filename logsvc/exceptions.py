"""One place that turns every API error into its family's envelope (DESIGN.md, "Error envelopes").

Each seed has its own shape; the family of a request is the view's `error_family`, else the
settings.API_FAMILIES entry whose prefix its path starts with.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from logsvc import replica

logger = logging.getLogger(__name__)

# Fixed texts the seeds (or the services they copy) use for a status, whatever the cause.
FIXED_MESSAGES: dict[str, dict[int, str]] = {
    "logster": {
        400: "The request is invalid.",
        401: "Authorization has been denied for this request.",
        404: "No HTTP resource was found that matches the request URI.",
        500: "An error has occurred.",
    },
    "bytelog": {400: "validation error"},
    "loggator": {404: "Not Found", 500: "Server Error"},
}


def family_for_path(path: str) -> str | None:
    for prefix, family in settings.API_FAMILIES:
        if path.startswith(prefix):
            return family
    return None


def is_api_path(path: str) -> bool:
    return family_for_path(path) is not None or path in ("/count", "/healthz")


def error_body(family: str | None, status: int, message: str = "", details: Any = None) -> Any:
    """The JSON body of an error in the family's own envelope."""
    message = FIXED_MESSAGES.get(family or "", {}).get(status) or message or HTTPStatus(status).phrase
    if family == "logster":
        body: dict[str, Any] = {"Message": message}
        if details:
            body["ModelState"] = details
        return body
    if family == "bytelog":
        return {"error": message, "details": details} if details else {"error": message}
    if family == "goatcounter":
        return {"errors": dict(_flat_errors(details))} if details else {"error": message}
    if family == "loggator":
        return {"message": message, "errors": details} if details else {"message": message}
    # littlelogs and anything else: DRF's own shapes
    return details if details else {"detail": message}


def _flat_errors(errors: Any, key: str = "") -> Iterator[tuple[str, list[str]]]:
    """GoatCounter's {"errors": {"key": ["message"]}}, a nested field's key dotted: {"settings.timezone": [...]}."""
    if isinstance(errors, dict):
        for name, value in errors.items():
            yield from _flat_errors(value, f"{key}.{name}" if key else str(name))
    elif isinstance(errors, list) and all(isinstance(item, str) for item in errors):
        yield key, [str(item) for item in errors]
    elif isinstance(errors, list):  # a list of nested objects: their errors by index
        for index, value in enumerate(errors):
            if value:
                yield from _flat_errors(value, f"{key}.{index}" if key else str(index))
    else:
        yield key, [str(errors)]


def error_response(
    path: str, status: int, message: str = "", details: Any = None, field: str | None = None
) -> JsonResponse:
    """An error answered outside a DRF view (middleware, 404 and 500 handlers).

    Where the family's fixed text for the status replaces message, the message still says why, under
    field (default: the body's own key, as for a body that could not be parsed).
    """
    family = family_for_path(path)
    fixed = FIXED_MESSAGES.get(family or "", {}).get(status)
    if details is None and message and fixed and fixed != message:
        details = {field or ("message" if family == "logster" else "body"): [message]}
    body = error_body(family, status, message, details)
    response = JsonResponse(body, status=status, safe=False, json_dumps_params={"separators": (",", ":")})
    response["Content-Length"] = str(len(response.content))
    return response


def _details(family: str | None, exc: exceptions.APIException, data: Any) -> Any:
    if isinstance(exc, exceptions.ValidationError):
        return data if isinstance(data, dict) else {"non_field_errors": data}
    if exc.status_code == 400 and family in ("logster", "bytelog"):
        # (GoatCounter says it in {"error": "..."}, as for "no hits" or "unknown parameter")
        # A body that could not be parsed: say why, under the body's own key.
        key = "message" if family == "logster" else "body"
        return {key: [str(exc.detail)]}
    return None


class DatabaseUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The service is unavailable for a moment; try again."
    default_code = "unavailable"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, OperationalError) and replica.reads() != replica.REPLICA:
        # The database (or pgbouncer) is out of reach for a moment: try again, not a bug. (On the replica it is
        # left to logsvc.replica, which answers from the primary.)
        logger.warning("The database failed under %s: %s", context["request"].path, exc)
        exc = DatabaseUnavailable()
    response = drf_exception_handler(exc, context)
    if isinstance(exc, DatabaseUnavailable) and response is not None:
        response["Retry-After"] = "1"
    if response is None:
        return None  # a bug, not a client error: ApiErrorMiddleware logs it and answers a JSON 500
    assert isinstance(exc, exceptions.APIException)
    view = context.get("view")
    request = context.get("request")
    family = getattr(view, "error_family", None) or (family_for_path(request.path) if request else None)
    if family == "littlelogs":
        return response  # DRF's {"detail": ...} and field lists are that seed's envelope
    message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else ""
    response.data = error_body(family, response.status_code, message, _details(family, exc, response.data))
    return response
