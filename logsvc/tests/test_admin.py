"""The Django admin: every registered model's pages open, and a new API key is shown once and stored hashed."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib import admin
from django.db import connection
from rest_framework.test import APIClient

from events.models import Event, LogMessage
from logsvc.models import ApiKey, IdempotencyRecord, RateLimitCounter, User

RAW_KEY = re.compile(r"lsk_[A-Za-z0-9_-]{20,}")
REGISTERED = {
    f"{m._meta.app_label}/{m._meta.model_name}": model_admin for m, model_admin in admin.site._registry.items()
}
MODELS = sorted(REGISTERED)


@pytest.fixture
def root(db) -> User:
    return User.objects.create_superuser("root", email="root@example.org", password="root-password")


@pytest.fixture
def admin_client(client, root):
    client.force_login(root)
    return client


def test_it_registers_the_models_of_logsvc_and_events():
    for model in (User, ApiKey, IdempotencyRecord, RateLimitCounter, LogMessage, Event):
        assert model in admin.site._registry


@pytest.mark.parametrize("model", MODELS)
def test_it_opens_the_changelist_and_add_page(admin_client, root, rf, model):
    assert admin_client.get(f"/admin/{model}/").status_code == 200
    request = rf.get("/admin/")
    request.user = root
    # Task results are written by the worker only; their admin offers no add page.
    expected = 200 if REGISTERED[model].has_add_permission(request) else 403
    assert admin_client.get(f"/admin/{model}/add/").status_code == expected


@pytest.mark.parametrize("model", MODELS)
def test_it_opens_the_changelist_with_a_search(admin_client, model):
    assert admin_client.get(f"/admin/{model}/", {"q": "x"}).status_code == 200


def test_it_opens_the_change_pages_of_objects(admin_client, alice):
    key, _ = ApiKey.create(user=alice, name="ci", scopes=["logs:write"])
    event = Event.objects.create(owner=alice, name="click")
    message = LogMessage.objects.create(owner=alice, message="hi", severity=1)
    for path in (
        f"/admin/logsvc/apikey/{key.pk}/change/",
        f"/admin/logsvc/user/{alice.pk}/change/",
        f"/admin/events/event/{event.pk}/change/",
        f"/admin/events/logmessage/{message.pk}/change/",
    ):
        assert admin_client.get(path).status_code == 200, path


def test_it_keeps_the_admin_from_non_staff(client, alice):
    client.force_login(alice)
    r = client.get("/admin/logsvc/apikey/")
    assert r.status_code == 302
    assert r["Location"].startswith("/admin/login/")


def test_it_shows_a_new_key_once_and_stores_only_its_hash(admin_client, alice):
    r = admin_client.post(
        "/admin/logsvc/apikey/add/",
        {"user": alice.pk, "name": "from the admin", "scopes": "logs:write,logs:read"},
        follow=True,
    )
    assert r.status_code == 200
    shown = [str(m) for m in r.context["messages"] if RAW_KEY.search(str(m))]
    assert len(shown) == 1
    raw = RAW_KEY.search(shown[0]).group()
    assert raw in r.content.decode()

    key = ApiKey.objects.get()
    assert (key.user, key.name, key.scopes) == (alice, "from the admin", ["logs:write", "logs:read"])
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert key.prefix == raw[4:12]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t::text FROM {ApiKey._meta.db_table} t")
        assert raw not in cursor.fetchone()[0]

    again = admin_client.get(f"/admin/logsvc/apikey/{key.pk}/change/")
    assert raw not in again.content.decode()
    assert raw not in admin_client.get("/admin/logsvc/apikey/").content.decode()

    r = APIClient().post("/api/Log", {"Message": "via admin key", "Severity": 1}, format="json", HTTP_APIKEY=raw)
    assert r.status_code == 200
    assert alice.log_messages.get().message == "via admin key"


def test_it_keeps_the_secret_when_a_key_is_edited(admin_client, alice):
    key, raw = ApiKey.create(user=alice, name="old", scopes=["logs:write"])
    r = admin_client.post(
        f"/admin/logsvc/apikey/{key.pk}/change/",
        {"user": alice.pk, "name": "renamed", "scopes": "logs:write"},
        follow=True,
    )
    assert r.status_code == 200
    assert not RAW_KEY.search(r.content.decode())
    key.refresh_from_db()
    assert key.name == "renamed"
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()


def test_it_revokes_keys_from_the_changelist(admin_client, alice):
    key, raw = ApiKey.create(user=alice, name="leaked", scopes=["logs:read"])
    r = admin_client.post("/admin/logsvc/apikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True)
    assert r.status_code == 200
    assert "Revoked 1 key(s)." in [str(m) for m in r.context["messages"]]
    key.refresh_from_db()
    assert key.revoked is not None
    assert APIClient().get("/api/Log", HTTP_APIKEY=raw).status_code == 401
