"""A test-only URLconf: the real routes plus views that exercise the shared middleware.

Use it with `@pytest.mark.urls("logsvc.tests.urls")`.
"""

from __future__ import annotations

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse, RawPostDataException
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


@csrf_exempt
def echo(request: HttpRequest) -> JsonResponse:
    """The method the view saw, and the body it got."""
    try:
        body = request.body.decode()
    except RawPostDataException:  # a multipart body the method override already parsed
        body = None
    return JsonResponse({"method": request.method, "body": body})


def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"authenticated": request.user.is_authenticated})


@require_GET
def only_get(request: HttpRequest) -> JsonResponse:
    return JsonResponse({})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a plain Django view")


class BoomView(APIView):
    public = True
    authentication_classes = []

    def get(self, request: Request) -> Response:
        raise RuntimeError("a bug in a DRF view")


class LogsterBoomView(BoomView):
    error_family = "logster"


class DatabaseDownView(BoomView):
    error_family = "bytelog"

    def get(self, request: Request) -> Response:
        raise OperationalError('connection failed: connection to server at "10.0.0.1", port 6432 failed: refused')


urlpatterns = [
    path("api/1/echo", echo),
    path("api/v1/echo", echo),
    path("api/1/things/", echo),
    path("api/1/whoami", whoami),
    path("api/1/only-get", only_get),
    path("api/boom", boom),
    path("api/drf-boom", BoomView.as_view()),
    path("api/v1/boom", BoomView.as_view()),
    path("api/v1/db-down", DatabaseDownView.as_view()),
    path("api/Log/boom", LogsterBoomView.as_view()),
    path("boom", boom),
    path("echo", echo),
    path("", include("logsvc.urls")),
]
