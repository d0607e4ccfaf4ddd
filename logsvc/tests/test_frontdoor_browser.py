"""The front door and littlelogs' pages as a person sees them: Debian's Chromium signs in, reads "/", follows a
log's #tag and @mention links, reads it all on a phone, and opens the API reference with nothing fetched from
another server. Screenshots go to var/test-artifacts/ for a human to look at."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from analytics.models import Domain, Site
from events.models import Event, LogMessage
from logsvc.models import ApiKey, User
from social import services

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts"
PASSWORD = "a-long-enough-passphrase"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dana(live_server) -> User:
    dana = User.objects.create_user("dana", first_name="Dana", password=PASSWORD)
    erin = User.objects.create_user("erin", first_name="Erin", location="Lisbon")
    ApiKey.create(user=dana, name="shop server", scopes=["logs:write", "events:write"])
    site = Site.objects.create(code="dana-blog", owner=dana)
    Domain.objects.create(site=site, domain="blog.dana.example")
    LogMessage.objects.create(owner=dana, message="Disk almost full", severity=4, application="shop")
    Event.objects.create(owner=dana, name="paypal_payment", trace_id="03758690")
    services.create_log(user=dana, markdown="Shipped the #frontdoor with @erin")
    services.create_log(user=erin, markdown="Reviewed the #frontdoor copy")
    services.create_log(user=erin, markdown="Erin's quiet day")
    LogMessage.objects.create(owner=erin, message="erin's private message", severity=5)
    return dana


def sign_in(page: Page, base: str) -> None:
    page.goto(base + "/")
    page.click("text=Sign in")
    page.wait_for_url("**/accounts/login/**")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def no_sideways_scrolling(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_signed_in_user_sees_their_data_and_the_five_apis(dana, page, live_server):
    sign_in(page, live_server.url)

    expect(page.locator("h1")).to_have_text("Hello, Dana")
    expect(page.locator("#sites")).to_contain_text("dana-blog")
    expect(page.locator("#sites")).to_contain_text("blog.dana.example")
    expect(page.locator("#logs")).to_contain_text("Disk almost full")
    expect(page.locator("#events")).to_contain_text("paypal_payment")
    expect(page.locator("#littlelogs")).to_contain_text("Shipped the #frontdoor with @erin")
    expect(page.locator("body")).not_to_contain_text("erin's private message")
    names = page.locator(".api-card h3").all_inner_texts()
    assert names == ["Logster", "Bytelog", "Loggator", "littlelogs", "GoatCounter"]
    logster = page.locator('.api-card[data-api="Logster"]')
    expect(logster.locator("pre.curl")).to_contain_text(f"curl -s {live_server.url}/api/Log")
    expect(logster.locator(".key-name")).to_have_text("shop server")
    expect(logster.get_by_role("link", name="Reference")).to_have_attribute("href", "/api.html#tag/Logster")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "frontdoor.png"), full_page=True)

    # On a phone: one column, nothing wider than the screen (the curl lines scroll inside their box)
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_sideways_scrolling(page)
    page.screenshot(path=str(ARTIFACTS / "frontdoor-phone.png"), full_page=True)


def test_a_logs_tag_and_mention_links_lead_to_pages_of_logs(dana, page, live_server):
    sign_in(page, live_server.url)
    page.click("#littlelogs h2 a")  # "Your littlelogs"
    page.wait_for_url(f"{live_server.url}/dana")
    expect(page.locator("h1")).to_have_text("Dana")
    expect(page.locator(".log-card")).to_have_count(1)

    page.locator(".log-card .content a.tag").click()  # the #frontdoor link the Markdown became
    page.wait_for_url(f"{live_server.url}/tag/frontdoor")
    expect(page.locator("h1")).to_have_text("#frontdoor")
    expect(page.locator(".log-card .content")).to_have_text(
        ["Reviewed the #frontdoor copy", "Shipped the #frontdoor with @erin"]
    )
    page.screenshot(path=str(ARTIFACTS / "tag-page.png"), full_page=True)

    page.locator(".log-card .content a.content-user").click()  # @erin
    page.wait_for_url(f"{live_server.url}/erin")
    expect(page.locator("h1")).to_have_text("Erin")
    expect(page.locator(".profile")).to_contain_text("Lisbon")
    expect(page.locator(".log-card .content")).to_have_text(["Erin's quiet day", "Reviewed the #frontdoor copy"])
    assert page.evaluate("document.querySelector('img.avatar').naturalWidth") > 0  # the default picture loaded
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_sideways_scrolling(page)
    page.screenshot(path=str(ARTIFACTS / "user-page-phone.png"), full_page=True)


def test_the_api_reference_fetches_nothing_from_another_server(db, page, live_server):
    fetched, blocked = set(), set()
    page.on("response", lambda response: fetched.add(urlsplit(response.url).netloc))
    page.on("requestfailed", lambda request: blocked.add((urlsplit(request.url).netloc, request.failure)))
    page.goto(live_server.url + "/api.html")

    menu = page.locator("[role=menu], .menu-content").first
    for name in ("Logster", "Bytelog", "Loggator", "littlelogs", "GoatCounter"):
        expect(menu.get_by_text(name, exact=True).first).to_be_visible(timeout=20_000)
    page.wait_for_load_state("networkidle")
    assert fetched - {""} == {urlsplit(live_server.url).netloc}  # ("": Redoc's own blob: worker)
    # Redoc's "API docs by Redocly" logo: the page's policy stops it before it leaves the browser
    assert blocked <= {("cdn.redoc.ly", "csp")}, blocked
    icon = page.evaluate("fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)")
    assert icon == 200
