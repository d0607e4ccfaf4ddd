"""count.js in a real browser, checked the way a site owner would: by what the database holds afterwards.

The site's pages are made up: Playwright answers requests for http://localhost:<port>/site/... with the HTML of
each test, so they share their origin with the live server, which serves the real /count.js and /count.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route

from analytics import sites
from analytics.models import BotHit, Domain, Hit, Site

WAIT_SECONDS = 5
# Not `window.goatcounter.count` alone: Playwright calls an expression that evaluates to a function.
SCRIPT_RAN = "typeof window.goatcounter?.count === 'function'"


@pytest.fixture(autouse=True)
def _no_remembered_sites():
    # The pixel remembers host -> site for 10 s; each test's site is new (the last one was flushed).
    sites.forget_pixel_sites()
    yield
    sites.forget_pixel_sites()


@pytest.fixture
def site(alice, live_server) -> Site:
    site = Site.objects.create(code="countjs", owner=alice)
    Domain.objects.create(site=site, domain="localhost")  # the live server's host
    return site


class Website:
    """The pages of a made-up website on the live server's origin, and the /count requests the browser sends."""

    def __init__(self, page: Page, base: str) -> None:
        self.page, self.base = page, base
        self.pages: dict[str, str] = {}
        self.pixels: list[tuple[str, str]] = []  # (method, url) of each /count request
        page.route(f"{base}/site/**", self._serve)
        page.on("request", self._saw)

    def _serve(self, route: Route) -> None:
        html = self.pages.get(route.request.url)
        route.fulfill(
            status=404 if html is None else 200, body=html or "not one of this test's pages", content_type="text/html"
        )

    def _saw(self, request: Request) -> None:
        if request.url.startswith(f"{self.base}/count?"):
            self.pixels.append((request.method, request.url))

    def add(self, path: str, *, title: str = "A page", head: str = "", body: str = "", settings: Any = None) -> str:
        """Serve a page that loads count.js as GoatCounter's docs say; returns its URL."""
        attrs = f'data-goatcounter="{self.base}/count"'
        if settings is not None:
            attrs += f" data-goatcounter-settings='{json.dumps(settings)}'"
        url = f"{self.base}/site{path}"
        self.pages[url] = (
            f"<!doctype html><html><head><title>{title}</title>{head}</head><body>{body}"
            f'<script {attrs} async src="{self.base}/count.js"></script></body></html>'
        )
        return url

    def add_html(self, path: str, html: str) -> str:
        url = f"{self.base}/site{path}"
        self.pages[url] = html
        return url

    def visit(self, url: str, **kwargs: Any) -> None:
        """Open url and wait until count.js has run and the network is quiet (a beacon, if any, has gone)."""
        self.page.goto(url, **kwargs)
        self.page.wait_for_function(SCRIPT_RAN)
        self.page.wait_for_load_state("networkidle")


@pytest.fixture
def website(page, live_server) -> Website:
    return Website(page, live_server.url)


LOCAL = {"allow_local": True}  # the live server is on localhost, which count.js skips unless told


