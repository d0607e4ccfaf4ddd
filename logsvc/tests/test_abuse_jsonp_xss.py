"""JSON-P never carries private data and refuses hostile callbacks; hostile text never becomes live markup.

The XSS corpus is social/tests/test_markdown.py's (the Markdown renderer is checked there); here it goes in
through the APIs a client uses and comes out on every page that shows it: littlelogs' browsable API, the
admin, and the GoatCounter dashboard, in Django's test client and in a real Chromium.
"""

from __future__ import annotations

import functools
import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from analytics import sites
from analytics.models import Domain, Path, Site
from analytics.rollups import roll_up
from conftest import client_with_key, make_key
from events.models import Event, LogMessage
from logsvc.models import User
from social.models import Log
from social.tests.conftest import post, session_client, token_client
from social.tests.test_markdown import XSS_PAYLOADS, audit, url_as_browsers_read_it

# --- JSON-P: a credentialed request answers exactly as an anonymous one -------------------------------------


@pytest.fixture
def objects(alice) -> dict[str, str]:
    """One of everything of alice's, by the names the OpenAPI document gives the path parameters."""
    message = LogMessage.objects.create(owner=alice, message="alice-private message", severity=3)
    event = Event.objects.create(owner=alice, name="alice-private event", trace_id="t-alice")
    log = post(alice, "alice's #private log")
    site = Site.objects.create(code="alice-blog", owner=alice)
    client_with_key(make_key(alice)).post(
        "/api/v0/count", {"no_sessions": True, "hits": [{"path": "/alice-private"}]}, format="json"
    )
    roll_up()
    export = client_with_key(make_key(alice)).post("/api/v0/export").json()
    return {
        "message_id": str(message.pk),
        "trace_id": "t-alice",
        "uid": event.uid,
        "username": "alice",
        "tag": "private",
        "log_id": str(log.pk),
        "site_id": str(site.pk),
        "export_id": str(export["id"]),
        "path_id": str(Path.objects.get().pk),
        "page": "toprefs",
        "id": "x",
    }


@functools.cache
def get_operations() -> list[str]:
    schema = json.loads(Client().get("/api.json").content)
    return sorted(path for path, operations in schema["paths"].items() if "get" in operations)


@pytest.mark.django_db
def test_the_schema_lists_the_private_reads():
    assert {"/api/Log/{message_id}", "/api/1/timelines/home/", "/api/v0/export/{export_id}"} <= set(get_operations())


@pytest.fixture
def credentials(alice) -> dict[str, dict[str, str]]:
    key = make_key(alice)
    token = token_client(alice)._credentials["HTTP_AUTHORIZATION"]  # type: ignore[attr-defined]  # credentials()'s
    session = session_client(alice).cookies
    return {
        "session cookie": {"HTTP_COOKIE": session.output(header="", sep=";").strip()},
        "ApiKey header": {"HTTP_APIKEY": key},
        "bearer key": {"HTTP_AUTHORIZATION": f"Bearer {key}"},
        "OAuth token": {"HTTP_AUTHORIZATION": token},
        "every one at once": {
            "HTTP_COOKIE": session.output(header="", sep=";").strip(),
            "HTTP_APIKEY": key,
            "HTTP_AUTHORIZATION": token,
        },
        "key in the query": {"QUERY": f"api_key={key}&access_token={token.removeprefix('Bearer ')}"},
    }


@pytest.mark.parametrize(
    "kind", ["session cookie", "ApiKey header", "bearer key", "OAuth token", "every one at once", "key in the query"]
)
def test_a_jsonp_read_with_credentials_answers_as_anonymous(objects, credentials, kind):
    headers = dict(credentials[kind])
    query = headers.pop("QUERY", "")
    private = 0
    for operation in get_operations():
        path = re.sub(r"\{(\w+)\}", lambda m: quote(objects[m.group(1)], safe=""), operation)
        anonymous = Client().get(f"{path}?callback=cb")
        credentialed = Client().get(f"{path}?callback=cb&{query}", **headers)
        assert (credentialed.status_code, credentialed.content) == (anonymous.status_code, anonymous.content), path
        if path.startswith("/api") and anonymous.status_code == 401:
            private += 1
            assert credentialed["Content-Type"] == "application/javascript; charset=utf-8"
            assert credentialed.content.startswith(b"/**/cb(") and b"private" not in credentialed.content
    assert private >= 10


def test_the_same_credentials_read_without_a_callback(objects, credentials):
    for kind, path in [("ApiKey header", "/api/Log/{message_id}"), ("OAuth token", "/api/1/timelines/home/")]:
        r = Client().get(path.format(**objects), **credentials[kind])
        assert r.status_code == 200 and b"private" in r.content


