"""The front door's panels (logsvc.frontdoor) for events: the user's latest log messages and events.

Each is two index range scans of the (owner, ...) indexes, whatever the number of rows: the latest few, and a
count that stops at COUNT_UP_TO (a count of millions of rows would cost seconds on every visit to "/").
"""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from events.models import Event, LogMessage

LATEST = 5
COUNT_UP_TO = 10_000


def bounded_count(queryset) -> str:
    """ "1,234", or "10,000+" past COUNT_UP_TO."""
    n = queryset[: COUNT_UP_TO + 1].count()
    return f"{COUNT_UP_TO:,}+" if n > COUNT_UP_TO else f"{n:,}"


def logs_panel(request: HttpRequest, user) -> SafeString:
    messages = LogMessage.objects.owned_by(user)
    latest = list(messages.order_by("-created", "-id")[:LATEST])
    context = {"latest": latest, "count": bounded_count(messages) if latest else "0"}
    return render_to_string("events/_logs_panel.html", context, request=request)


def events_panel(request: HttpRequest, user) -> SafeString:
    events = Event.objects.owned_by(user)
    latest = list(events.order_by("-date", "-id")[:LATEST])
    context = {"latest": latest, "count": bounded_count(events) if latest else "0"}
    return render_to_string("events/_events_panel.html", context, request=request)
