"""The cast every test shares: alice owns things, charlie is the outsider (HC's convention)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import Browser, Page, sync_playwright
from rest_framework.test import APIClient

from logsvc.models import SCOPES, ApiKey, User

ALL_SCOPES = [name for name, _ in SCOPES]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _static_files_without_manifest(settings):
    # Pages that link static files (admin, /api.html) need collectstatic's manifest under DEBUG=False;
    # tests serve the files by their plain names instead.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _api_keys_checked_every_time(settings):
    # Tests revoke keys and expect the next request to see it; test_auth.py covers the cache itself.
    settings.API_KEY_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _media_of_its_own(settings, tmp_path_factory):
    # Uploads (avatars, seed_social's pictures) go to a directory of the test's, never to var/media.
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _counters_in_postgres(settings):
    # Rate-limit tests that want Redis say so; the rest never depend on a Redis being there.
    settings.REDIS_URL = ""


def make_key(user: User, *scopes: str, **fields) -> str:
    """A new API key of user's with these scopes (all of them when none are named); returns the raw key."""
    _, raw = ApiKey.create(user=user, name="test", scopes=list(scopes or ALL_SCOPES), **fields)
    return raw


def count_queries(client: APIClient, url: str) -> int:
    """How many queries a successful GET of url runs."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def client_with_key(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", email="alice@example.org", password="alice-password")


@pytest.fixture
def charlie(db) -> User:
    return User.objects.create_user("charlie", email="charlie@example.org", password="charlie-password")


@pytest.fixture
def alice_key(alice) -> str:
    return make_key(alice)


@pytest.fixture
def api_client(alice_key) -> APIClient:
    """alice's client, holding a key with every scope."""
    return client_with_key(alice_key)


@pytest.fixture
def charlie_client(charlie) -> APIClient:
    return client_with_key(make_key(charlie))


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


def subprocess_environ(*drop: str) -> dict[str, str]:
    """os.environ for a server or command a test starts, less the test session's own switches (pytest's, rate
    limits a test set, the browser fixture's DJANGO_ALLOW_ASYNC_UNSAFE) and any variables starting with drop."""
    prefixes = ("PYTEST", "RATE_LIMIT_", "DJANGO_ALLOW_ASYNC_UNSAFE", *drop)
    return {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}


# A real browser for the tests that need one (count.js, the dashboard, the XSS audit): Debian's Chromium driven
# by Playwright. One browser per session (starting it costs about a second; a second sync Playwright in the same
# thread refuses to start), one fresh context per test, so no cookie, localStorage or cache leaks between tests.


def run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run() on a thread of its own: once the session's browser has started, Playwright's sync API keeps an
    event loop running in the main thread, where asyncio.run() refuses to start another."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # A failure, not a skip: a suite that silently skips its browser tests passes without testing count.js.
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install chromium` (make test does)", pytrace=False)
    # Playwright's sync API keeps an asyncio loop in this thread, and Django then refuses ORM calls as if they
    # came from async code; the tests' own queries are plain blocking ones, so let them through (never into a
    # process a test starts: subprocess_environ leaves it out).
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
