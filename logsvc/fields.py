"""Serializer fields whose OpenAPI description says exactly what they take."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA zone names both Python and PostgreSQL know. Python lists every zone file of the host, and
    Debian's include "localtime" (a link to /etc/localtime), which PostgreSQL's own zone data (the embedded
    server's) lacks: a site in it failed every query that used its zone, with a 500."""
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


class StrictCharField(serializers.CharField):
    """A JSON string only: DRF's CharField takes 0 or 1.5 as "0" and "1.5", which the document forbids."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "enum": sorted(time_zones())})
class TimeZoneField(StrictCharField):
    """An IANA time zone name; the document lists them (the serializer's own validator says what is wrong).

    An empty one in a form is refused as in JSON (DRF would take it as "not sent" for a field not required)."""

    def get_value(self, dictionary: Any) -> Any:
        if html.is_html_input(dictionary) and dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)


IP_SCHEMA = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}


@extend_schema_field(IP_SCHEMA)
class IPAddressDocField(serializers.CharField):
    """An IPv4 or IPv6 address, as the document says (for fields a view checks itself); blank when allowed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.allow_blank:
            self._spectacular_annotation = {"field": {"anyOf": [IP_SCHEMA, {"type": "string", "maxLength": 0}]}}


# What Django's URLValidator takes for sure (it takes more: ftp, IP addresses, ports, queries; the pattern keeps
# the document's examples within what it accepts), or empty.
HTTP_URL_PATTERN = r"^(|https?://([a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\.){1,3}[a-z]{2,12}(/[A-Za-z0-9._~%-]{0,40}){0,5})$"


@extend_schema_field({"type": "string", "maxLength": 200, "pattern": HTTP_URL_PATTERN})
class HttpURLField(serializers.URLField):
    """A web address (or empty, where blank is allowed)."""


MAX_INT32 = 2**31 - 1
SIZE_NUMBER = {"type": "number", "minimum": 0, "maximum": MAX_INT32}


@extend_schema_field(
    {
        "anyOf": [
            {"type": "array", "items": SIZE_NUMBER},
            SIZE_NUMBER,
            {"type": "string", "pattern": r"^(\d{1,9}(\.\d{1,6})?(,\d{1,9}(\.\d{1,6})?)*)?$"},
        ]
    }
)
class SizeDocField(serializers.Field):
    """A screen size as analytics.hitinfo.parse_size reads it: a width, a list of numbers, or them comma-separated."""


@extend_schema_field(IP_SCHEMA)
class IPAddressField(serializers.IPAddressField):
    """DRF's IPAddressField, described as the IPv4 or IPv6 address it takes."""


class StrictBooleanField(serializers.BooleanField):
    """true or false only: DRF's BooleanField takes 0, 1, "yes" and "off" too, which the document forbids."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
