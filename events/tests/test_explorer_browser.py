"""The explorer as a person uses it, in Debian's Chromium: sign in, search the logs, open a message, follow the
live tail while a message is posted through the real Logster API, open a trace, save a search. Screenshots of
each page go to var/test-artifacts/ for a human to look at."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from events.models import Event, LogMessage, SavedSearch
from events.rollups import roll_up
from logsvc.models import ApiKey, User

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts"
PASSWORD = "a-long-enough-passphrase"
STACK = """System.InvalidOperationException: The card was refused
   at Shop.Payments.PayPal.Charge(Order order) in C:\\src\\Shop\\PayPal.cs:line 88
   at Shop.Checkout.Pay(Order order) in C:\\src\\Shop\\Checkout.cs:line 41
   at Shop.Web.CheckoutController.Post() in C:\\src\\Shop.Web\\CheckoutController.cs:line 19"""

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dana(live_server) -> tuple[User, str]:
    dana = User.objects.create_user("dana", first_name="Dana", password=PASSWORD)
    erin = User.objects.create_user("erin")
    _, key = ApiKey.create(user=dana, name="shop server", scopes=["logs:write", "logs:read"])
    now = timezone.now()
    lines = [
        (2, "shop", "Order 1041 placed", ""),
        (3, "shop", "Payment slow: PayPal answered in 4.2 s", ""),
        (2, "stock", "Stock of sku-88 at 3", ""),
        (4, "shop", "Payment failed for order 1042", STACK),
        (1, "shop", "Cache warmed in 120 ms", ""),
        (5, "stock", "Warehouse sync stopped: connection refused", ""),
    ]
    for n in range(60):
        severity, app, message, stack = lines[n % len(lines)]
        LogMessage.objects.create(
            owner=dana,
            message=message,
            severity=severity,
            application=app,
            category="checkout" if app == "shop" else "sync",
            user=f"customer-{n % 7}" if app == "shop" else "",
            exception=stack.split("\n", 1)[0],
            stack_trace=stack,
            created=now - timedelta(minutes=n * 23),
        )
    LogMessage.objects.create(owner=erin, message="Payment of erin's private shop", severity=4)
    steps = [("checkout_started", 0), ("cart_priced", 0.35), ("paypal_payment", 2.9), ("receipt_sent", 3.4)]
    for name, seconds in steps:
        data = {"order": 1042, "amount": 129.9} if name == "paypal_payment" else {"order": 1042}
        Event.objects.create(
            owner=dana, name=name, trace_id="order-1042", data=data, date=now - timedelta(seconds=60 - seconds)
        )
    Event.objects.create(owner=dana, name="signup", data={"plan": "pro"}, date=now - timedelta(hours=3))
    Event.objects.create(owner=erin, name="erins_event", trace_id="order-1042", date=now)
    return dana, key


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def post_log(base: str, key: str, message: dict) -> str:
    request = urllib.request.Request(
        f"{base}/api/Log",
        data=json.dumps(message).encode(),
        headers={"ApiKey": key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["MessageId"]


def no_sideways_scrolling(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_person_searches_opens_follows_traces_and_saves(dana, page, live_server, settings):
    base = live_server.url
    _, key = dana
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(base + "/logs/")
    page.wait_for_url("**/accounts/login/**")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/logs/")
    expect(page.locator("#log-rows .log-item")).to_have_count(50)
    expect(page.locator("body")).not_to_contain_text("erin")
    expect(page.locator("#chart h2")).to_contain_text("60 messages")  # the histogram, fetched after the page
    roll_up()  # the worker's fold: the same chart, from the counts now
    page.reload()
    expect(page.locator("#chart h2")).to_contain_text("60 messages")
    expect(page.locator("#chart svg .s-error")).not_to_have_count(0)
    shot(page, "explorer-logs")

    # A search's chart is counted from its rows, the newest so many at most: the bars before those are grey
    settings.EXPLORER_HISTOGRAM_MAX_ROWS = 8
    page.goto(base + "/logs/?q=payment")
    expect(page.locator("#chart h2")).to_contain_text("More than")
    expect(page.locator("#chart .chart-note")).to_contain_text("Narrow the range")
    expect(page.locator("#chart svg .uncounted")).not_to_have_count(0)
    shot(page, "explorer-histogram-capped")
    settings.EXPLORER_HISTOGRAM_MAX_ROWS = 50_000

    # Search: the words found are marked
    page.fill("input[name=q]", "payment failed")
    page.select_option("select[name=severity]", "4")
    page.click("button:has-text('Search')")
    page.wait_for_url("**/logs/?q=payment+failed*")
    assert page.url.endswith("/logs/?q=payment+failed&severity=4&range=24h")  # the filters set, no empty ones
    rows = page.locator("#log-rows .log-item")
    expect(rows.first).to_contain_text("Payment failed for order 1042")
    expect(rows.first.locator("mark")).to_have_text(["Payment", "failed"])
    expect(page.locator("body")).not_to_contain_text("Warehouse")
    expect(page.locator("#chart h2")).to_contain_text("10 messages")
    shot(page, "explorer-search")

    # Save the search; it is listed and its link is the search
    page.fill("input[name=name]", "Failed payments")
    page.click("button:has-text('Save search')")
    chip = page.locator(".chip a", has_text="Failed payments")
    expect(chip).to_be_visible()
    assert SavedSearch.objects.get().query.startswith("q=payment+failed&severity=4")

    # A message's page: the exception, the stack trace's frames, what happened around it
    rows.first.locator("a").click()
    page.wait_for_url("**/logs/*/")
    expect(page.locator("h1")).to_have_text("Payment failed for order 1042")
    expect(page.locator("pre.trace .frame").first).to_contain_text("at Shop.Payments.PayPal.Charge")
    expect(page.locator("#around .log-item")).not_to_have_count(0)
    expect(page.locator("#permalink")).to_have_value(page.url)
    shot(page, "explorer-message")
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_sideways_scrolling(page)  # the stack trace scrolls in its box
    shot(page, "explorer-message-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Follow: a message posted through the API appears within 2 s (polled every 1.5 s), the filters kept
    page.goto(base + "/logs/?application=shop")
    page.locator("label.follow").click()
    expect(page.locator("#follow-state")).to_have_text("live")
    assert "follow=1" in page.url
    post_log(base, key, {"Message": "Payment retried for order 1042", "Severity": 3, "Application": "shop"})
    post_log(base, key, {"Message": "Not this app's", "Severity": 3, "Application": "stock"})
    expect(page.locator("#log-rows .log-item").first).to_contain_text("Payment retried for order 1042", timeout=4_000)
    page.wait_for_timeout(1_600)
    expect(page.locator("#log-rows")).not_to_contain_text("Not this app's")
    shot(page, "explorer-follow")

    # Events, and a trace's waterfall from an event
    page.click("nav.nav a:has-text('Events')")
    page.wait_for_url(base + "/events/")
    expect(page.locator(".event-item")).to_have_count(5)
    expect(page.locator(".event-item").first.locator(".public-link")).to_have_attribute(
        "href", f"{base}/api/events/{Event.objects.get(name='receipt_sent').uid}.json"
    )
    expect(page.locator("#chart h2")).to_contain_text("5 events")
    shot(page, "explorer-events")
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_sideways_scrolling(page)
    shot(page, "explorer-events-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator(".event-item", has_text="paypal_payment").locator(".trace-link").click()
    page.wait_for_url(base + "/events/trace/order-1042")
    expect(page.locator(".wf-label strong")).to_have_text(
        ["checkout_started", "cart_priced", "paypal_payment", "receipt_sent"]
    )
    expect(page.locator(".wf-row").nth(2)).to_contain_text("gap 2.55 s")
    expect(page.locator("body")).not_to_contain_text("erins_event")
    page.locator(".wf-row").nth(2).locator("summary").click()
    expect(page.locator(".wf-row").nth(2).locator("pre")).to_contain_text('"amount": 129.9')
    shot(page, "explorer-trace")

    # On a phone: nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_sideways_scrolling(page)
    shot(page, "explorer-trace-phone")
    page.goto(chip_url := base + SavedSearch.objects.get().url)
    expect(page.locator("#log-rows .log-item").first.locator("mark").first).to_have_text("Payment")
    assert no_sideways_scrolling(page), chip_url
    shot(page, "explorer-logs-phone")
