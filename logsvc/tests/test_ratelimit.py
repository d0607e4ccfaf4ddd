"""Rate limits: X-Rate-Limit-* headers, 429 + Retry-After, counted per key, in PostgreSQL or Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine
from rest_framework.test import APIClient

from conftest import client_with_key, make_key
from events.models import Event, LogMessage
from logsvc import ratelimit
from logsvc.models import ApiKey, RateLimitCounter

REDIS_URL = "redis://127.0.0.1:6379/15"
START = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)  # 10 s into a 60 s window: 50 s left
BYTELOG = "/api/v1/events"
LOGSTER = "/api/Log"


def use_redis(settings) -> redis.Redis:
    server = redis.Redis.from_url(REDIS_URL)
    try:
        server.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis rate-limit tests need a Redis at {REDIS_URL}: {exc}")
    server.flushdb()
    settings.REDIS_URL = REDIS_URL
    return server


@pytest.fixture(params=["postgres", "redis"])
def backend(request, settings) -> str:
    """Runs a test once with the counters in PostgreSQL and once in Redis."""
    if request.param == "redis":
        use_redis(settings)
    return request.param


@pytest.fixture
def redis_server(settings) -> redis.Redis:
    return use_redis(settings)


@pytest.fixture(autouse=True)
def limits(settings) -> None:
    settings.RATE_LIMITS = {"logster": "3/60", "bytelog": "3/60", "loggator": ""}


@pytest.fixture
def frozen():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def rate_headers(response) -> tuple[str, str, str]:
    return response["X-Rate-Limit-Limit"], response["X-Rate-Limit-Remaining"], response["X-Rate-Limit-Reset"]


def test_it_counts_down_on_every_limited_response(backend, api_client, frozen):
    seen = [rate_headers(api_client.get(BYTELOG)) for _ in range(3)]
    assert seen == [("3", "2", "50"), ("3", "1", "50"), ("3", "0", "50")]


def test_it_answers_429_with_retry_after_past_the_limit_in_bytelogs_envelope(backend, api_client, alice, frozen):
    for _ in range(3):
        assert api_client.post(BYTELOG, {"name": "click"}, format="json").status_code == 201
    r = api_client.post(BYTELOG, {"name": "one too many"}, format="json")
    assert r.status_code == 429
    assert r["Retry-After"] == "50"
    assert rate_headers(r) == ("3", "0", "50")
    assert r.json() == {"error": "Request was throttled. Expected available in 50 seconds."}
    assert list(Event.objects.values_list("name", flat=True)) == ["click"] * 3


def test_it_answers_429_in_logsters_envelope(backend, api_client, frozen):
    for _ in range(3):
        assert api_client.post(LOGSTER, {"Message": "hi", "Severity": 1}, format="json").status_code == 200
    r = api_client.post(LOGSTER, {"Message": "one too many", "Severity": 1}, format="json")
    assert r.status_code == 429
    assert r["Retry-After"] == "50"
    assert r.json() == {"Message": "Request was throttled. Expected available in 50 seconds."}
    assert LogMessage.objects.count() == 3


def test_it_gives_the_budget_back_when_the_window_ends(backend, api_client, frozen):
    for _ in range(4):
        api_client.get(BYTELOG)
    assert api_client.get(BYTELOG).status_code == 429
    frozen.shift(timedelta(seconds=50))
    r = api_client.get(BYTELOG)
    assert r.status_code == 200
    assert rate_headers(r) == ("3", "2", "60")


def test_it_counts_per_key(backend, api_client, alice, charlie_client, frozen):
    for _ in range(3):
        api_client.get(BYTELOG)
    assert api_client.get(BYTELOG).status_code == 429

    r = charlie_client.get(BYTELOG)
    assert r.status_code == 200
    assert r["X-Rate-Limit-Remaining"] == "2"

    second_key_of_alices = client_with_key(make_key(alice))
    r = second_key_of_alices.get(BYTELOG)
    assert r.status_code == 200
    assert r["X-Rate-Limit-Remaining"] == "2"


def test_it_does_not_charge_a_wrong_key_to_a_valid_one(backend, api_client, alice_key, frozen):
    assert api_client.get(BYTELOG)["X-Rate-Limit-Remaining"] == "2"
    wrong = alice_key[:-4] + "AAAA" if not alice_key.endswith("AAAA") else alice_key[:-4] + "BBBB"
    for _ in range(5):
        r = client_with_key(wrong).get(BYTELOG)
        assert r.status_code == 401
        assert "X-Rate-Limit-Remaining" not in r
    assert api_client.get(BYTELOG)["X-Rate-Limit-Remaining"] == "1"


def test_it_keeps_one_budget_per_family(backend, api_client, frozen):
    for _ in range(3):
        api_client.get(BYTELOG)
    assert api_client.get(BYTELOG).status_code == 429
    r = api_client.get(LOGSTER)
    assert r.status_code == 200
    assert r["X-Rate-Limit-Remaining"] == "2"


def test_it_never_limits_loggator_reads(backend, settings, client, alice, frozen):
    settings.RATE_LIMITS = {"logster": "1/60", "bytelog": "1/60", "loggator": "1/60"}
    event = Event.objects.create(owner=alice, name="click")
    for _ in range(5):
        r = client.get(f"/api/events/{event.uid}.json")
        assert r.status_code == 200
        assert "X-Rate-Limit-Limit" not in r
    assert not RateLimitCounter.objects.exists()


def test_it_does_not_limit_a_family_whose_rate_is_empty(settings, api_client, frozen):
    settings.RATE_LIMITS = {"logster": "", "bytelog": "", "loggator": ""}
    for _ in range(5):
        r = api_client.get(BYTELOG)
        assert r.status_code == 200
        assert "X-Rate-Limit-Limit" not in r


def test_it_keeps_the_counters_in_postgresql_without_redis(api_client, frozen):
    for _ in range(2):
        api_client.get(BYTELOG)
    key = ApiKey.objects.get()
    counter = RateLimitCounter.objects.get()
    assert counter.key == f"bytelog:key:{key.pk}"
    assert counter.count == 2
    assert counter.window_start == int(START.timestamp()) // 60


def test_it_drops_a_buckets_old_windows_in_postgresql(api_client, frozen):
    api_client.get(BYTELOG)
    frozen.shift(timedelta(seconds=60))
    api_client.get(BYTELOG)
    assert list(RateLimitCounter.objects.values_list("window_start", "count")) == [
        (int(START.timestamp()) // 60 + 1, 1)
    ]


def test_it_keeps_the_counters_in_redis_when_set(redis_server, api_client, frozen):
    for _ in range(2):
        api_client.get(BYTELOG)
    key = ApiKey.objects.get()
    server = redis_server
    name = f"ratelimit:bytelog:key:{key.pk}:{int(START.timestamp()) // 60}"
    assert server.get(name) == b"2"
    assert 0 < server.ttl(name) <= 61
    assert not RateLimitCounter.objects.exists()


def test_it_counts_in_postgresql_while_redis_does_not_answer(settings, api_client, frozen, caplog, monkeypatch):
    monkeypatch.setattr(ratelimit, "_redis_down_until", {})
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: a Redis that went away
    answers = [api_client.post(LOGSTER, {"Message": f"m{n}", "Severity": 1}, format="json") for n in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["X-Rate-Limit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert LogMessage.objects.count() == 3
    assert RateLimitCounter.objects.get().count == 4
    assert caplog.text.count("rate limits are counted in PostgreSQL") == 1  # Redis left alone for a while


def test_it_tries_redis_again_once_the_wait_is_over(settings, redis_server, api_client, frozen, monkeypatch):
    monkeypatch.setattr(ratelimit, "_redis_down_until", {})
    ratelimit.redis_failed(ConnectionError("as if it had just failed"))
    assert api_client.post(LOGSTER, {"Message": "during", "Severity": 1}, format="json").status_code == 200
    assert RateLimitCounter.objects.count() == 1 and not redis_server.keys()
    ratelimit._redis_down_until[REDIS_URL] -= ratelimit.REDIS_RETRY_SECONDS  # the wait is over
    answer = api_client.post(LOGSTER, {"Message": "after", "Severity": 1}, format="json")
    assert answer.status_code == 200 and answer["X-Rate-Limit-Remaining"] == "2"  # a fresh count, in Redis
    assert redis_server.keys()


def test_it_sends_no_rate_limit_headers_on_a_401(backend, frozen):
    r = APIClient().get(BYTELOG)
    assert r.status_code == 401
    assert "X-Rate-Limit-Limit" not in r
