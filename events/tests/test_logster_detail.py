"""GET /api/Log/<MessageId>: one of one's own log messages."""

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from conftest import client_with_key, make_key
from events.models import LogMessage

NOT_FOUND = {"Message": "No HTTP resource was found that matches the request URI."}


def add(owner, **fields):
    values = {"message": "Uh-oh", "severity": 4, "created": datetime(2026, 1, 10, 12, 0, 0, 123456, tzinfo=UTC)}
    return LogMessage.objects.create(owner=owner, **{**values, **fields})


def test_it_reads_ones_own_message(api_client, alice):
    message = add(alice, exception="E", stack_trace="at X\r\n", category="c", application="a", user="u")
    r = api_client.get(f"/api/Log/{message.pk}")
    assert r.status_code == 200
    assert r.json() == {
        "MessageId": str(message.pk),
        "Message": "Uh-oh",
        "Exception": "E",
        "StackTrace": "at X\r\n",
        "Severity": 4,
        "Category": "c",
        "Application": "a",
        "User": "u",
        "Created": "2026-01-10T12:00:00.123Z",
    }
    assert LogMessage.objects.get(pk=message.pk).owner == alice


def test_it_reads_what_was_posted(api_client):
    posted = api_client.post("/api/Log", {"Message": "round trip", "Severity": 2, "User": "ann"}, format="json")
    r = api_client.get(f"/api/Log/{posted.json()['MessageId']}")
    assert r.status_code == 200
    assert (r.json()["Message"], r.json()["Severity"], r.json()["User"]) == ("round trip", 2, "ann")
    assert LogMessage.objects.get(pk=posted.json()["MessageId"]).message == "round trip"


def test_it_hides_another_users_message(charlie_client, alice):
    message = add(alice)
    r = charlie_client.get(f"/api/Log/{message.pk}")
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert LogMessage.objects.filter(pk=message.pk).exists()


@pytest.mark.parametrize("path", ["/api/Log/999999", "/api/Log/99999999999999999999999", "/api/Log/abc"])
def test_it_answers_404_for_an_unknown_id(api_client, alice, path):
    add(alice)
    r = api_client.get(path)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert LogMessage.objects.count() == 1


def test_it_rejects_a_missing_key(anon_client, alice):
    message = add(alice)
    r = anon_client.get(f"/api/Log/{message.pk}")
    assert r.status_code == 401
    assert r.json() == {"Message": "Authorization has been denied for this request."}
    assert LogMessage.objects.count() == 1


def test_it_rejects_a_revoked_key(alice):
    message = add(alice)
    client = client_with_key(make_key(alice, revoked=datetime(2026, 1, 1, tzinfo=UTC)))
    r = client.get(f"/api/Log/{message.pk}")
    assert r.status_code == 401
    assert r.json() == {"Message": "Authorization has been denied for this request."}
    assert LogMessage.objects.count() == 1


def test_it_rejects_a_key_without_the_logs_read_scope(alice):
    message = add(alice)
    r = client_with_key(make_key(alice, "logs:write")).get(f"/api/Log/{message.pk}")
    assert r.status_code == 403
    assert "logs:read" in r.json()["Message"]
    assert "MessageId" not in r.json()
    assert LogMessage.objects.count() == 1


def test_it_accepts_the_apikey_header(alice, alice_key):
    message = add(alice)
    client = APIClient()
    client.credentials(HTTP_APIKEY=alice_key)
    r = client.get(f"/api/Log/{message.pk}")
    assert r.status_code == 200
    assert r.json()["MessageId"] == str(message.pk)
    assert LogMessage.objects.count() == 1


def test_it_does_not_allow_writes(api_client, alice):
    message = add(alice)
    r = api_client.delete(f"/api/Log/{message.pk}")
    assert r.status_code == 405
    assert set(r.json()) == {"Message"}
    assert LogMessage.objects.filter(pk=message.pk).exists()
