from __future__ import annotations

from typing import Any

SELF_PATH = "/api/1/users/$self/"


def restore_self_path(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular reads the `$` of the seed's `users/$self/` as a regex anchor and drops it; put it back."""
    paths = result.get("paths", {})
    if (stripped := SELF_PATH.replace("$", "")) in paths:
        result["paths"] = {SELF_PATH if path == stripped else path: item for path, item in paths.items()}
    return result


BEARER_TOKEN = {
    "type": "http",
    "scheme": "bearer",
    "description": "A littlelogs OAuth2 access token, sent as Authorization: Bearer <token>.",
}


def declare_bearer_token(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """An OAuth2 access token travels as an HTTP bearer token: say so next to the oauth2 scheme, so a client (or
    a fuzzer checking that a request without credentials is refused) knows which header carries it."""
    uses_oauth2 = False
    for item in result.get("paths", {}).values():
        for operation in item.values():
            security = operation.get("security") if isinstance(operation, dict) else None
            if security and any("oauth2" in requirement for requirement in security):
                security.append({"OAuth2BearerToken": []})
                uses_oauth2 = True
    if uses_oauth2:
        result.setdefault("components", {}).setdefault("securitySchemes", {})["OAuth2BearerToken"] = BEARER_TOKEN
    return result
