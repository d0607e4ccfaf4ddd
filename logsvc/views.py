from __future__ import annotations

from typing import Any

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.template import engines
from django.views.decorators.cache import never_cache
from drf_spectacular.views import SpectacularRedocView
from rest_framework.renderers import TemplateHTMLRenderer


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise: what a load balancer needs to know."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": str(exc).strip()}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


# drf-spectacular's Redoc page with its head minus the Google Fonts links: the reference is served offline.
OFFLINE_REDOC = """{% extends "drf_spectacular/redoc.html" %}{% block head %}
<title>{{ title|default:"Redoc" }}</title>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body { margin: 0; padding: 0; }</style>
{% endblock head %}"""


class OfflineRedocRenderer(TemplateHTMLRenderer):
    def resolve_template(self, template_names: Any) -> Any:
        return engines["django"].from_string(OFFLINE_REDOC)


class ApiReferenceView(SpectacularRedocView):
    """The rendered API reference at /api.html; Redoc's script comes from drf-spectacular-sidecar."""

    renderer_classes = [OfflineRedocRenderer]