def stored_hits(count: int = 1) -> list[dict[str, Any]]:
    """The site's hits as the dashboard would list them, oldest first, once `count` of them have arrived (or the
    wait is over: then fewer, and the test's assert says what is missing)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        hits = [
            {
                "path": hit.path.path,
                "title": hit.path.title,
                "event": hit.path.event,
                "ref": hit.ref,
                "ref_scheme": hit.ref_scheme,
                "size": hit.size,
            }
            for hit in Hit.objects.select_related("path").order_by("id")
        ]
        if len(hits) >= count or time.monotonic() > deadline:
            return hits
        time.sleep(0.05)


def test_it_counts_a_pageview_on_load_with_a_beacon(site, website):
    url = website.add("/blog/hello?page=2", title="Hello, world", settings=LOCAL)

    website.visit(url, referer="https://news.example.org/item/42")

    assert stored_hits() == [
        {
            "path": "/site/blog/hello?page=2",
            "title": "Hello, world",
            "event": False,
            "ref": "news.example.org/item/42",
            "ref_scheme": "h",
            "size": 1920,
        }
    ]
    assert [method for method, _ in website.pixels] == ["POST"]


def test_it_sends_goatcounters_parameters(site, website):
    url = website.add("/campaign?utm_source=newsletter&utm_campaign=spring", title="Spring", settings=LOCAL)

    website.visit(url, referer="https://mail.example.org/")

    [(_, pixel)] = website.pixels
    assert pixel.startswith(f"{website.base}/count?p=")
    query = dict(part.split("=", 1) for part in pixel.split("?", 1)[1].split("&"))
    assert sorted(query) == ["p", "q", "r", "rnd", "s", "t"]  # no e (false) and no b (0): left out when empty
    assert len(query["rnd"]) == 5
    [hit] = Hit.objects.all()
    assert (hit.path.path, hit.ref, hit.ref_scheme, hit.campaign) == ("/site/campaign", "newsletter", "c", "spring")


def test_it_falls_back_to_an_image_without_send_beacon(site, website):
    website.page.add_init_script("delete Navigator.prototype.sendBeacon")
    url = website.add("/old-browser", title="No beacons here", settings=LOCAL)

    website.visit(url)

    assert [method for method, _ in website.pixels] == ["GET"]
    assert stored_hits() == [
        {
            "path": "/site/old-browser",
            "title": "No beacons here",
            "event": False,
            "ref": "",
            "ref_scheme": "",
            "size": 1920,
        }
    ]
    # The pixel removes itself once loaded: nothing is left in the page's layout.
    assert website.page.locator("img").count() == 0


def test_it_counts_clicks_on_marked_elements_as_events(site, website):
    body = (
        '<a id="signup" href="/site/thanks" data-goatcounter-click="signup-link" data-goatcounter-title="Sign up"'
        ' data-goatcounter-referrer="front page">Sign up now</a>'
    )
    url = website.add("/", title="Home", body=body, settings=LOCAL)
    website.add("/thanks", title="Thanks")  # counts nothing of its own: no allow_local
    website.visit(url)
    stored_hits(1)  # the pageview first, so the order below is the order of events

    website.page.click("#signup")  # the link leaves the page: the beacon must get out all the same
    website.page.wait_for_url("**/site/thanks")

    assert stored_hits(2) == [
        {"path": "/site", "title": "Home", "event": False, "ref": "", "ref_scheme": "", "size": 1920},
        {
            "path": "signup-link",
            "title": "Sign up",
            "event": True,
            "ref": "front page",
            "ref_scheme": "o",
            "size": 1920,
        },
    ]


def test_it_counts_a_middle_click_but_not_a_right_click(site, website):
    body = '<button id="download" data-goatcounter-click="download-pdf">  Get the PDF  </button>'
    url = website.add("/paper", title="Paper", body=body, settings={**LOCAL, "no_onload": True})
    website.visit(url)

    website.page.click("#download", button="right")
    website.page.click("#download", button="middle")

    assert stored_hits(1) == [
        # No -title: the element's text, trimmed; no pageview: no_onload.
        {"path": "download-pdf", "title": "Get the PDF", "event": True, "ref": "", "ref_scheme": "", "size": 1920}
    ]
    time.sleep(0.3)
    assert Hit.objects.count() == 1


def test_it_counts_what_goatcounter_count_is_given(site, website):
    url = website.add("/video", title="A video", settings={**LOCAL, "no_onload": True})
    website.visit(url)

    website.page.evaluate("goatcounter.count({path: 'play-video', event: true})")
    stored_hits(1)  # two beacons at once may arrive in either order
    website.page.evaluate("goatcounter.count({path: '/video/chapter-2', title: 'Chapter 2', referrer: 'ToC'})")

    assert stored_hits(2) == [
        {"path": "play-video", "title": "A video", "event": True, "ref": "", "ref_scheme": "", "size": 1920},
        {
            "path": "/video/chapter-2",
            "title": "Chapter 2",
            "event": False,
            "ref": "ToC",
            "ref_scheme": "o",
            "size": 1920,
        },
    ]


def test_it_takes_settings_and_callbacks_from_window_goatcounter(site, website):
    head = """<script>
      window.goatcounter = {
        allow_local: true,
        path: (path) => '/docs' + path.replace('/site', ''),
        title: (title) => title.toUpperCase(),
        referrer: 'Partner site',
      }
    </script>"""
    url = website.add("/intro", title="Intro", head=head)

    website.visit(url)

    assert stored_hits() == [
        {
            "path": "/docs/intro",
            "title": "INTRO",
            "event": False,
            "ref": "Partner site",
            "ref_scheme": "o",
            "size": 1920,
        }
    ]
    url_in_page = website.page.evaluate("goatcounter.url({path: '/x'})")
    assert url_in_page.startswith(f"{website.base}/count?p=%2Fx&")


def test_it_counts_nothing_when_the_path_callback_returns_null(site, website):
    head = "<script>window.goatcounter = {allow_local: true, path: (path) => null}</script>"
    url = website.add("/secret", head=head)

    website.visit(url)

    assert website.pixels == []
    assert website.page.evaluate("goatcounter.url()") is None
    assert stored_hits(0) == []


@pytest.mark.parametrize(
    ("canonical", "counted"),
    [
        ("/site/article", "/site/article"),  # relative, this host
        ("{base}/site/article?lang=en", "/site/article?lang=en"),  # absolute, this host
        ("https://other.example.org/article", "/site/copy-of-article?from=feed"),  # another host: not ours
    ],
)
def test_it_counts_the_canonical_path_when_on_this_host(site, website, canonical, counted):
    head = f'<link rel="canonical" href="{canonical.format(base=website.base)}">'
    url = website.add("/copy-of-article?from=feed", title="Article", head=head, settings=LOCAL)

    website.visit(url)

    assert [hit["path"] for hit in stored_hits()] == [counted]


def test_it_reads_the_pages_query_with_get_query(site, website):
    url = website.add("/search?Q=red+shoes&n=1", settings={**LOCAL, "no_onload": True})
    website.visit(url)

    assert website.page.evaluate(
        "[goatcounter.get_query('q'), goatcounter.get_query('n'), goatcounter.get_query('x')]"
    ) == [
        "red shoes",
        "1",
        None,
    ]


def test_it_skips_localhost_unless_allowed(site, website):
    warnings = []
    website.page.on("console", lambda message: warnings.append(message.text))
    url = website.add("/local", title="On my laptop")  # no allow_local

    website.visit(url)

    assert website.page.evaluate("goatcounter.filter()") == "localhost"
    assert "goatcounter: not counting because of: localhost" in warnings
    assert website.pixels == []
    assert stored_hits(0) == []


def test_it_skips_a_page_in_a_frame_unless_allowed(site, website):
    website.add("/framed", title="Framed", settings=LOCAL)
    website.add("/framed-ok", title="Framed on purpose", settings={**LOCAL, "allow_frame": True})

    for framed in ("/framed", "/framed-ok"):
        outer = website.add_html(
            f"/outer{framed}", f'<!doctype html><title>Outer</title><iframe src="{website.base}/site{framed}"></iframe>'
        )
        website.page.goto(outer)
        frame = website.page.frame(url=f"{website.base}/site{framed}")
        frame.wait_for_function(SCRIPT_RAN)
        website.page.wait_for_load_state("networkidle")
        if framed == "/framed":
            assert frame.evaluate("goatcounter.filter()") == "frame"
            assert stored_hits(0) == []

    assert [(hit["path"], hit["title"]) for hit in stored_hits()] == [("/site/framed-ok", "Framed on purpose")]


def test_it_skips_a_browser_whose_owner_opted_out(site, website):
    website.page.add_init_script("localStorage.setItem('skipgc', 't')")
    url = website.add("/mine", settings=LOCAL)

    website.visit(url)

    assert website.page.evaluate("goatcounter.filter()") == "disabled with #toggle-goatcounter"
    assert stored_hits(0) == []


def test_it_toggles_the_opt_out_with_the_hash(site, website):
    dialogs = []
    website.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    url = website.add("/me", settings=LOCAL)

    website.visit(url + "#toggle-goatcounter")
    website.visit(url)

    assert dialogs == ["GoatCounter tracking is now DISABLED in this browser."]
    assert stored_hits(0) == []


# Real prerendering (speculation rules) can't be driven here: Chromium fetches the page (Sec-Purpose:
# prefetch;prerender) but, under Playwright, runs none of its scripts until the click, and then as a plain
# navigation (document.prerendering false). So the browser is made to say what a prerendered page (Chrome's
# document.prerendering; the older visibilityState 'prerender') and a tab opened in the background say.
HIDDEN_UNTIL_SHOWN = """
    let shown = false
    const initially = %s
    Object.defineProperty(Document.prototype, 'visibilityState', {get: () => shown ? 'visible' : initially.state})
    Object.defineProperty(Document.prototype, 'prerendering', {get: () => !shown && initially.prerendering})
    window.show_page = () => {
      shown = true
      if (initially.prerendering) document.dispatchEvent(new Event('prerenderingchange'))
      document.dispatchEvent(new Event('visibilitychange'))
    }
