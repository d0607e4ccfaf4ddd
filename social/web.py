"""The pages littlelogs' rendered HTML links to, as the seed writes them: /tag/<tag> and /<username>, each a page
of that tag's or that user's logs, newest first; and the front door's littlelogs panel (logsvc.frontdoor).

They read what the API reads (the same index ranges, counters and social.pages rows), as HTML.
"""

from __future__ import annotations

from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe

from logsvc import replica
from logsvc.models import User
from social import pages
from social.models import Counter, Log, LogTag, Tag

PER_PAGE = 20
MAX_PAGE = 500  # deeper pages are the API's business (?offset=): an OFFSET is linear in it


def page_number(request: HttpRequest) -> int:
    try:
        return min(max(int(request.GET.get("page", "1")), 1), MAX_PAGE)
    except ValueError:
        return 1


def logs_page(request: HttpRequest, ids_query, count: int) -> dict:
    """The context for one page of logs: the logs as the API shows them (content is sanitised HTML), and paging."""
    number = page_number(request)
    offset = (number - 1) * PER_PAGE
    ids = list(ids_query[offset : offset + PER_PAGE])
    logs = pages.logs_json(ids, request)
    for log in logs:
        log["content_html"] = mark_safe(log["content"])  # rendered by social.markdown, sanitised by nh3
    return {
        "logs": logs,
        "count": count,
        "previous": number - 1 if number > 1 else None,
        "next": number + 1 if offset + PER_PAGE < count and number < MAX_PAGE else None,
    }


@require_safe
@replica.replica_reads
def tag_page(request: HttpRequest, tag: str) -> HttpResponse:
    found = Tag.objects.alias(lower_name=Lower("name")).filter(lower_name=tag.lower()).first()
    if found is None:
        return render(request, "social/tag.html", {"name": tag, "missing": True}, status=404)
    ids = LogTag.objects.filter(tag_id=found.pk).order_by("-created", "-log").values_list("log_id", flat=True)
    context = logs_page(request, ids, Counter.objects.value(Counter.Kind.TAG_LOGS, found.pk))
    return render(request, "social/tag.html", {"name": found.name, **context})


@require_safe
@replica.replica_reads
def user_page(request: HttpRequest, username: str) -> HttpResponse:
    person = User.objects.filter(username=username).first()
    if person is None:
        return render(request, "social/user.html", {"username": username, "missing": True}, status=404)
    ids = Log.objects.filter(user_id=person.pk).order_by("-created", "-id").values_list("pk", flat=True)
    context = logs_page(request, ids, Counter.objects.value(Counter.Kind.USER_LOGS, person.pk))
    profile = pages.user_dict([getattr(person, column) for column in pages.USER_COLUMNS], pages.avatar_urls(request))
    return render(request, "social/user.html", {"person": profile, "username": person.username, **context})


def littlelogs_panel(request: HttpRequest, user) -> SafeString:
    """The front door's panel: the user's latest logs on littlelogs, and a link to their page."""
    ids = list(Log.objects.filter(user_id=user.pk).order_by("-created", "-id").values_list("pk", flat=True)[:3])
    context = {
        "logs": pages.logs_json(ids, request),
        "count": Counter.objects.value(Counter.Kind.USER_LOGS, user.pk),
        "username": user.get_username(),
    }
    return render_to_string("social/_littlelogs_panel.html", context, request=request)
