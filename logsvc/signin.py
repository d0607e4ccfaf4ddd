"""Failed sign-ins are limited, on every sign-in form and on the OAuth token endpoint's client authentication.

django-axes counts the failures (in PostgreSQL, so every process and machine sees the same counts) and
refuses further attempts, without hashing the password, with a 429 that says when to try again:

* per account and client address: SIGNIN_FAILURE_LIMIT failures (5) lock that account *from that address*;
* per client address, whatever the accounts: SIGNIN_ADDRESS_FAILURE_LIMIT failures (20) lock the address.

Each lock lifts SIGNIN_LOCKOUT_SECONDS (15 minutes) after the last failure that counted; attempts refused while
locked do not extend it. An attacker's failures never lock an account for anyone signing in from elsewhere. An
IPv6 address counts as its /64 (logsvc.clientip.client_network).

OAuth clients authenticating at /oauth/token and /oauth/revoke_token are counted the same way, under the
name "oauth-client:<client_id>", which no username can take (usernames have no ":").
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import timezone


class SignInBackend(AxesStandaloneBackend):
    """First in AUTHENTICATION_BACKENDS: refuses a locked-out sign-in before any password is hashed.

    Every sign-in over HTTP passes its request to authenticate(); a call without one (the test client's
    login(), a script) has no address to count and is let through to the password check, where axes' own
    backend would raise a ValueError."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs
    ):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


class SignInAttempts(AxesDatabaseHandler):
    """Axes' database handler with a limit of its own for each of AXES_LOCKOUT_PARAMETERS' two entries:
    [["username", "ip_address"], "ip_address"] (axes itself compares every entry with one limit)."""

    def _counts(self, request: HttpRequest, credentials: dict | None) -> list[tuple[int, datetime | None, int]]:
        """(failures, last failure, limit) for the account-and-address pair, then for the address."""
        pair, address = self.get_user_attempts(request, credentials)
        limits = (get_failure_limit(request, credentials), settings.SIGNIN_ADDRESS_FAILURE_LIMIT)
        counts = []
        for attempts, limit in zip((pair, address), limits, strict=True):
            found = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            counts.append((found["failures"] or 0, found["last"], limit))
        return counts

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # Axes locks when this reaches AXES_FAILURE_LIMIT: the address's count is scaled to that limit.
        (pair, _, limit), (address, _, address_limit) = self._counts(request, credentials)
        return max(pair, address * limit // address_limit)

    def retry_after(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """Seconds until every lock on this request's account and address has lifted (at least 1)."""
        cool_off = get_cool_off(request) or timedelta(0)
        now = timezone.now()
        ends = [
            last + cool_off
            for failures, last, limit in self._counts(request, credentials)
            if failures >= limit and last is not None
        ]
        return max(1, math.ceil(max((end - now).total_seconds() for end in ends))) if ends else 1


def _retry_after(request: HttpRequest, credentials: dict | None) -> int:
    handler = AxesProxyHandler.get_implementation()
    if isinstance(handler, SignInAttempts):
        return handler.retry_after(request, credentials)
    return int((get_cool_off(request) or timedelta(seconds=1)).total_seconds())


def _in_words(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return request.headers.get("X-Requested-With") == "XMLHttpRequest" or (
        "application/json" in accept and "text/html" not in accept
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After, as a page (or JSON for a script) saying when to retry."""
    seconds = _retry_after(request, credentials)
    retry_at = timezone.now() + timedelta(seconds=seconds)
    message = (
        f"Too many failed sign-in attempts. Try again in {_in_words(seconds)} "
        f"(after {retry_at:%H:%M} UTC). Other addresses are not affected."
    )
    if _wants_json(request):
        response: HttpResponse = JsonResponse({"detail": message, "retry_after": seconds}, status=429)
    else:
        html = render_to_string("logsvc/signin_locked.html", {"message": message, "retry_at": retry_at}, request)
        response = HttpResponse(html, status=429)
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response


# OAuth client authentication (social.oauth's token and revocation views).

CLIENT_NAME_MAX = 200  # axes keeps names in 255 characters; a longer client_id is no client of ours anyway


def _client_credentials(client_id: str | None) -> dict:
    return {"username": f"oauth-client:{(client_id or '')[:CLIENT_NAME_MAX]}"}


def client_locked_out(request: HttpRequest, client_id: str | None) -> int | None:
    """Seconds to wait when this client id (or this address) is locked out, else None."""
    credentials = _client_credentials(client_id)
    if AxesProxyHandler.is_allowed(request, credentials):
        return None
    return _retry_after(request, credentials)


def client_authentication_failed(request: HttpRequest, client_id: str | None) -> int | None:
    """Count a failed client authentication; the seconds to wait if it reached a limit, else None."""
    credentials = _client_credentials(client_id)
    AxesProxyHandler.user_login_failed(sender=client_authentication_failed, credentials=credentials, request=request)
    if getattr(request, "axes_locked_out", False):
        request.axes_locked_out = False  # type: ignore[attr-defined]  # axes' own attribute; the caller answers in its own (OAuth) terms, not AxesMiddleware
        return _retry_after(request, credentials)
    return None
