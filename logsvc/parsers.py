from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from django.conf import settings
from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser on orjson: same errors, a fraction of the time on 500-event batches."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return orjson.loads(stream.read() if stream is not None else b"")
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class FormParser(parsers.FormParser):
    """DRF's form parser, but a body that is not UTF-8 (raw or %-encoded) is a 400: Django would
    quietly store U+FFFD in place of the bad bytes."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        body = stream.read() if stream is not None else b""
        try:
            unquote_to_bytes(body).decode()  # raw bytes and %-escapes alike; "&" and "=" are ASCII
        except UnicodeDecodeError:
            raise ParseError("The form body is not valid UTF-8.") from None
        return QueryDict(body, encoding=settings.DEFAULT_CHARSET)
