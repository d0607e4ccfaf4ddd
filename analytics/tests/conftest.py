"""A real browser for the tests that need one (count.js, the dashboard): Debian's Chromium driven by Playwright.

One browser per session (starting it costs about a second), one fresh context per test, so no cookie,
localStorage or cache leaks from one test into the next.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # A failure, not a skip: a suite that silently skips its browser tests passes without testing count.js.
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install chromium` (make test does)", pytrace=False)
    # Playwright's sync API keeps an asyncio loop in this thread, and Django then refuses ORM calls as if they
    # came from async code; the tests' own queries are plain blocking ones, so let them through.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        # Never a downloaded browser: the system's, headless; root in a container needs --no-sandbox.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"])
        yield browser
        browser.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def person_user_agent(browser: Browser) -> str:
    """The browser's own User-Agent minus the 'Headless' that makes every server (ours too) call it a bot."""
    page = browser.new_page()
    try:
        return page.evaluate("navigator.userAgent").replace("HeadlessChrome/", "Chrome/")
    finally:
        page.close()


@pytest.fixture
def page(browser: Browser, person_user_agent: str) -> Iterator[Page]:
    """A tab in a fresh browser profile that looks like a person's desktop Chrome: a 1920-pixel screen, a
    normal User-Agent and navigator.webdriver false (count.js reports a driven browser as a bot)."""
    context = browser.new_context(
        user_agent=person_user_agent, viewport={"width": 1280, "height": 720}, screen={"width": 1920, "height": 1080}
    )
    context.add_init_script("Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false})")
    context.set_default_timeout(5_000)  # a missing element fails in seconds, not Playwright's 30
    page = context.new_page()
    yield page
    context.close()


def database_url() -> str:
    """The test database as a URL for a subprocess's DATABASE_URL or psycopg.connect: a server's host and port,
    or the embedded PostgreSQL's socket directory (which settings keep in OPTIONS["host"])."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    user = f"{db['USER']}:{db.get('PASSWORD') or ''}"
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or "127.0.0.1"
    if host.startswith("/"):
        port = f"&port={db['PORT']}" if db.get("PORT") else ""
        return f"postgresql://{user}@/{db['NAME']}?host={host}{port}"
    return f"postgresql://{user}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"
