"""Rate limits hold across processes: two gunicorn processes of three sync workers each share one budget
per key (per visitor for the pixel), for every limited family, with the counters in PostgreSQL and in Redis.

A concurrent burst past the limit, spread over both processes: exactly `limit` requests get through and
store a row each, the others get 429 with Retry-After and X-Rate-Limit-* in the family's envelope.
test_ratelimit.py and analytics/tests/test_ratelimit_processes.py cover the headers, the windows and the
per-key budgets within one process.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import redis
import requests
from django.db.models import Sum

from analytics.models import Hit, Site
from analytics.tests.test_ratelimit_processes import server_env, start_servers, wait_for_room_in_the_window
from conftest import make_key
from events.models import Event, LogMessage
from logsvc.models import RateLimitCounter
from logsvc.tests.test_abuse_bodies import error_of
from social.models import Log
from social.tests.conftest import access_token

LIMIT = 5
PERIOD = 3600  # long: a burst never straddles two windows
BURST = 12  # more than the 6 workers, so requests queue in both processes at once
REDIS_URL = "redis://127.0.0.1:6379/12"  # this file's own: it is flushed
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
THROTTLED = "Request was throttled. Expected available in {} seconds."


@dataclass(frozen=True)
class Burst:
    """n-th request of a burst at one limited family, and what each allowed request stores."""

    method: str
    path: str
    ok: int  # the status of a request within the limit
    body: Callable[[int], Any] | None
    stored: Callable[[], int]
    envelope: str  # the family whose error envelope a 429 has; "pixel": the GIF


BURSTS = {
    "logster": Burst(
        "POST", "/api/Log", 200, lambda n: {"Message": f"burst {n}", "Severity": 1}, LogMessage.objects.count, "logster"
    ),
    "bytelog": Burst("POST", "/api/v1/events", 201, lambda n: {"name": f"burst {n}"}, Event.objects.count, "bytelog"),
    "littlelogs": Burst(
        "POST", "/api/1/logs/create/", 201, lambda n: {"content": f"burst {n}"}, Log.objects.count, "littlelogs"
    ),
    "goatcounter": Burst(
        "PUT",
        "/api/v0/sites",
        200,
        lambda n: {"code": f"burst-{n}"},
        Site.objects.filter(code__startswith="burst-").count,
        "goatcounter",
    ),
    "goatcounter-count": Burst(
        "POST",
        "/api/v0/count",
        202,
        lambda n: {"no_sessions": True, "hits": [{"path": f"/{n}"}]},
        Hit.objects.count,
        "goatcounter",
    ),
    "goatcounter-pixel": Burst("GET", "/count/{site}?p=/{n}", 200, None, Hit.objects.count, "pixel"),
}
RATE_SETTINGS = {
    "RATE_LIMIT_LOGSTER",
    "RATE_LIMIT_BYTELOG",
    "RATE_LIMIT_LITTLELOGS",
    "RATE_LIMIT_GOATCOUNTER",
    "RATE_LIMIT_GOATCOUNTER_COUNT",
    "RATE_LIMIT_GOATCOUNTER_PIXEL",
}


@pytest.fixture(scope="module", params=["postgres", "redis"])
def backend(request, django_db_setup) -> tuple[str, list[str]]:
    """The counters' home, and the base URLs of two gunicorn processes of three workers each using it."""
    extra = {"REDIS_URL": ""}
    if request.param == "redis":
        server = redis.Redis.from_url(REDIS_URL)
        try:
            server.ping()
        except redis.RedisError as exc:
            pytest.skip(f"needs a Redis at {REDIS_URL}: {exc}")
        server.flushdb()  # an earlier run's counters, for keys whose ids this run repeats
        extra = {"REDIS_URL": REDIS_URL}
    rates = {name: f"{LIMIT}/{PERIOD}" for name in RATE_SETTINGS}
    env = server_env(LOG_LEVEL="CRITICAL", **rates, **extra)  # each 429 would log a warning
    return request.param, start_servers(request, 2, env, workers=3)


def counted(backend: str, scope: str) -> int:
    """Requests the shared counters hold in scope's buckets."""
    if backend == "postgres":
        return RateLimitCounter.objects.filter(key__startswith=f"{scope}:").aggregate(n=Sum("count"))["n"] or 0
    server = redis.Redis.from_url(REDIS_URL)
    return sum(int(server.get(name) or 0) for name in server.scan_iter(f"ratelimit:{scope}:*"))


@pytest.mark.parametrize("scope", BURSTS)
def test_a_burst_through_two_processes_gets_exactly_the_limit_through(backend, transactional_db, alice, scope):
    counters, urls = backend
    burst = BURSTS[scope]
    site = Site.objects.create(code=f"blog-{secrets.token_hex(4)}", owner=alice)  # new: processes cache codes
    if scope == "littlelogs":
        headers = {"Authorization": f"Bearer {access_token(alice)}"}
    elif scope == "logster":
        headers = {"ApiKey": make_key(alice)}  # Logster's own header
    elif scope == "goatcounter-pixel":
        headers = {"User-Agent": UA}  # counted per visitor (IP and user agent), no key
    else:
        headers = {"Authorization": f"Bearer {make_key(alice)}"}
    wait_for_room_in_the_window(PERIOD, needed=30)

    def send(n: int) -> requests.Response:
        url = urls[n % 2] + burst.path.format(site=site.code, n=n)
        body = orjson.dumps(burst.body(n)) if burst.body else None
        headers_n = {**headers, "Content-Type": "application/json"} if body else headers
        return requests.request(burst.method, url, data=body, headers=headers_n, timeout=60)

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(send, range(BURST)))

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [burst.ok] * LIMIT + [429] * (BURST - LIMIT), [r.text[:200] for r in answers]
    allowed = [r for r in answers if r.status_code == burst.ok]
    assert sorted(r.headers["X-Rate-Limit-Remaining"] for r in allowed) == ["0", "1", "2", "3", "4"]
    for r in answers:
        assert r.headers["X-Rate-Limit-Limit"] == str(LIMIT)
        assert 0 < int(r.headers["X-Rate-Limit-Reset"]) <= PERIOD
    for r in answers:
        if r.status_code != 429:
            continue
        assert r.headers["X-Rate-Limit-Remaining"] == "0"
        assert r.headers["Retry-After"] == r.headers["X-Rate-Limit-Reset"]
        if burst.envelope == "pixel":
            assert r.headers["Content-Type"] == "image/gif"
            assert r.headers["X-Goatcounter"] == f"rate limited: at most {LIMIT} hits in {PERIOD} s"
        else:
            message = THROTTLED.format(r.headers["Retry-After"])
            assert error_of(burst.envelope, r.json()) == message
    assert burst.stored() == LIMIT
    assert counted(counters, scope) == BURST
