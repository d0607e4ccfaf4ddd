"""Serializer fields whose OpenAPI description says exactly what they take."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


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
    """An IANA time zone name; the document lists them (the serializer's own validator says what is wrong)."""


@extend_schema_field({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
class IPAddressDocField(serializers.CharField):
    """An IPv4 or IPv6 address, as the document says (for fields a view checks itself)."""
