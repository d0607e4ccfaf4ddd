from __future__ import annotations

from typing import Any

SELF_PATH = "/api/1/users/$self/"


def restore_self_path(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular reads the `$` of the seed's `users/$self/` as a regex anchor and drops it; put it back."""
    paths = result.get("paths", {})
    if (stripped := SELF_PATH.replace("$", "")) in paths:
        result["paths"] = {SELF_PATH if path == stripped else path: item for path, item in paths.items()}
    return result
