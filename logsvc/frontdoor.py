"""The front door at "/": the five APIs, each with a ready curl line, and a panel per app of the signed-in user's
own data (sites, log messages, events, littlelogs), which each app registers (as logsvc.health's checks are),
so logsvc imports no app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.http import HttpRequest
from django.utils.safestring import SafeString

from logsvc.models import ApiKey, User


@dataclass(frozen=True)
class Api:
    name: str
    what: str
    mounted: str
    scope: str  # the API key scope its curl line needs; "" when it needs none
    curl: str  # with {base} for the server's address and $KEY for the key


APIS = [
    Api(
        "Logster",
        "Application log messages, posted as JSON or XML, and searched by severity, application or text.",
        "/api/Log",
        "logs:write",
        "curl -s {base}/api/Log -H \"ApiKey: $KEY\" -H 'Content-Type: application/json' \\\n"
        """  -d '{{"Message": "Hello from logsvc", "Severity": 2, "Application": "shop"}}'""",
    ),
    Api(
        "Bytelog",
        "Business events with a trace id, listed by date and followed trace by trace.",
        "/api/v1/events",
        "events:write",
        "curl -s -X POST {base}/api/v1/events -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' \\\n"
        """  -d '{{"name": "click", "trace_id": "t1", "data": {{"button": "sign up"}}}}'""",
    ),
    Api(
        "Loggator",
        "A public, shareable read of one event by its 16-character id, with JSON-P and CORS; no key needed.",
        "/api/events/<id>.json",
        "",
        'curl -s {base}/api/events/$EVENT_ID.json   # an event\'s id: the end of its Bytelog "url"',
    ),
    Api(
        "littlelogs",
        "Social work logs in Markdown: follows, comments, likes, tags and timelines; apps sign in with OAuth2.",
        "/api/1/",
        "",
        "curl -s '{base}/api/1/timelines/public/?limit=5'",
    ),
    Api(
        "GoatCounter",
        "Privacy-friendly web analytics: a browser pixel and script, backend hit counting, exports and stats.",
        "/count, /api/v0/",
        "stats",
        'curl -s {base}/api/v0/stats/total -H "Authorization: Bearer $KEY"',
    ),
]


@dataclass
class ApiCard:
    api: Api
    curl: str
    keys: list[ApiKey] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return f"/api.html#tag/{self.api.name}"  # Redoc's anchor for the tag's group


def api_cards(request: HttpRequest) -> list[ApiCard]:
    """The five APIs, each with its curl line for this server and the signed-in user's keys that can run it."""
    base = request.build_absolute_uri("/").rstrip("/")
    keys: list[ApiKey] = []
    if request.user.is_authenticated:
        keys = [key for key in ApiKey.objects.filter(user=request.user).order_by("name", "pk") if key.is_usable()]
    return [
        ApiCard(api, api.curl.format(base=base), [key for key in keys if api.scope in key.scopes] if api.scope else [])
        for api in APIS
    ]


# The panels of a user's own data ------------------------------------------------------------------------------

Panel = Callable[[HttpRequest, User], SafeString]
PANELS: dict[str, tuple[int, Panel]] = {}


def register(name: str, order: int, panel: Panel) -> None:
    """An app's panel on "/": its HTML, rendered for the signed-in user; shown in `order`."""
    PANELS[name] = (order, panel)


def panels(request: HttpRequest) -> list[SafeString]:
    user = request.user
    assert isinstance(user, User)  # home() shows them to a signed-in user
    return [panel(request, user) for _, panel in sorted(PANELS.values(), key=lambda item: item[0])]
