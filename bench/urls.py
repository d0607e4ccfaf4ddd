"""logsvc's URLs plus one baseline: the plainest Django view that stores the same row (the framework ceiling)."""

import json
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from events.models import Event
from logsvc.urls import urlpatterns as logsvc_urlpatterns


@csrf_exempt
def bench_insert(request: HttpRequest) -> HttpResponse:
    """json.loads plus one ORM insert into the events table: no DRF, no auth, no validation, no rate limit."""
    body = json.loads(request.body)
    now = timezone.now()
    event = Event.objects.create(
        owner_id=settings.BENCH_OWNER_ID,  # type: ignore[misc]  # bench.settings has it; the plugin reads logsvc's
        client_id=body.get("id"),
        name=body["name"],
        trace_id=body.get("trace_id") or "",
        date=datetime.fromisoformat(body["date"]) if body.get("date") else now,
        data=body.get("data", {}),
        created=now,
    )
    return JsonResponse({"id": event.pk}, status=201)


async def bench_async_gif(request: HttpRequest) -> HttpResponse:
    """An async view that answers the pixel's GIF and stores nothing (bench/group_commit.py, through Django's
    ASGI handler and logsvc's middleware): the ceiling of a pixel written as a Django async view."""
    return HttpResponse(GIF, content_type="image/gif")


GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"

urlpatterns = [path("bench/insert", bench_insert), path("bench/async-gif", bench_async_gif), *logsvc_urlpatterns]