# family -> a GET of it, and its error envelope's keys
FAMILIES = {
    "logster": ("/api/Log", {"Message", "ModelState"}),
    "bytelog": ("/api/v1/events", {"error", "details"}),
    "loggator": ("/api/events/AAAAAAAAAAAAAAAA.json", {"message"}),
    "littlelogs": ("/api/1/logs/", {"detail"}),
    "goatcounter": ("/api/v0/me", {"error"}),
}
BAD_CALLBACKS = [
    "alert(1)//",
    "<script>",
    "cb\u2028",
    "\u2029",
    "cb\u2028alert(1)",
    "cb\x00",
    "cb alert",
    "x" * 65,
    "a." * 3 + "x" * 65,
    "a.b.c.d.e",
    "a[0]",
    "a.constructor('alert(1)')",
    "/**/cb",
    "cb;",
    "",
]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("callback", BAD_CALLBACKS)
def test_a_hostile_callback_is_a_400_in_the_familys_envelope(db, family, callback):
    path, envelope = FAMILIES[family]
    r = Client().get(path, {"callback": callback})
    assert r.status_code == 400
    assert r["Content-Type"] == "application/json"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert set(r.json()) == envelope
    assert "callback" in r.content.decode()
    if callback:
        assert callback.encode() not in r.content


@pytest.mark.parametrize("callback", ["cb", "$", "_cb", "jQuery1234_5678", "a.b.c.d", "x" * 64, "a.b.c." + "d" * 64])
def test_a_plain_callback_name_is_taken(db, callback):
    r = Client().get("/api/events/AAAAAAAAAAAAAAAA.json", {"callback": callback})
    assert r.status_code == 404
    assert r.content == f'/**/{callback}({{"message":"Not Found"}});'.encode()
    assert r["X-Content-Type-Options"] == "nosniff"


# --- XSS: an audit of whole pages ------------------------------------------------------------------------------

# Every payload of the corpus carries one of these, so a payload that came alive is seen wherever it landed.
MARKER = re.compile(r"alert\(|msgbox\(|x\.example|base64,PHN", re.IGNORECASE)
TEXT_ATTRIBUTES = {"title", "alt", "aria-label", "value", "placeholder", "label"}  # shown as text, never run
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "background", "poster", "xlink:href", "srcset"}
CODE_TAGS = {"script", "style", "iframe", "frame", "object", "embed", "base", "link", "meta", "svg", "math", "form"}
CODE_SCHEMES = re.compile(r"(javascript|vbscript|livescript|data):")


