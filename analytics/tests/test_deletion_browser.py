"""Deleting as a person does it, in Debian's Chromium: a site's old hits and then the site from its dashboard, and
one's own account from the front door, on a phone's screen; screenshots in var/test-artifacts/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from playwright.sync_api import Page, ViewportSize

from analytics.models import Hit, Site
from analytics.services import CleanHit, record_hits
from analytics.tests.test_dashboard_browser import ARTIFACTS, PASSWORD
from logsvc.models import User

pytestmark = pytest.mark.django_db(transaction=True)
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def site(live_server) -> Site:
    owner = User.objects.create_user("dana", email="dana@example.org", password=PASSWORD)
    site = Site.objects.create(code="dana-blog", owner=owner)
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    with transaction.atomic():
        record_hits(site, [CleanHit(path="/", created_at=start + timedelta(days=n)) for n in range(40)])
    return site


def sign_in(page: Page, base: str, url: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(base + url)
    page.wait_for_url("**/accounts/login/**")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def run_worker() -> None:
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)  # the real worker


def test_the_owner_deletes_old_hits_then_the_site(site, page, live_server):
    sign_in(page, live_server.url, f"/sites/{site.code}/")
    page.wait_for_url(f"**/sites/{site.code}/")
    page.click("text=Delete data")
    page.wait_for_url("**/delete/")
    page.fill("input[name=before]", "2026-01-21")
    page.click("#delete-hits button[type=submit]")
    assert "Deleting the hits before 2026-01-21" in page.inner_text("#hits-deletion")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "delete-site-data.png"), full_page=True)
    # Nothing spills off a phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    run_worker()
    page.reload()
    assert page.locator("#hits-deletion").count() == 0
    assert Hit.objects.filter(site=site).count() == 20

    page.fill("#delete-site input[name=confirm]", "dana")
    page.click("#delete-site button[type=submit]")
    assert "not the site's code" in page.inner_text("#confirm-error")
    page.fill("#delete-site input[name=confirm]", site.code)
    page.click("#delete-site button[type=submit]")
    assert page.inner_text("h1") == "dana-blog is being deleted"
    run_worker()
    assert not Site.objects.exists() and not Hit.objects.exists()


def test_a_user_deletes_their_account(site, page, live_server):
    sign_in(page, live_server.url, "/accounts/delete/")
    page.wait_for_url("**/accounts/delete/")
    page.goto(f"{live_server.url}/")  # the front door links to it
    page.click("text=Delete account")
    page.wait_for_url("**/accounts/delete/")
    page.fill("input[name=confirm]", "dana")
    page.screenshot(path=str(ARTIFACTS / "delete-account.png"), full_page=True)
    page.click("#delete-account button[type=submit]")
    assert page.inner_text("h1") == "Your account is being deleted"
    assert "Sign in" in page.inner_text("header")  # signed out
    run_worker()
    assert not User.objects.exists() and not Site.objects.exists() and not Hit.objects.exists()
