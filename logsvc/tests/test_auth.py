"""API keys: the three ways to send one, 401 / 403 / 404, hashed storage, last_used, createapikey."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import make_key
from events.models import LogMessage
from logsvc.models import ApiKey

LOGSTER = "/api/Log"
BYTELOG = "/api/v1/events"
DENIED = {"Message": "Authorization has been denied for this request."}


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def post_message(client: APIClient, **headers: Any):
    return client.post(LOGSTER, {"Message": "Hello", "Severity": 2}, format="json", **headers)


# --- the three ways to send a key ---------------------------------------------------------------


def test_it_accepts_the_key_in_an_apikey_header(alice, alice_key):
    r = post_message(APIClient(), HTTP_APIKEY=alice_key)
    assert r.status_code == 200
    assert LogMessage.objects.get().owner == alice
    assert r.json() == {"MessageId": str(LogMessage.objects.get().pk)}


def test_it_accepts_the_key_as_a_bearer_token(alice, alice_key):
    r = post_message(APIClient(), HTTP_AUTHORIZATION=f"Bearer {alice_key}")
    assert r.status_code == 200
    assert LogMessage.objects.get().owner == alice


def test_it_accepts_the_key_as_basic_auth_password_with_an_empty_username(alice, alice_key):
    r = APIClient().post(BYTELOG, {"name": "click"}, format="json", HTTP_AUTHORIZATION=basic("", alice_key))
    assert r.status_code == 201
    assert alice.events.get().name == "click"


def test_it_rejects_basic_auth_with_a_username(alice, alice_key):
    r = APIClient().post(BYTELOG, {"name": "click"}, format="json", HTTP_AUTHORIZATION=basic("alice", alice_key))
    assert r.status_code == 401
    assert r.json() == {"error": "Send the API key as the password, with an empty username."}
    assert not alice.events.exists()


def test_it_rejects_a_malformed_basic_header(alice):
    r = APIClient().get(BYTELOG, HTTP_AUTHORIZATION="Basic not-base64!")
    assert r.status_code == 401
    assert r.json() == {"error": "Invalid Basic authorization header."}


# --- 401 ------------------------------------------------------------------------------------------


def test_it_answers_a_missing_key_with_logster_401(alice):
    r = post_message(APIClient())
    assert r.status_code == 401
    assert r.json() == DENIED
    assert r["WWW-Authenticate"] == 'Bearer realm="api"'
    assert not LogMessage.objects.exists()


def test_it_answers_a_missing_key_with_bytelog_401(alice):
    r = APIClient().get(BYTELOG)
    assert r.status_code == 401
    assert r.json() == {"error": "Authentication credentials were not provided."}


@pytest.mark.parametrize(
    "wrong",
    ["lsk_0000000000000000000000000000", "nonsense", "lsk_"],
)
def test_it_answers_a_wrong_key_with_401(alice, alice_key, wrong):
    r = post_message(APIClient(), HTTP_APIKEY=wrong)
    assert r.status_code == 401
    assert r.json() == DENIED
    assert not LogMessage.objects.exists()


def test_it_rejects_a_key_with_one_character_changed(alice, alice_key):
    tampered = alice_key[:-1] + ("A" if alice_key[-1] != "A" else "B")
    r = APIClient().get(BYTELOG, HTTP_AUTHORIZATION=f"Bearer {tampered}")
    assert r.status_code == 401
    assert r.json() == {"error": "Invalid, revoked or expired API key."}


def test_it_answers_a_revoked_key_with_401(alice):
    raw = make_key(alice, revoked=timezone.now())
    r = post_message(APIClient(), HTTP_APIKEY=raw)
    assert r.status_code == 401
    assert r.json() == DENIED
    assert not LogMessage.objects.exists()


def test_it_answers_a_key_revoked_after_use_with_401(alice, alice_key):
    client = APIClient()
    assert client.get(BYTELOG, HTTP_AUTHORIZATION=f"Bearer {alice_key}").status_code == 200
    ApiKey.objects.update(revoked=timezone.now())
    r = client.get(BYTELOG, HTTP_AUTHORIZATION=f"Bearer {alice_key}")
    assert r.status_code == 401
    assert r.json() == {"error": "Invalid, revoked or expired API key."}


def test_it_answers_an_expired_key_with_401(alice):
    raw = make_key(alice, expires=timezone.now() - timedelta(seconds=1))
    r = APIClient().post(BYTELOG, {"name": "click"}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 401
    assert r.json() == {"error": "Invalid, revoked or expired API key."}
    assert not alice.events.exists()


def test_it_accepts_a_key_until_it_expires(alice):
    expires = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    raw = make_key(alice, expires=expires)
    with time_machine.travel(expires - timedelta(seconds=1), tick=False):
        assert APIClient().get(BYTELOG, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    with time_machine.travel(expires, tick=False):
        assert APIClient().get(BYTELOG, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_it_answers_the_key_of_a_deactivated_user_with_401(alice, alice_key):
    alice.is_active = False
    alice.save()
    r = post_message(APIClient(), HTTP_APIKEY=alice_key)
    assert r.status_code == 401
    assert r.json() == DENIED
    assert not LogMessage.objects.exists()


# --- 403 and 404 ----------------------------------------------------------------------------------


def test_it_answers_a_key_without_the_scope_with_403(alice):
    raw = make_key(alice, "events:read", "events:write", "logs:read")
    r = post_message(APIClient(), HTTP_APIKEY=raw)
    assert r.status_code == 403
    assert r.json() == {"Message": "This API key lacks the 'logs:write' scope this request needs."}
    assert not LogMessage.objects.exists()


def test_it_answers_a_bytelog_key_without_the_scope_with_403(alice):
    raw = make_key(alice, "events:read")
    r = APIClient().post(BYTELOG, {"name": "click"}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 403
    assert r.json() == {"error": "This API key lacks the 'events:write' scope this request needs."}
    assert not alice.events.exists()


def test_it_lets_a_key_do_what_its_scopes_allow(alice):
    raw = make_key(alice, "events:read")
    r = APIClient().get(BYTELOG, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 200
    assert r.json() == {"count": 0, "events": []}


def test_it_answers_another_users_message_with_404(api_client, charlie):
    message = LogMessage.objects.create(owner=charlie, message="charlie's secret", severity=3)
    r = api_client.get(f"{LOGSTER}/{message.pk}")
    assert r.status_code == 404
    assert r.json() == {"Message": "No HTTP resource was found that matches the request URI."}
    assert b"secret" not in r.content


def test_it_shows_the_owner_their_message(api_client, alice):
    message = LogMessage.objects.create(owner=alice, message="mine", severity=3)
    r = api_client.get(f"{LOGSTER}/{message.pk}")
    assert r.status_code == 200
    assert r.json()["Message"] == "mine"


# --- storage --------------------------------------------------------------------------------------


def test_it_stores_only_a_hash_of_the_key(alice):
    key, raw = ApiKey.create(user=alice, name="ci", scopes=["logs:write"])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t::text FROM {ApiKey._meta.db_table} t WHERE id = %s", [key.pk])
        row = cursor.fetchone()[0]
    assert raw not in row
    assert raw[4:] not in row
    stored = ApiKey.objects.get()
    assert stored.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert stored.prefix == raw[4:12]
    assert raw.startswith("lsk_") and len(raw) >= 40


def test_it_gives_every_key_its_own_secret(alice):
    raws = {make_key(alice) for _ in range(5)}
    assert len(raws) == 5
    assert ApiKey.objects.values("prefix").distinct().count() == 5


def test_it_records_last_used_at_most_once_a_minute(alice, alice_key):
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice_key}")
    key = ApiKey.objects.get()
    assert key.last_used is None
    with time_machine.travel(start, tick=False) as traveller:
        assert client.get(BYTELOG).status_code == 200
        key.refresh_from_db()
        assert key.last_used == start

        traveller.shift(timedelta(seconds=59))
        assert client.get(BYTELOG).status_code == 200
        key.refresh_from_db()
        assert key.last_used == start

        traveller.shift(timedelta(seconds=1))
        assert client.get(BYTELOG).status_code == 200
        key.refresh_from_db()
        assert key.last_used == start + timedelta(seconds=60)


def test_it_does_not_touch_last_used_on_a_rejected_key(alice):
    raw = make_key(alice, revoked=timezone.now())
    APIClient().get(BYTELOG, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ApiKey.objects.get().last_used is None


# --- createapikey ---------------------------------------------------------------------------------


def test_it_creates_a_key_from_the_command_line(alice):
    out = StringIO()
    call_command("createapikey", "alice", "--scope", "logs:write", "--scope", "logs:read", "--name", "ci", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert raw.startswith("lsk_") and " " not in raw
    key = ApiKey.objects.get()
    assert key.user == alice
    assert key.name == "ci"
    assert key.scopes == ["logs:read", "logs:write"]
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in (key.prefix, key.hashed_key, key.name)

    r = post_message(APIClient(), HTTP_APIKEY=raw)
    assert r.status_code == 200
    assert LogMessage.objects.get().owner == alice
    assert APIClient().get(BYTELOG, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 403


def test_it_refuses_a_key_for_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("createapikey", "nobody", "--scope", "logs:write", stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_it_refuses_an_unknown_scope(alice):
    with pytest.raises(CommandError, match="invalid choice: 'logs:delete'"):
        call_command("createapikey", "alice", "--scope", "logs:delete", stdout=StringIO())
    assert not ApiKey.objects.exists()


@pytest.fixture
def key_cache(settings):
    settings.API_KEY_CACHE_SECONDS = 2
    yield
    from logsvc import auth

    auth._recent_keys.clear()


def test_it_stops_accepting_a_revoked_key_within_the_cache_time(key_cache, alice, alice_key):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {alice_key}"}
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert APIClient().get(BYTELOG, **headers).status_code == 200
        ApiKey.objects.update(revoked=timezone.now())
        # still remembered by this process, and the lookup is skipped
        assert APIClient().get(BYTELOG, **headers).status_code == 200
    with time_machine.travel(start + timedelta(seconds=2), tick=False):
        r = APIClient().get(BYTELOG, **headers)
    assert r.status_code == 401
    assert r.json() == {"error": "Invalid, revoked or expired API key."}


def test_it_checks_expiry_on_every_request_even_when_the_key_is_remembered(key_cache, alice):
    expires = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    raw = make_key(alice, expires=expires)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    with time_machine.travel(expires - timedelta(seconds=1), tick=False):
        assert APIClient().get(BYTELOG, **headers).status_code == 200
    with time_machine.travel(expires, tick=False):
        assert APIClient().get(BYTELOG, **headers).status_code == 401


def test_it_reads_a_remembered_key_without_a_query(key_cache, alice, alice_key, django_assert_num_queries):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice_key}")
    assert client.get(BYTELOG).status_code == 200  # first use: key lookup, last_used, rate-limit window
    with django_assert_num_queries(3):  # the rate-limit counter, the page and its count
        assert client.get(BYTELOG).status_code == 200


def test_it_never_remembers_an_unknown_key(key_cache, alice, alice_key):
    from logsvc import auth

    wrong = alice_key[:-4] + "AAAA"
    assert APIClient().get(BYTELOG, HTTP_AUTHORIZATION=f"Bearer {wrong}").status_code == 401
    assert auth._recent_keys == {}
