"""The littlelogs cast: alice and charlie from the root conftest, plus bob, signed in by session or OAuth."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from rest_framework.test import APIClient

from logsvc.models import User
from social import services
from social.models import Log


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", email="bob@example.org", password="bob-password")


def session_client(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def access_token(user: User, scope: str = "read write", app_name: str = "Logbook") -> str:
    """A new OAuth2 access token of user's with these scopes, from a new app of theirs; the raw token."""
    app = Application.objects.create(
        name=app_name,
        user=user,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://example.org/callback",
    )
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        user=user, application=app, token=raw, expires=timezone.now() + timedelta(hours=1), scope=scope
    )
    return raw


def token_client(user: User, scope: str = "read write", app_name: str = "Logbook") -> APIClient:
    """A client holding an OAuth2 access token of user's with these scopes."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user, scope, app_name)}")
    return client


@pytest.fixture
def alice_session(alice) -> APIClient:
    return session_client(alice)


@pytest.fixture
def charlie_session(charlie) -> APIClient:
    return session_client(charlie)


@pytest.fixture
def alice_token(alice) -> APIClient:
    return token_client(alice)


def post(user: User, markdown: str = "Worked on things") -> Log:
    return services.create_log(user=user, markdown=markdown)
