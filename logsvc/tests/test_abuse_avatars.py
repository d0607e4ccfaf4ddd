"""Avatars under gunicorn with DEBUG off, as README's production set-up runs the service (the rest of the
avatar tests are in social/tests/test_avatars.py)."""

from __future__ import annotations

import pytest
import requests
from django.core.files.base import ContentFile
from django.db import transaction

from analytics.tests.test_ratelimit_processes import server_env, start_servers
from logsvc.models import User
from social.tests.test_avatars import picture, stored


@pytest.mark.django_db(transaction=True)
def test_avatar_links_work_in_production(request, settings):
    """gunicorn, DEBUG off, as README's production set-up runs it: the API's avatar link is served."""
    alice = User.objects.create_user("alice", password="alice-password")
    with transaction.atomic():
        alice.avatar.save("me.jpg", ContentFile(picture("JPEG")))
    [base] = start_servers(request, 1, server_env(MEDIA_ROOT=str(settings.MEDIA_ROOT)))
    url = requests.get(f"{base}/api/1/users/alice/", timeout=10).json()["avatar"]
    assert url.startswith(f"{base}/media/avatars/me-")
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.content == stored(alice)
    assert requests.get(f"{base}/media/avatars/missing.png", timeout=10).status_code == 404
