"""The cast every test shares: alice owns things, charlie is the outsider (HC's convention)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from logsvc.models import SCOPES, ApiKey, User

ALL_SCOPES = [name for name, _ in SCOPES]


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
