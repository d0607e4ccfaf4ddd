"""`Idempotency-Key` on ingestion POSTs: a retry within the TTL replays the first answer and stores nothing twice.

The data and the record of the answer commit in one transaction, and a transaction-scoped advisory lock
on (owner, key) makes concurrent retries wait for the first one instead of racing it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.response import Response

from logsvc.auth import AuthenticatedRequest
from logsvc.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


class RetriedResponse(Response):
    """An answer kept for a retry with the same key although it isn't a 2xx: to a request that stored something
    (GoatCounter's count: the valid hits stored, the others named in a 400)."""

    keep_for_retries = True


def _lock(owner_id: int, key: str) -> None:
    digest = hashlib.blake2b(f"{owner_id}:{key}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)])


def idempotent(handler: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorates an APIView method that writes in its own transaction and answers 2xx only once committed."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: AuthenticatedRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise exceptions.ValidationError(
                {"Idempotency-Key": [f"Use a printable key of 1 to {MAX_KEY_LENGTH} characters, such as a UUID."]}
            )
        fingerprint = hashlib.sha256(request.body).hexdigest()
        with transaction.atomic():
            _lock(request.user.pk, key)
            record = IdempotencyRecord.objects.filter(owner=request.user, key=key).first()
            if record is not None and record.is_expired():
                record.delete()
                record = None
            if record is not None:
                if record.fingerprint != fingerprint or record.path != request.path:
                    raise exceptions.ValidationError(
                        {"Idempotency-Key": ["This key was already used for a different request; use a new key."]}
                    )
                replay = HttpResponse(bytes(record.body), status=record.status, content_type=record.content_type)
                replay["Idempotent-Replayed"] = "true"
                return replay
            response = handler(view, request, *args, **kwargs)
            if 200 <= response.status_code < 300 or isinstance(response, RetriedResponse):
                response = view.finalize_response(request, response, *args, **kwargs)
                response.render()
                IdempotencyRecord.objects.create(
                    owner=request.user,
                    key=key,
                    path=request.path,
                    fingerprint=fingerprint,
                    status=response.status_code,
                    body=response.content,
                    content_type=response.get("Content-Type", "application/json"),
                )
            return response

    return wrapper
