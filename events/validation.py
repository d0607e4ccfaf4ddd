"""Checking posted log messages and events, with each seed's own error texts.

Written out rather than as DRF serializers: Logster needs ASP.NET's exact ModelState sentences, and a
500-event Bytelog batch must validate in about a millisecond, which a Serializer per item can't do.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

# Logster field -> (model attribute, maximum length)
LOGSTER_TEXT_FIELDS = {
    "Exception": ("exception", 262_144),
    "Message": ("message", 32_768),
    "StackTrace": ("stack_trace", 262_144),
    "Category": ("category", 256),
    "Application": ("application", 256),
    "User": ("user", 256),
}
SEVERITY_MIN, SEVERITY_MAX = 0, 6
EVENT_NAME_MAX = 200
TRACE_ID_MAX = 64
CLIENT_ID_MAX = 64
EVENT_DATA_MAX_BYTES = 262_144

Errors = dict[str, list[str]]

# PostgreSQL text and jsonb can't hold U+0000: refused here, as a 400, rather than failing the INSERT (a 500).
NUL = "\x00"
JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # a \u0000 escape, not an escaped backslash before u0000


def has_nul(value: str) -> bool:
    return NUL in value


def json_has_nul(data_json: bytes) -> bool:
    return b"\\u0000" in data_json and JSON_NUL.search(data_json) is not None


def _logster_text(value: Any, field: str, max_length: int) -> tuple[str, str | None]:
    if value is None:
        return "", None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return "", f"The field {field} must be a string."
    text = value if isinstance(value, str) else str(value)  # Json.NET reads 42 into a string field as "42"
    if len(text) > max_length:
        return "", f"The field {field} must be a string with a maximum length of {max_length}."
    if has_nul(text):
        return "", f"The field {field} must not contain a NUL (U+0000) character."
    return text, None


def _logster_severity(value: Any) -> tuple[int, str | None]:
    if value is None or value == "":
        return 0, "The Severity field is required."
    if isinstance(value, bool):
        return 0, f"The value '{str(value).lower()}' is not valid for Severity."
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return 0, f"The value '{value}' is not valid for Severity."
    if not isinstance(value, int):
        return 0, f"The value '{value}' is not valid for Severity."
    if not SEVERITY_MIN <= value <= SEVERITY_MAX:
        return 0, f"The field Severity must be between {SEVERITY_MIN} and {SEVERITY_MAX}."
    return value, None


def clean_log_message(item: Any, prefix: str) -> tuple[dict[str, Any], Errors]:
    """The LogMessage fields of one posted message, and its errors keyed `<prefix>.<Field>`."""
    if not isinstance(item, dict):
        return {}, {prefix: ["The message must be an object with at least Message and Severity."]}
    # ASP.NET binds property names case-insensitively: "message" and "MESSAGE" are Message too.
    by_name = {str(key).lower(): value for key, value in item.items()}
    values: dict[str, Any] = {}
    errors: Errors = {}
    for field, (attr, max_length) in LOGSTER_TEXT_FIELDS.items():
        values[attr], error = _logster_text(by_name.get(field.lower()), field, max_length)
        if error:
            errors[f"{prefix}.{field}"] = [error]
    if not values["message"].strip() and f"{prefix}.Message" not in errors:
        errors[f"{prefix}.Message"] = ["The Message field is required."]
    values["severity"], error = _logster_severity(by_name.get("severity"))
    if error:
        errors[f"{prefix}.Severity"] = [error]
    return values, errors


def parse_timestamp(value: str) -> datetime | None:
    """ISO 8601, or the seed's `2021-07-04 13:34:56`; a time without a zone is UTC. None if unreadable."""
    try:
        parsed = datetime.fromisoformat(value.strip())
        # In UTC, as stored: a time whose UTC falls outside years 1-9999 would be stored but never read back.
        return (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def clean_event(item: Any) -> tuple[dict[str, Any], Errors]:
    """The Event fields of one posted Bytelog event (and `data_json`, its JSON text), and its errors by field."""
    if not isinstance(item, dict):
        return {}, {"non_field_errors": ["An event must be a JSON object with at least a name."]}
    values: dict[str, Any] = {}
    errors: Errors = {}

    client_id = item.get("id")
    if client_id is not None and (
        isinstance(client_id, bool)
        or not isinstance(client_id, (int, str))
        or (isinstance(client_id, str) and len(client_id) > CLIENT_ID_MAX)
    ):
        errors["id"] = [f"Must be an integer or a string of at most {CLIENT_ID_MAX} characters."]
    elif isinstance(client_id, str) and has_nul(client_id):
        errors["id"] = ["Must not contain a NUL (U+0000) character."]
    values["client_id"] = client_id

    name = item.get("name")
    if name is None or name == "":
        errors["name"] = ["This field is required."]
    elif not isinstance(name, str) or len(name) > EVENT_NAME_MAX:
        errors["name"] = [f"Must be a string of at most {EVENT_NAME_MAX} characters."]
    elif has_nul(name):
        errors["name"] = ["Must not contain a NUL (U+0000) character."]
    values["name"] = name

    trace_id = item.get("trace_id")
    if trace_id is None:
        trace_id = ""
    elif isinstance(trace_id, int) and not isinstance(trace_id, bool):
        trace_id = str(trace_id)
    if not isinstance(trace_id, str) or len(trace_id) > TRACE_ID_MAX:
        errors["trace_id"] = [f"Must be a string of at most {TRACE_ID_MAX} characters."]
    elif has_nul(trace_id):
        errors["trace_id"] = ["Must not contain a NUL (U+0000) character."]
    values["trace_id"] = trace_id

    date = item.get("date")
    if date is not None:
        parsed = parse_timestamp(date) if isinstance(date, str) else None
        if parsed is None:
            errors["date"] = ["Use ISO 8601, such as 2021-07-04T13:34:56Z, or 2021-07-04 13:34:56 (read as UTC)."]
        values["date"] = parsed

    values["data"] = item.get("data", {})
    values["data_json"] = orjson.dumps(values["data"])
    if len(values["data_json"]) > EVENT_DATA_MAX_BYTES:
        errors["data"] = [f"Must be at most {EVENT_DATA_MAX_BYTES} bytes of JSON."]
    elif json_has_nul(values["data_json"]):
        errors["data"] = ["Must not contain a NUL (U+0000) character: PostgreSQL's jsonb can't store it."]
    return values, errors
