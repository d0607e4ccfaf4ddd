from __future__ import annotations

from pathlib import PurePosixPath

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe
from drf_spectacular.views import SpectacularRedocView
from rest_framework.request import Request
from rest_framework.response import Response

from logsvc import frontdoor, health, replica
from logsvc.deletion import request_deletion
from logsvc.images import CONTENT_TYPES
from logsvc.models import Deletion


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
    if replica.configured():
        details["replica"] = replica.health()
    status = "ok" if all(detail == "ok" for detail in details.values()) else "degraded"
    body: dict[str, object] = {"status": status, "database": "ok", **details}
    if replica.configured():
        lag = replica.lag()
        body["replica_lag_seconds"] = None if lag is None or lag == float("inf") else round(lag, 3)
    return JsonResponse(body)


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The front door: the five APIs with ready curl lines, then the signed-in user's sites, logs and events."""
    context = {"apis": frontdoor.api_cards(request), "login_url": "/accounts/login/?next=/"}
    if request.user.is_authenticated:
        context["panels"] = frontdoor.panels(request)
    return render(request, "logsvc/home.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    """The signed-in user deletes their own account, once they have typed its username (DELETE /api/1/users/$self/
    from a script)."""
    context: dict[str, str] = {}
    if request.method == "POST":
        confirm = request.POST.get("confirm", "")[:200]
        if confirm == request.user.get_username() and request.user.pk is not None:
            request_deletion(kind=Deletion.Kind.ACCOUNT, target=request.user.pk)
            logout(request)
            return render(request, "logsvc/account_deleted.html")
        context = {"confirm": confirm, "error": "That is not your username: nothing was deleted."}
    return render(request, "logsvc/account_delete.html", context, status=400 if context else 200)


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on pages that name no icon (the admin, the browsable API)."""
    return HttpResponseRedirect(static("logsvc/favicon.svg"))


# Redoc draws a "API docs by Redocly" logo from cdn.redoc.ly, whatever its options: the page's policy keeps the
# browser from fetching it (the image then hides itself), and from anything else that is not this server's.
REFERENCE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)


class ApiReferenceView(SpectacularRedocView):
    """The rendered API reference at /api.html; Redoc's script comes from drf-spectacular-sidecar."""

    template_name = "logsvc/redoc.html"

    def finalize_response(self, request: Request, response: Response, *args, **kwargs) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = REFERENCE_POLICY
        return response


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
