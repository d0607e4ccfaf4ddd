"""POST /api/Log as the ASGI server serves it (events.asgi): one valid JSON message is stored with group commit and
answered with its MessageId; every other request is Django's. Each answer is compared with the Django view's."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import make_key
from events import asgi as events_asgi
from events.models import LogMessage
from events.tests.test_bytelog_asgi import _cleanup, assert_same_headers, call, run  # noqa: F401 (the fixture is used by name)

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/Log"
MESSAGE = {"Message": "Uh-oh, something happened.", "Severity": 4, "Category": "Widget Designer", "User": "john"}
FIELDS = ("owner__username", "message", "exception", "stack_trace", "severity", "category", "application", "user")


def stored() -> list[tuple]:
    return list(LogMessage.objects.order_by("id").values_list(*FIELDS))


def django_answer(body: bytes, headers: dict[str, str]):
    meta: dict[str, Any] = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"
    }
    return APIClient().post(URL, body, content_type=headers.get("Content-Type", "application/json"), **meta)


def without_ids(answer):
    if isinstance(answer, list):
        return [without_ids(item) for item in answer]
    return {name: "id" if name == "MessageId" else value for name, value in answer.items()}


def assert_same(asgi: tuple, django, ids_differ: bool = False) -> None:
    status, head, body = asgi
    assert status == django.status_code
    if ids_differ:  # a new row each time: its own MessageId
        assert without_ids(orjson.loads(body)) == without_ids(django.json())
    else:
        assert body == django.content
    assert_same_headers(head, django)


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        (MESSAGE, {}),  # the hot path
        ({"Severity": 9}, {}),  # Django's 400 with its ModelState
        ([MESSAGE, MESSAGE], {}),  # a batch: Django's
        (MESSAGE, {"ApiKey": "lsk_not_a_real_key_at_all"}),  # Django's 401
        (b"<LogMessage><Message>Disk full</Message><Severity>3</Severity></LogMessage>", {"Content-Type": "text/xml"}),
    ],
    ids=["one-message", "invalid", "batch", "bad-key", "xml"],
)
def test_it_answers_as_the_django_view_does(settings, alice, body, extra):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "logster": ""}
    headers = {"Content-Type": "application/json", "ApiKey": make_key(alice), **extra}
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    django = django_answer(raw, headers)
    rows = stored()
    LogMessage.objects.all().delete()
    assert_same(run(call(raw, headers, URL))[0], django, ids_differ=django.status_code == 200)
    assert stored() == rows


def test_each_message_gets_its_own_id_in_a_shared_commit(alice):
    headers = {"Content-Type": "application/json", "ApiKey": make_key(alice)}
    before = events_asgi.ingest_batcher.batches
    answers = run(*(call(orjson.dumps({**MESSAGE, "Message": f"m{n}"}), headers, URL) for n in range(20)))
    assert [status for status, _, _ in answers] == [200] * 20
    ids = {int(orjson.loads(body)["MessageId"]): n for n, (_, _, body) in enumerate(answers)}
    assert dict(LogMessage.objects.values_list("id", "message")) == {i: f"m{n}" for i, n in ids.items()}
    assert events_asgi.ingest_batcher.batches - before < 20


def test_the_rate_limit_is_answered_as_django_does(settings, alice, time_machine):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "logster": "1/3600"}
    # one moment for both answers: their "try again in N seconds" differed when a second passed between them
    time_machine.move_to(timezone.now(), tick=False)
    headers = {"Content-Type": "application/json", "ApiKey": make_key(alice)}
    answers = run(*(call(orjson.dumps(MESSAGE), headers, URL) for _ in range(2)))
    assert sorted(status for status, _, _ in answers) == [200, 429]
    [too_many] = [answer for answer in answers if answer[0] == 429]
    assert_same(too_many, django_answer(orjson.dumps(MESSAGE), headers))
    assert len(stored()) == 1
