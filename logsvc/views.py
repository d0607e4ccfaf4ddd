from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from drf_spectacular.views import SpectacularRedocView


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise: what a load balancer needs to know."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": str(exc).strip()}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


class ApiReferenceView(SpectacularRedocView):
    """The rendered API reference at /api.html; Redoc's script comes from drf-spectacular-sidecar."""

    template_name = "logsvc/redoc.html"
