"""The dashboard as a person uses it: Debian's Chromium signs in through the real login form, reads the numbers,
changes the range, and leaves screenshots in var/test-artifacts/ for a human to look at."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import Page

from analytics.models import Domain, Hit, Site
from analytics.tests.test_dashboard import TZ, expected, realistic_hits, store, today
from analytics.tests.test_import_hits import FIXTURES
from logsvc.models import User

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts"
PASSWORD = "a-long-enough-passphrase"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(live_server) -> Site:
    owner = User.objects.create_user("dana", email="dana@example.org", password=PASSWORD)
    site = Site.objects.create(code="dana-blog", owner=owner, timezone=TZ)
    Domain.objects.create(site=site, domain="blog.dana.example")
    store(site, realistic_hits(60, spread_days=14))
    return site


def number(text: str) -> int:
    return int(text.strip().replace(",", ""))


def shown_paths(page: Page) -> dict[str, tuple[int, int]]:
    rows = page.locator("tr.path-row")
    return {
        rows.nth(n).locator(".path-name").inner_text(): (
            number(rows.nth(n).locator(".path-visitors").inner_text()),
            number(rows.nth(n).locator(".path-pageviews").inner_text()),
        )
        for n in range(rows.count())
    }


def expected_paths(want: dict) -> dict[str, tuple[int, int]]:
    paths: dict[str, tuple[int, int]] = {}
    for hit in want["hits"].select_related("path"):
        visitors, pageviews = paths.get(hit.path.path, (0, 0))
        paths[hit.path.path] = (visitors + hit.first_visit, pageviews + 1)
    return paths


def sign_in(page: Page, base: str, url: str) -> None:
    page.goto(base + url)
    page.wait_for_url("**/accounts/login/**")  # the dashboard sent a stranger to the login form
    fill_login_form(page)
    page.wait_for_url(f"**{url}")


def fill_login_form(page: Page) -> None:
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_it_shows_the_owner_the_numbers_and_follows_the_range_picker(site, page, live_server):
    url = f"/sites/{site.code}/"
    sign_in(page, live_server.url, url)

    # The default range: the last 30 days.
    want = expected(site, today() - timedelta(days=29), today())
    assert number(page.inner_text("#total-visitors")) == want["visitors"]
    assert number(page.inner_text("#total-pageviews")) == want["pageviews"] == 60
    assert shown_paths(page) == expected_paths(want)
    assert page.locator("tr.path-row svg.spark").count() == len(expected_paths(want))
    assert page.locator("svg.bars g.day").count() == 30
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # A preset: the last 7 days.
    page.click("nav.presets >> text=7 days")
    page.wait_for_url("**start=*")
    want = expected(site, today() - timedelta(days=6), today())
    assert 0 < want["pageviews"] < 60
    assert number(page.inner_text("#total-visitors")) == want["visitors"]
    assert number(page.inner_text("#total-pageviews")) == want["pageviews"]
    assert shown_paths(page) == expected_paths(want)
    assert page.locator("nav.presets a.active").inner_text() == "7 days"
    assert page.locator("svg.bars g.day").count() == 7

    # Dates typed in: three days last week.
    start, end = today() - timedelta(days=9), today() - timedelta(days=7)
    page.fill("input[name=start]", start.isoformat())
    page.fill("input[name=end]", end.isoformat())
    page.click("form.range-form button[type=submit]")
    page.wait_for_url(f"**start={start.isoformat()}&end={end.isoformat()}")
    want = expected(site, start, end)
    assert 0 < want["pageviews"] < 60
    assert number(page.inner_text("#total-visitors")) == want["visitors"]
    assert number(page.inner_text("#total-pageviews")) == want["pageviews"]
    assert shown_paths(page) == expected_paths(want)
    assert page.locator("nav.presets a.active").count() == 0

    # Today alone: one bar, and today's numbers.
    page.click("nav.presets >> text=Today")
    page.wait_for_url(f"**start={today().isoformat()}&end={today().isoformat()}")
    want = expected(site, today(), today())
    assert number(page.inner_text("#total-pageviews")) == want["pageviews"] > 0
    assert number(page.inner_text("#total-visitors")) == want["visitors"]
    assert page.locator("svg.bars g.day").count() == 1
    page.screenshot(path=str(ARTIFACTS / "dashboard-today.png"), full_page=True)

    # The same page on a phone: one column, nothing wider than the screen.
    page.goto(f"{live_server.url}{url}")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)


def test_it_lists_the_owners_sites_after_signing_in(site, page, live_server):
    page.goto(f"{live_server.url}/")  # a stranger gets the landing page, with a way in
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "landing.png"), full_page=True)
    page.click(".hero >> text=Sign in")
    fill_login_form(page)
    page.wait_for_url(f"{live_server.url}/")

    want = expected(site, today() - timedelta(days=6), today())
    assert number(page.inner_text(f"[data-site-visitors='{site.code}']")) == want["visitors"]
    page.screenshot(path=str(ARTIFACTS / "sites.png"), full_page=True)
    page.click(f"text={site.code}")
    page.wait_for_url(f"**/sites/{site.code}/")
    assert page.locator("h1").inner_text().startswith(site.code)


def test_it_tells_a_new_owner_how_to_start_counting(page, live_server):
    User.objects.create_user("erin", email="erin@example.org", password=PASSWORD)
    Site.objects.create(code="erin-shop", owner=User.objects.get(username="erin"))
    page.goto(f"{live_server.url}/sites/erin-shop/")
    page.fill("input[name=username]", "erin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/sites/erin-shop/")

    assert "No pageviews in this range yet" in page.inner_text("#empty")
    assert page.inner_text("#empty pre") == (
        f'<script data-goatcounter="{live_server.url}/count/erin-shop"\n'
        f'        async src="{live_server.url}/count.js"></script>'
    )
    assert page.inner_text("#total-visitors") == "0"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-empty.png"), full_page=True)


def test_the_owner_imports_a_goatcounter_export_and_watches_it(site, page, live_server, tmp_path, settings):
    settings.IMPORT_DIR = tmp_path
    sign_in(page, live_server.url, f"/sites/{site.code}/")
    page.click("text=Import from GoatCounter")
    page.set_input_files("input[name=file]", str(FIXTURES / "export.csv"))
    page.click("#upload button[type=submit]")
    page.wait_for_url("**/import/*/")
    assert page.inner_text("#import-status") == "Waiting for the worker…"
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)  # the real worker
    page.wait_for_selector("#import[data-state=done]", timeout=15_000)  # the page reloads itself until done
    assert page.inner_text("#import-imported") == "6"
    assert page.inner_text(".import-errors") == "line 7: date 'yesterday' is not an RFC 3339 time"
    assert Hit.objects.filter(site=site, created_at__date__range=("2026-10-10", "2026-10-11")).count() == 6
    page.screenshot(path=str(ARTIFACTS / "import.png"), full_page=True)
    page.click("text=See the stats")
    page.wait_for_url(f"**/sites/{site.code}/")
