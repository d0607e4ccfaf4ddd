"""Idempotency-Key: a retry replays the first answer and stores nothing twice, even when retries race."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client

from conftest import make_key
from events.models import Event, LogMessage
from logsvc.models import IdempotencyRecord

LOGSTER = "/api/Log"
BYTELOG = "/api/v1/events"
MESSAGE = {"Message": "Disk full", "Severity": 5}
EVENT = {"name": "click", "trace_id": "t1"}


def test_it_replays_logsters_first_answer(api_client, alice):
    first = api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    retry = api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json() == {"MessageId": str(LogMessage.objects.get().pk)}
    assert retry["Content-Type"] == first["Content-Type"]
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert LogMessage.objects.filter(owner=alice).count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.owner, record.key, record.path, record.status) == (alice, "k-1", LOGSTER, 200)


def test_it_replays_bytelogs_201(api_client, alice):
    first = api_client.post(BYTELOG, EVENT, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    retry = api_client.post(BYTELOG, EVENT, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == retry.status_code == 201
    assert first.content == retry.content == b""
    assert alice.events.count() == 1


def test_it_replays_a_batch(api_client, alice):
    batch = [MESSAGE, {**MESSAGE, "Message": "Disk still full"}]
    first = api_client.post(LOGSTER, batch, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    retry = api_client.post(LOGSTER, batch, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert retry.json() == first.json()
    assert len(first.json()) == 2
    assert alice.log_messages.count() == 2


def test_it_replays_to_another_key_of_the_same_owner(alice, alice_key):
    body = json.dumps(MESSAGE)
    first = Client().post(
        LOGSTER, body, content_type="application/json", HTTP_APIKEY=alice_key, HTTP_IDEMPOTENCY_KEY="k"
    )
    retry = Client().post(
        LOGSTER, body, content_type="application/json", HTTP_APIKEY=make_key(alice), HTTP_IDEMPOTENCY_KEY="k"
    )
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert alice.log_messages.count() == 1


def test_it_replays_a_gzipped_retry_of_a_plain_request(api_client, alice):
    body = json.dumps(MESSAGE).encode()
    first = api_client.post(LOGSTER, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    retry = api_client.post(
        LOGSTER,
        gzip.compress(body),
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert alice.log_messages.count() == 1


def test_it_stores_each_request_without_a_key(api_client, alice):
    first = api_client.post(LOGSTER, MESSAGE, format="json")
    second = api_client.post(LOGSTER, MESSAGE, format="json")
    assert first.json() != second.json()
    assert alice.log_messages.count() == 2
    assert not IdempotencyRecord.objects.exists()


def test_it_keeps_another_owners_identical_key_apart(api_client, charlie_client, alice, charlie):
    mine = api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="same")
    theirs = charlie_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert mine.status_code == theirs.status_code == 200
    assert mine.json() != theirs.json()
    assert "Idempotent-Replayed" not in theirs
    assert alice.log_messages.count() == charlie.log_messages.count() == 1
    assert charlie.log_messages.get().pk == int(theirs.json()["MessageId"])
    assert IdempotencyRecord.objects.count() == 2


def test_it_refuses_the_same_key_with_another_body(api_client, alice):
    api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    r = api_client.post(LOGSTER, {**MESSAGE, "Severity": 6}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert r.status_code == 400
    assert r.json() == {
        "Message": "The request is invalid.",
        "ModelState": {"Idempotency-Key": ["This key was already used for a different request; use a new key."]},
    }
    assert list(alice.log_messages.values_list("severity", flat=True)) == [5]


def test_it_refuses_the_same_key_on_another_endpoint(api_client, alice):
    api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    r = api_client.post(BYTELOG, EVENT, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert r.status_code == 400
    assert r.json() == {
        "error": "validation error",
        "details": {"Idempotency-Key": ["This key was already used for a different request; use a new key."]},
    }
    assert not Event.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_it_refuses_an_unusable_key(api_client, key):
    r = api_client.post(BYTELOG, EVENT, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert r.status_code == 400
    assert list(r.json()["details"]) == ["Idempotency-Key"]
    assert not Event.objects.exists()


def test_it_does_not_remember_a_failed_request(api_client, alice):
    r = api_client.post(LOGSTER, {"Severity": 5}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert r.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    r = api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert r.status_code == 200
    assert alice.log_messages.count() == 1


def test_it_forgets_a_key_after_24_hours(api_client, alice):
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        first = api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

        traveller.shift(timedelta(hours=24))
        retry = api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert retry.json() == first.json()
        assert alice.log_messages.count() == 1

        traveller.shift(timedelta(seconds=1))
        fresh = api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert fresh.status_code == 200
        assert "Idempotent-Replayed" not in fresh
        assert fresh.json() != first.json()
        assert alice.log_messages.count() == 2
        assert IdempotencyRecord.objects.get().created == start + timedelta(hours=24, seconds=1)


def test_it_accepts_another_body_once_the_key_expired(api_client, alice):
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        api_client.post(LOGSTER, MESSAGE, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        traveller.shift(timedelta(days=2))
        r = api_client.post(LOGSTER, {**MESSAGE, "Message": "new"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert r.status_code == 200
    assert sorted(alice.log_messages.values_list("message", flat=True)) == ["Disk full", "new"]


def race(url: str, body: str, headers: dict[str, Any], threads: int = 8) -> list[tuple[int, bytes]]:
    """POST the same request from several threads at once, through the whole stack."""
    barrier = threading.Barrier(threads)
    answers: list[tuple[int, bytes]] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait(timeout=10)
            r = Client().post(url, body, content_type="application/json", **headers)
            answers.append((r.status_code, r.content))
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=post) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not errors
    return answers


@pytest.mark.django_db(transaction=True)
def test_it_stores_a_logster_message_once_when_retries_race(alice, alice_key):
    answers = race(
        LOGSTER,
        '{"Message": "raced", "Severity": 4}',
        {"HTTP_APIKEY": alice_key, "HTTP_IDEMPOTENCY_KEY": "race-1"},
    )
    assert len(answers) == 8
    assert len(set(answers)) == 1
    status, content = answers[0]
    message = LogMessage.objects.get()
    assert (status, content) == (200, f'{{"MessageId":"{message.pk}"}}'.encode())
    assert message.message == "raced"
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_stores_a_bytelog_batch_once_when_retries_race(alice, alice_key):
    answers = race(
        BYTELOG,
        '[{"name": "a", "trace_id": "r"}, {"name": "b", "trace_id": "r"}]',
        {"HTTP_AUTHORIZATION": f"Bearer {alice_key}", "HTTP_IDEMPOTENCY_KEY": "race-2"},
    )
    assert answers == [(201, b"")] * 8
    assert sorted(Event.objects.values_list("name", flat=True)) == ["a", "b"]
    assert IdempotencyRecord.objects.count() == 1