class PageAudit(HTMLParser):
    """What in a whole page could run: script URLs anywhere, and a marker in a handler, in code or outside text.

    A page has handlers and scripts of its own (DRF's log-out link); the markers tell the payloads' apart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self.code: str | None = None  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        if MARKER.search(re.sub(r"\"[^\"]*\"|'[^']*'", '""', raw)):
            self.problems.append(f"marker outside a quoted value: {raw!r}")
        for name, value in attrs:
            value = value or ""
            if name in URL_ATTRIBUTES and CODE_SCHEMES.match(url_as_browsers_read_it(value)):
                self.problems.append(f"script URL {name}={value!r} on <{tag}>")
            elif not MARKER.search(value):
                continue
            elif tag in CODE_TAGS or name.startswith("on"):
                self.problems.append(f"marker in <{tag} {name}={value!r}>")
            elif name in TEXT_ATTRIBUTES or name in URL_ATTRIBUTES or name.startswith("data-"):
                self.text.append(value)  # shown, or a link to follow (its scheme is checked above)
            else:
                self.problems.append(f"marker in {name}={value!r} on <{tag}>")
        if tag in ("script", "style"):
            self.code = tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.code = None

    def handle_endtag(self, tag: str) -> None:
        if tag == self.code:
            self.code = None

    def handle_data(self, data: str) -> None:
        if self.code and MARKER.search(data):
            self.problems.append(f"marker in <{self.code}>: {data[:200]!r}")
        elif not self.code:
            self.text.append(data)

    def handle_comment(self, data: str) -> None:
        if MARKER.search(data):
            self.problems.append(f"marker in a comment: {data[:200]!r}")


def audit_page(html: str) -> PageAudit:
    parsed = PageAudit()
    parsed.feed(html)
    parsed.close()
    return parsed


def test_every_payload_carries_a_marker():
    assert len(XSS_PAYLOADS) >= 100
    assert [payload for payload in XSS_PAYLOADS if not MARKER.search(payload)] == []


@pytest.mark.parametrize(
    "live",
    [
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" java\tscript:void(0)">x</a>',
        "<script>alert(1)</script>",
        "<SCRIPT SRC=http://x.example/x.js></SCRIPT>",
        "<style>body{background:url(javascript:alert(1))}</style>",
        '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
        "<svg/onload=alert(1)>",
        "<a href=x.example/>",
        "<!--<script>alert(1)</script>-->",
    ],
)
def test_the_page_audit_sees_live_markup(live):
    assert audit_page(f"<p>before</p>{live}<p>after</p>").problems


def test_the_page_audit_lets_escaped_text_be():
    parsed = audit_page(
        '<p title="&lt;script&gt;alert(1)">&lt;img src=x onerror=alert(1)&gt;</p><input value="alert(1)">'
    )
    assert parsed.problems == []
    assert "<img src=x onerror=alert(1)>" in "".join(parsed.text)


def assert_json_api(r) -> None:
    assert r["Content-Type"] == "application/json"
    assert r["X-Content-Type-Options"] == "nosniff"


def assert_clean_page(r, shown: list[str]) -> None:
    """The page is HTML, runs nothing it was sent, and shows each of `shown` as text."""
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")
    parsed = audit_page(r.content.decode())
    assert parsed.problems == []
    text = "".join(parsed.text)
    assert [value for value in shown if value not in text] == []


# --- littlelogs: logs, comments and profiles ------------------------------------------------------------------


@pytest.fixture
def staff_alice(alice) -> User:
    alice.is_staff = alice.is_superuser = True
    alice.save()
    return alice


def test_logs_and_comments_carry_no_live_markup_on_any_page(staff_alice):
    client = session_client(staff_alice)
    target = post(staff_alice, "a log to comment on")
    for payload in XSS_PAYLOADS:
        r = client.post("/api/1/logs/create/", {"content": payload}, format="json")
        assert r.status_code == 201
        assert_json_api(r)
        assert audit(r.json()["content"]) == []
        r = client.post(f"/api/1/logs/{target.pk}/comment/", {"content": payload}, format="json")
        assert r.status_code == 201
        assert [audit(comment["content"]) for comment in r.json()["comments"] if audit(comment["content"])] == []

    r = client.get("/api/1/logs/?limit=100")
    assert_json_api(r)
    assert all(audit(log["content"]) == [] for log in r.json()["results"])
    stored = list(Log.objects.order_by("-id").values_list("content", flat=True)[:50])
    assert_clean_page(client.get("/api/1/logs/?limit=50", HTTP_ACCEPT="text/html"), [])
    assert any(MARKER.search(html) for html in stored)  # the page above did get hostile text to show
    assert_clean_page(client.get(f"/api/1/logs/{target.pk}/", HTTP_ACCEPT="text/html"), [])
    assert_clean_page(client.get("/admin/social/log/"), [])
    assert_clean_page(client.get(f"/admin/social/log/{target.pk}/change/"), [])


@pytest.mark.parametrize("payload", XSS_PAYLOADS[::3])
def test_profiles_carry_no_live_markup(staff_alice, payload):
    client = session_client(staff_alice)
    text_fields = {"first_name": payload[:150], "last_name": payload[:150], "bio": payload, "location": payload[:100]}
    r = client.patch("/api/1/users/$self/", text_fields, format="json")
    assert r.status_code == 200
    assert_json_api(r)
    assert {field: r.json()[field] for field in text_fields} == text_fields  # plain text, kept as sent

    r = client.patch("/api/1/users/$self/", {"url": payload}, format="json")
    assert r.status_code == 400 and list(r.json()) == ["url"]
    staff_alice.refresh_from_db()
    assert staff_alice.url == ""

    # As the browsable API prints the JSON; it makes links of URLs, which splits their text.
    shown = [] if "://" in payload else [json.dumps(payload[:100], ensure_ascii=False)[1:-1]]
    assert_clean_page(client.get("/api/1/users/alice/", HTTP_ACCEPT="text/html"), shown)
    assert_clean_page(client.get("/api/1/users/$self/", HTTP_ACCEPT="text/html"), shown)
    assert_clean_page(client.get(f"/admin/logsvc/user/{staff_alice.pk}/change/"), [])


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "vbscript:msgbox(1)", "//x.example/"])
def test_a_profile_url_must_be_a_web_address(alice, url):
    r = session_client(alice).patch("/api/1/users/$self/", {"url": url}, format="json")
    assert r.status_code == 400
    alice.refresh_from_db()
    assert alice.url == ""


# --- Logster messages -------------------------------------------------------------------------------------------


def test_logster_messages_carry_no_live_markup(staff_alice):
    key = make_key(staff_alice)
    api = client_with_key(key)
    batch = [
        {"Message": p, "Exception": p, "StackTrace": p, "Category": p[:100], "Application": p[:100], "Severity": 3}
        for p in XSS_PAYLOADS
    ]
    r = api.post("/api/Log", batch, format="json")
    assert r.status_code == 200
    assert_json_api(r)
    r = api.get("/api/Log?limit=1000")
    assert_json_api(r)
    assert sorted(m["Message"] for m in r.json()["Messages"]) == sorted(XSS_PAYLOADS)
    r = api.get(f"/api/Log/{LogMessage.objects.first().pk}", HTTP_ACCEPT="text/html")
    assert_json_api(r)  # a JSON API answers JSON, whatever a browser asks for

    admin = session_client(staff_alice)
    assert_clean_page(admin.get("/admin/events/logmessage/?all="), [])
    for message in LogMessage.objects.order_by("id")[:: len(XSS_PAYLOADS) // 8]:
        assert_clean_page(admin.get(f"/admin/events/logmessage/{message.pk}/change/"), [message.message])


# --- GoatCounter: paths, titles and referrers on the dashboard --------------------------------------------------

CHUNK = 5  # payloads per site: each is a page and an event, and the dashboard shows the top 10
CHUNKS = [XSS_PAYLOADS[n : n + CHUNK] for n in range(0, len(XSS_PAYLOADS), CHUNK)]


def counted_site(owner: User, n: int, payloads: list[str]) -> Site:
    """A site whose visitors sent these payloads as paths, titles, referrers and campaigns, through the API."""
    site = Site.objects.create(code=f"xss-{n}", owner=owner)
    hits: list[dict[str, Any]] = []
    for payload in payloads:
        hits.append({"path": payload, "title": payload, "ref": payload, "session": payload})
        hits.append({"path": payload, "event": True, "title": payload, "session": payload})
        hits.append({"path": payload, "query": f"utm_source={quote(payload)}", "session": payload})
    Domain.objects.create(site=site, domain=f"{site.code}.example")
    r = client_with_key(make_key(owner, "count")).post(
        "/api/v0/count", {"hits": hits}, format="json", HTTP_HOST=f"{site.code}.example"
    )
    assert r.status_code in (202, 400), r.content
    assert_json_api(r)
    roll_up()
    return site


@pytest.fixture(autouse=True)
def _any_host(settings):
    settings.ALLOWED_HOSTS = ["*"]
    sites.forget_pixel_sites()


@pytest.mark.parametrize("n", range(len(CHUNKS)))
def test_the_dashboard_shows_hostile_paths_titles_and_referrers_as_text(alice, n):
    site = counted_site(alice, n, CHUNKS[n])
    paths = list(Path.objects.filter(site=site).values_list("path", flat=True))
    assert len(paths) >= CHUNK
    owner = Client()
    owner.force_login(alice)
    assert_clean_page(owner.get(f"/sites/{site.code}/"), paths)
    assert_clean_page(owner.get("/"), [site.code])

    stats = client_with_key(make_key(alice, "stats"))
    for url in ("/api/v0/paths", "/api/v0/stats/hits", "/api/v0/stats/toprefs"):
        r = stats.get(url, HTTP_HOST=f"{site.code}.example")
        assert r.status_code == 200
        assert_json_api(r)


# --- The same dashboards in a real Chromium ---------------------------------------------------------------------

LIVE_IN_DOM = """() => {
    const marker = /alert\\(|msgbox\\(|x\\.example|base64,PHN/i;
    const code = new Set(['SCRIPT', 'STYLE', 'IFRAME', 'FRAME', 'OBJECT', 'EMBED', 'BASE', 'LINK', 'META', 'FORM']);
    const urls = new Set(['href', 'src', 'action', 'formaction', 'data', 'xlink:href', 'background', 'poster']);
    const found = [];
    for (const el of document.querySelectorAll('*')) {
        for (const a of el.attributes) {
            if ((a.name.startsWith('on') || code.has(el.tagName)) && marker.test(a.value)) found.push(el.outerHTML);
            if (urls.has(a.name) && /^\\s*(javascript|vbscript|livescript|data):/i.test(a.value)) found.push(el.outerHTML);
        }
        if ((el.tagName === 'SCRIPT' || el.tagName === 'STYLE') && marker.test(el.textContent)) found.push(el.outerHTML);
    }
    return found;
}"""


@pytest.mark.django_db(transaction=True)
def test_chromium_runs_nothing_the_visitors_sent(live_server, page, alice):
    counted = [counted_site(alice, n, chunk) for n, chunk in enumerate(CHUNKS)]
    owner = Client()
    owner.force_login(alice)
    page.context.add_cookies([{"name": "sessionid", "value": owner.cookies["sessionid"].value, "url": live_server.url}])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    for url in ["/", *(f"/sites/{site.code}/" for site in counted)]:
        page.goto(live_server.url + url)
        page.wait_for_load_state("load")
        assert page.evaluate(LIVE_IN_DOM) == [], url
        if url != "/":
            site = counted[int(url.split("-")[1].rstrip("/"))]
            shown = {" ".join(text.split()) for text in page.locator(".path-name").all_inner_texts()}
            stored = Path.objects.filter(site=site).values_list("path", flat=True)
            assert {" ".join(path.split()) for path in stored} <= shown, url
    page.mouse.move(300, 300)
    assert dialogs == []
