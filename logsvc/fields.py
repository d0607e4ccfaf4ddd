"""Serializer fields whose OpenAPI description says exactly what they take."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html


@functools.cache
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


class StrictCharField(serializers.CharField):
    """A JSON string only: DRF's CharField takes 0 or 1.5 as "0" and "1.5", which the document forbids."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "enum": time_zones()})
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
    """An IPv4 or IPv6 address, as the document says (for fields a view checks itself)."""


@extend_schema_field(IP_SCHEMA)
class IPAddressField(serializers.IPAddressField):
    """DRF's IPAddressField, described as the IPv4 or IPv6 address it takes."""


class StrictBooleanField(serializers.BooleanField):
    """true or false only: DRF's BooleanField takes 0, 1, "yes" and "off" too, which the document forbids."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
