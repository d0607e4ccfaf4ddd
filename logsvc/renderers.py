from __future__ import annotations

from typing import Any

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_encoder = JSONEncoder()


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer on orjson (several times faster on event lists); indented output when asked."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        # OPT_NON_STR_KEYS: DRF keys the errors of a list field's items by their int index
        return orjson.dumps(data, default=_encoder.default, option=orjson.OPT_NON_STR_KEYS)
