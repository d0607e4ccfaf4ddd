from __future__ import annotations

from pathlib import PurePosixPath

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularRedocView

from logsvc import health
from logsvc.images import CONTENT_TYPES


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise: what a load balancer needs to know. The registered
    checks (logsvc.health) add their detail, and "degraded" when one is not ok."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        details = {name: check() for name, check in health.CHECKS.items()}
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": str(exc).strip()}, status=503)
    status = "ok" if all(detail == "ok" for detail in details.values()) else "degraded"
    return JsonResponse({"status": status, "database": "ok", **details})


class ApiReferenceView(SpectacularRedocView):
    """The rendered API reference at /api.html; Redoc's script comes from drf-spectacular-sidecar."""

    template_name = "logsvc/redoc.html"


@require_safe
def media(request: HttpRequest, path: str) -> FileResponse:
    """An uploaded picture (an avatar), read through default_storage, with and without DEBUG.

    Only image types are served, under the type their extension says and never sniffed, sandboxed should one
    be opened as a page: whatever a file might hold, a browser treats it as a picture.
    """
    content_type = CONTENT_TYPES.get(PurePosixPath(path).suffix.lstrip(".").lower())
    if content_type is None or any(part in ("", ".", "..") for part in path.split("/")) or "\\" in path:
        raise Http404("No such file.")
    try:
        file = default_storage.open(path, "rb")
    except (OSError, SuspiciousFileOperation):
        raise Http404("No such file.") from None
    response = FileResponse(file, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"  # API clients show avatars on their own pages
    # A stored file's name carries its content's hash (logsvc.images), so a name never changes content.
    response["Cache-Control"] = "public, max-age=86400"
    return response
