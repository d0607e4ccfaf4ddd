"""API key authentication (`ApiKey:`, `Authorization: Bearer`, HTTP Basic with an empty username) and scopes."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from logsvc.models import ApiKey, User, hash_key


class AuthenticatedRequest(Request):
    """For type checkers only: the request a view behind IsAuthenticated is given (DRF's says AnonymousUser too)."""

    user: User


class KeyRequest(AuthenticatedRequest):
    """For type checkers only: the request of a view whose one authenticator is ApiKeyAuthentication."""

    auth: ApiKey


def raw_key_from_request(request: Request | HttpRequest) -> str | None:
    """The key the request carries, or None; a malformed Authorization header is a 401."""
    if key := request.META.get("HTTP_APIKEY"):
        return key.strip()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and value:
        return value
    if scheme == "basic":
        try:
            username, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Invalid Basic authorization header.") from None
        if username:
            raise exceptions.AuthenticationFailed("Send the API key as the password, with an empty username.")
        return password or None
    return None  # another scheme (e.g. an OAuth token) is for another authenticator


# raw key's hash -> (when it was read, the key with its user)
_recent_keys: dict[str, tuple[float, ApiKey]] = {}
RECENT_KEYS_MAX = 1000


def recently_seen_key(raw: str) -> ApiKey | None:
    """ApiKey.objects.for_key(raw), remembered by this process for API_KEY_CACHE_SECONDS.

    The lookup was a third of the CPU of a one-event POST, and a client sending many requests sends the
    same key each time. The price: a revoked key (or a deactivated user) keeps working in a process for
    up to that many seconds; expiry is still checked on every request. Unknown keys are never remembered.
    """
    ttl = settings.API_KEY_CACHE_SECONDS
    if not ttl:
        return ApiKey.objects.for_key(raw)
    digest, now = hash_key(raw), time.time()
    seen = _recent_keys.get(digest)
    if seen is not None and now - seen[0] < ttl:
        return seen[1] if seen[1].is_usable() else None
    key = ApiKey.objects.for_key(raw)
    if key is not None:
        if len(_recent_keys) >= RECENT_KEYS_MAX:
            _recent_keys.clear()
        _recent_keys[digest] = (now, key)
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        raw = raw_key_from_request(request)
        if raw is None:
            return None
        key = recently_seen_key(raw)
        if key is None or not key.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        key.touch()
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        # Any value here makes DRF answer 401 (not 403) to a request without credentials.
        return 'Bearer realm="api"'


class HasScope(permissions.BasePermission):
    """The view's `required_scopes` maps a method to the scope an API key needs for it.

    A method the mapping doesn't name needs no scope (HEAD and OPTIONS follow GET).
    """

    message = "This API key does not have the scope this request needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(view, "public", False):
            return True
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        scopes: dict[str, str] = getattr(view, "required_scopes", {})
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        needed = scopes.get(method or "")
        if needed is None:
            return True
        if not isinstance(request.auth, ApiKey):
            return False
        if needed not in request.auth.scopes:
            self.message = f"This API key lacks the {needed!r} scope this request needs."
            return False
        return True
