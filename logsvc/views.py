from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from drf_spectacular.views import SpectacularRedocView

from logsvc import health


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
