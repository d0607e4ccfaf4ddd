"""Shapes of the three families' bodies, for the OpenAPI document. Input is checked in validation.py."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def logster_text(max_length: int, **kwargs: Any) -> serializers.Field:
    """A Logster text field: a string, or a number read as its text (as Json.NET does; events.validation)."""
    schema: dict[str, Any] = {"anyOf": [{"type": "string", "maxLength": max_length}, {"type": "number"}]}
    if kwargs.get("allow_null"):
        schema["nullable"] = True
    field_class = extend_schema_field(schema)(type("LogsterText", (serializers.CharField,), {}))
    return field_class(max_length=max_length, **kwargs)


class LogMessageSerializer(serializers.Serializer):
    # Optional fields may be null, as absent (events.validation)
    Exception = logster_text(262_144, required=False, allow_blank=True, allow_null=True)
    Message = logster_text(32_768)
    StackTrace = logster_text(262_144, required=False, allow_blank=True, allow_null=True)
    Severity = serializers.IntegerField(min_value=0, max_value=6)
    Category = logster_text(256, required=False, allow_blank=True, allow_null=True)
    Application = logster_text(256, required=False, allow_blank=True, allow_null=True)
    User = logster_text(256, required=False, allow_blank=True, allow_null=True)


class StoredLogMessageSerializer(LogMessageSerializer):
    MessageId = serializers.CharField()
    Created = serializers.DateTimeField()


class MessageIdSerializer(serializers.Serializer):
    MessageId = serializers.CharField(help_text="The stored message's id, as a string.")


class LogMessageListSerializer(serializers.Serializer):
    Messages = StoredLogMessageSerializer(many=True)
    Next = serializers.URLField(allow_null=True, help_text="The next (older) page, or null.")


# What events.validation.parse_timestamp reads, as a pattern the document can carry (the 29th to 31st of a month
# are read too; a pattern can't tell which exist).
TIMESTAMP_PATTERN = (
    r"^([1-8]\d{3}|9[0-8]\d\d|99[0-8]\d)-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?$"
)


class EventInputSerializer(serializers.Serializer):
    id = extend_schema_field(  # events.validation.clean_event
        {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 64}], "nullable": True}
    )(type("ClientIdInput", (serializers.JSONField,), {}))(
        required=False, help_text="The client's own id (integer or string); not unique."
    )
    name = serializers.CharField(max_length=200)
    trace_id = extend_schema_field(  # a number is read as its text (events.validation.clean_event)
        {"anyOf": [{"type": "string", "maxLength": 64}, {"type": "integer"}], "nullable": True}
    )(type("TraceIdInput", (serializers.CharField,), {}))(
        required=False, allow_blank=True, allow_null=True, max_length=64
    )
    date = serializers.RegexField(
        TIMESTAMP_PATTERN,
        required=False,
        allow_null=True,
        help_text="ISO 8601, or 2021-07-04 13:34:56 (UTC); years 1000 to 9998. Null or absent: the time received.",
    )
    data = serializers.JSONField(required=False, help_text="Any JSON.")  # type: ignore[assignment]  # as below


class EventSerializer(serializers.Serializer):
    id = serializers.JSONField(allow_null=True)
    name = serializers.CharField()
    trace_id = serializers.CharField()
    date = serializers.DateTimeField()
    data = serializers.JSONField()  # type: ignore[assignment]  # DRF's metaclass takes it off the class: .data stays
    url = serializers.URLField(help_text="The event's public Loggator address.")


class EventListSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many events match, over all pages.")
    events = EventSerializer(many=True)


class PublicEventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The event's 16-character public id.")
    url = serializers.URLField()
    name = serializers.CharField()
    trace_id = serializers.CharField()
    date = serializers.DateTimeField()
    data = serializers.JSONField()  # type: ignore[assignment]  # DRF's metaclass takes it off the class: .data stays
    created_at = serializers.DateTimeField()