"""


@pytest.mark.parametrize(
    ("state", "prerendering", "why"),
    [
        ("hidden", True, "visibilityState"),  # Chrome's speculation rules prerendering
        ("prerender", False, "visibilityState"),  # the older Page Visibility API's prerender state
        ("hidden", False, False),  # a link opened in a background tab: not filtered, only waited for
    ],
)
def test_it_waits_until_a_prerendered_or_background_page_is_shown(site, website, state, prerendering, why):
    website.page.add_init_script(HIDDEN_UNTIL_SHOWN % json.dumps({"state": state, "prerendering": prerendering}))
    url = website.add("/next", title="Next page", settings=LOCAL)

    website.visit(url)

    assert website.page.evaluate("goatcounter.filter()") == why
    assert website.pixels == []
    assert stored_hits(0) == []

    website.page.evaluate("show_page()")

    assert [(hit["path"], hit["title"]) for hit in stored_hits()] == [("/site/next", "Next page")]
    website.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # shown again: no second hit
    website.page.wait_for_load_state("networkidle")
    assert Hit.objects.count() == 1


def test_it_reports_a_driven_browser_as_a_bot(site, website):
    website.page.add_init_script("Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => true})")
    url = website.add("/robots-welcome", settings=LOCAL)

    website.visit(url)

    assert "b=153" in website.pixels[0][1]
    deadline = time.monotonic() + WAIT_SECONDS
    while not BotHit.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(BotHit.objects.values_list("path", "bot")) == [("/site/robots-welcome", 153)]
    assert Hit.objects.count() == 0  # bots never reach the site owner's numbers
