"""OpenAPI descriptions of each family's error envelope, for drf-spectacular's `responses=`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from logsvc.pagination import MAX_OFFSET

_ENVELOPES: dict[str, Any] = {
    "logster": inline_serializer(
        "LogsterError",
        {
            "Message": serializers.CharField(help_text='e.g. "The request is invalid."'),
            "ModelState": serializers.DictField(
                child=serializers.ListField(child=serializers.CharField()),
                required=False,
                help_text='Field errors keyed "message.<Field>", e.g. "The Message field is required."',
            ),
        },
    ),
    "bytelog": inline_serializer(
        "BytelogError",
        {
            "error": serializers.CharField(help_text='"validation error" for a bad request'),
            "details": serializers.JSONField(required=False, help_text="What was wrong, by field (and index)."),
        },
    ),
    "loggator": inline_serializer(
        "LoggatorError",
        {"message": serializers.CharField(help_text='e.g. "Not Found"')},
    ),
    "goatcounter": inline_serializer(
        "GoatCounterError",
        {
            "error": serializers.CharField(required=False, help_text="What went wrong, when it is one thing."),
            "errors": serializers.DictField(
                child=serializers.ListField(child=serializers.CharField()),
                required=False,
                help_text="Problems by field, or by the index of a hit in a batch; never both error and errors.",
            ),
        },
    ),
}

_WHY = {
    400: "Invalid request: the body names what is wrong.",
    401: "Missing, wrong, revoked or expired API key.",
    403: "The API key lacks the scope this request needs.",
    404: "No such object (or it belongs to someone else).",
    411: "A body was sent without Content-Length.",
    413: "The body is larger than allowed (before or after gzip).",
    415: "Unsupported Content-Type or Content-Encoding.",
    409: "The export failed: `error` says why; start a new one.",
    410: "The export's file has expired and was deleted; start a new one.",
    429: "Rate limited: wait Retry-After seconds.",
}


def error_responses(family: str, *statuses: int) -> dict[int, OpenApiResponse]:
    return {status: OpenApiResponse(_ENVELOPES[family], description=_WHY[status]) for status in statuses}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """The three ways to send an API key; any one of them will do."""

    target_class = "logsvc.auth.ApiKeyAuthentication"
    name = ["ApiKeyHeader", "BearerKey", "BasicKey"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {"type": "apiKey", "in": "header", "name": "ApiKey", "description": "Logster style"},
            {"type": "http", "scheme": "bearer", "description": "Bytelog style: Authorization: Bearer <key>"},
            {"type": "http", "scheme": "basic", "description": "The key as the password, with an empty username"},
        ]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return [{name: []} for name in self.name]


def drop_slash_aliases(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    """`/api/v1/events/` answers like `/api/v1/events`; document the seed's spelling only."""
    paths = {endpoint[0] for endpoint in endpoints}
    return [endpoint for endpoint in endpoints if not (endpoint[0].endswith("/") and endpoint[0][:-1] in paths)]


BODY_ERRORS = ("411", "413", "415")  # logsvc.middleware.RequestBodyMiddleware, before any view


def declare_body_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every API operation that takes a body can be refused by the body middleware (no length, too large, an
    unknown encoding) in its family's envelope: the one its 401 is described with."""
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            responses = operation.get("responses", {})
            if method not in ("post", "put", "patch", "delete") or "401" not in responses:
                continue
            for status in BODY_ERRORS:
                responses.setdefault(status, {**responses["401"], "description": _WHY[int(status)]})
    return result


def bounded(minimum: int, maximum: int = MAX_OFFSET) -> dict[str, Any]:
    """An integer parameter's schema with the bounds its view enforces (by default, up to a bigint OFFSET)."""
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


NO_NUL = r"^[^\x00]*$"  # logsvc.middleware.NulParameterMiddleware refuses a NUL in any path or query parameter


def declare_no_nul(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every text parameter in a path or query string refuses a NUL (400): say so with a pattern, where the
    parameter has no stricter pattern, format or enum of its own."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = parameter.get("schema", {})
                if parameter.get("in") not in ("path", "query") or schema.get("type", "string") != "string":
                    continue
                if not {"pattern", "format", "enum"} & schema.keys():
                    schema["pattern"] = NO_NUL
    # Request bodies: every text field refuses a NUL at intake, in each family's validation.
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _no_nul_in_strings(schema)
    return result


def _no_nul_in_strings(schema: Any) -> None:
    if isinstance(schema, list):
        for item in schema:
            _no_nul_in_strings(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"pattern", "format", "enum", "$ref"} & schema.keys():
        schema["pattern"] = NO_NUL
    for key in ("properties", "items", "anyOf", "oneOf", "allOf", "additionalProperties"):
        value = schema.get(key)
        if key == "properties" and isinstance(value, dict):
            for item in value.values():
                _no_nul_in_strings(item)
        elif value is not None:
            _no_nul_in_strings(value)


# littlelogs' 400: DRF's {"detail": "..."} or its field lists, {"offset": ["..."], "non_field_errors": ["..."]}
DRF_ERRORS = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
}
# The request bodies whose views refuse a key they don't know ("unknown parameter")
STRICT_BODIES = ("ExportRequestRequest", "CountRequestRequest", "HitRequest")


def declare_parameter_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """An operation with a path or query parameter can answer 400 for a bad value of it (a NUL in any of
    them, a number out of bounds): declare it where the view didn't, in the envelope its 401 has. And a body
    that refuses unknown keys says so."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or not operation.get("parameters"):
                continue
            responses = operation.get("responses", {})
            template = responses.get("400") or responses.get("401") or responses.get("404")
            if "LittlelogsError" in str(template):  # DRF's field lists too, not only {"detail"}
                responses["400"] = {"description": _WHY[400], "content": {"application/json": {"schema": DRF_ERRORS}}}
            elif "400" in responses:
                continue
            elif template is not None:
                responses["400"] = {**template, "description": _WHY[400]}
            else:
                responses["400"] = {
                    "description": _WHY[400],
                    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": {}}}},
                }
    for name in STRICT_BODIES:
        if schema := result.get("components", {}).get("schemas", {}).get(name):
            schema["additionalProperties"] = False
    return result
