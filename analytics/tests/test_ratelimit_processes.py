"""GoatCounter's rate limits: /api/v0's 60 per 120 s with headers, counted per key, shared across processes."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import time_machine
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from analytics import sites
from analytics.models import Hit, Site
from analytics.tests.conftest import database_url
from conftest import client_with_key, make_key, subprocess_environ
from logsvc.models import RateLimitCounter

ME = "/api/v0/me"
COUNT = "/api/v0/count"
START = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)  # 10 s into a 120 s window: 110 s left
ROOT = Path(__file__).resolve().parents[2]
ONE_HIT = {"no_sessions": True, "hits": [{"path": "/"}]}


@pytest.fixture(autouse=True)
def _clean_sites_cache():
    sites.forget_pixel_sites()


@pytest.fixture
def frozen():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def blog(alice) -> Site:
    return Site.objects.create(code="alice-blog", owner=alice)


def rate_headers(response) -> tuple[str, str, str]:
    return response["X-Rate-Limit-Limit"], response["X-Rate-Limit-Remaining"], response["X-Rate-Limit-Reset"]


def test_it_counts_down_in_headers_and_answers_429_past_the_limit(settings, api_client, blog, frozen):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter": "3/120"}
    seen = [rate_headers(api_client.get(ME)) for _ in range(3)]
    assert seen == [("3", "2", "110"), ("3", "1", "110"), ("3", "0", "110")]
    r = api_client.get("/api/v0/sites")
    assert r.status_code == 429
    assert r["Retry-After"] == "110"
    assert rate_headers(r) == ("3", "0", "110")
    assert list(r.json()) == ["error"]
    counter = RateLimitCounter.objects.get()
    assert (counter.key.startswith("goatcounter:key:"), counter.count) == (True, 4)

    frozen.shift(timedelta(seconds=110))
    r = api_client.get(ME)
    assert r.status_code == 200
    assert rate_headers(r) == ("3", "2", "120")


def test_the_default_is_the_seeds_60_per_120_seconds(api_client, blog, frozen):
    assert django_settings.RATE_LIMITS["goatcounter"] == "60/120"
    assert rate_headers(api_client.get(ME)) == ("60", "59", "110")


def test_it_counts_per_key(settings, api_client, alice, charlie_client, blog, frozen):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter": "2/120"}
    for _ in range(2):
        api_client.get(ME)
    assert api_client.get(ME).status_code == 429
    assert charlie_client.get(ME)["X-Rate-Limit-Remaining"] == "1"
    r = client_with_key(make_key(alice)).get(ME)
    assert (r.status_code, r["X-Rate-Limit-Remaining"]) == (200, "1")


def test_a_wrong_key_does_not_use_up_a_valid_keys_budget(settings, api_client, alice_key, blog, frozen):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter": "2/120"}
    assert api_client.get(ME)["X-Rate-Limit-Remaining"] == "1"
    wrong = alice_key[:-4] + ("AAAA" if not alice_key.endswith("AAAA") else "BBBB")
    for _ in range(5):
        r = client_with_key(wrong).get(ME)
        assert r.status_code == 401
        assert "X-Rate-Limit-Remaining" not in r
    r = api_client.get(ME)
    assert (r.status_code, r["X-Rate-Limit-Remaining"]) == (200, "0")
    assert RateLimitCounter.objects.get().count == 2


def test_count_has_its_own_bigger_bucket(settings, api_client, blog, frozen):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter": "1/120", "goatcounter-count": "2/120"}
    assert api_client.get(ME).status_code == 200
    for _ in range(2):
        r = api_client.post(COUNT, ONE_HIT, format="json")
        assert r.status_code == 202
    assert r["X-Rate-Limit-Limit"] == "2"
    r = api_client.post(COUNT, ONE_HIT, format="json")
    assert r.status_code == 429
    assert r["Retry-After"] == "110"
    assert Hit.objects.count() == 2


def test_an_anonymous_request_is_refused_before_it_is_counted(settings, blog, frozen):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter": "1/120"}
    for _ in range(3):
        assert APIClient().get(ME).status_code == 401
    assert not RateLimitCounter.objects.exists()


# --- Real server processes, for the tests that share counters across them -----------------------------------------
# (logsvc/tests/test_abuse_ratelimits.py bursts /api/v0, /api/v0/count and the pixel through two gunicorn
# processes of three workers each, with the counters in PostgreSQL and in Redis.)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_servers(
    request, count: int, env: dict[str, str], workers: int = 1, args: tuple[str, ...] = (), log_path: Path | None = None
) -> list[str]:
    """count gunicorn processes of logsvc on free ports, serving it as production does (uvicorn workers,
    logsvc.asgi), stopped when the test (or the fixture's scope) ends; their base URLs. What they print
    (tracebacks included) goes to log_path when given."""
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    servers: list[tuple[subprocess.Popen, str]] = []
    # Not a pipe: nobody reads it while the test runs, and a full pipe would block the server.
    log = open(log_path, "w+b") if log_path else tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)

    def stop() -> None:
        for process, _ in servers:
            process.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown: nothing is in flight
        for process, _ in servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: the master and its workers, no more
                process.wait()
        log.close()

    request.addfinalizer(stop)
    for _ in range(count):
        port = free_port()
        process = subprocess.Popen(
            [
                gunicorn,
                "logsvc.asgi",
                "--worker-class=uvicorn_worker.UvicornWorker",
                f"--bind=127.0.0.1:{port}",
                f"--workers={workers}",
                "--log-level=warning",
                "--no-control-socket",  # else every gunicorn on the machine shares ~/.gunicorn/gunicorn.ctl
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        servers.append((process, f"http://127.0.0.1:{port}"))
    deadline = time.monotonic() + 60  # workers boot slowly on a busy machine
    for process, url in servers:
        while True:
            try:
                # The socket listens before the workers have booted: the first answer can take a while.
                requests.get(f"{url}{ME}", timeout=max(1.0, deadline - time.monotonic()))
                break
            except (requests.ConnectionError, requests.Timeout):
                if process.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"server at {url} exited: {log.read().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"server at {url} did not start in 60 s")
                time.sleep(0.1)
    return [url for _, url in servers]


@functools.cache
def collected_static() -> str:
    """A STATIC_ROOT for servers with DEBUG off, which serve static files by collectstatic's manifest (a
    littlelogs user's default avatar is one): collected once a session, outside the checkout."""
    root = tempfile.mkdtemp(prefix="logsvc-static-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    env = subprocess_environ() | {
        "STATIC_ROOT": root,
        "SECRET_KEY": "collectstatic-only",
        "DATABASE_URL": database_url(),
    }
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    return root


def server_env(**extra: str) -> dict[str, str]:
    return subprocess_environ() | {
        "DATABASE_URL": database_url(),
        "STATIC_ROOT": collected_static(),
        "CONN_MAX_AGE": "0",
        "SECRET_KEY": "test-only-secret",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "RATE_LIMIT_GOATCOUNTER_COUNT": "5/60",
        "API_KEY_CACHE_SECONDS": "0",
        **extra,
    }


def wait_for_room_in_the_window(period: int = 60, needed: float = 5) -> None:
    """The counters are per fixed window: don't let the window end halfway through the test."""
    left = period - time.time() % period
    if left < needed:
        time.sleep(left + 0.1)
