"""Every timeline shape, byte for byte, against answers stored from fixed seed data: a faster way of building
pages (issue 17) must give exactly these bytes. After a deliberate change of shape, write them anew with
UPDATE_ANSWERS=1 and review the diff."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Count
from rest_framework.test import APIClient

from logsvc.models import User
from social.management.commands.seed_social import SEED_EMAIL_DOMAIN
from social.models import Log, Tag

ANSWERS = Path(__file__).parent / "answers"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def seeded(db):
    with time_machine.travel(NOW, tick=False):
        call_command("seed_social", users=40, logs=300, seed=3, no_progress=True, verbosity=0)
        yield


def pages() -> dict[str, str]:
    """name -> URL of every page shape, short and long pages, a deep one, for fixed subjects of the seed."""
    reader = User.objects.filter(email__endswith=SEED_EMAIL_DOMAIN).order_by("id").first()
    tag = Tag.objects.annotate(n=Count("logs")).order_by("-n", "name").first()
    busiest = Log.objects.annotate(n=Count("comments")).order_by("-n", "id").first()
    liked = Log.objects.annotate(n=Count("likes")).order_by("-n", "id").first()
    assert reader and tag and busiest and liked
    urls = {
        "public": "/api/1/timelines/public/",
        "logs": "/api/1/logs/",
        "home": "/api/1/timelines/home/",
        "activity": "/api/1/timelines/activity/",
        "tag": f"/api/1/logs/tag/{tag.name}/",
        "user": f"/api/1/logs/user/{reader.username}/",
        "log": f"/api/1/logs/{busiest.pk}/",
        "comments": f"/api/1/logs/{busiest.pk}/comments/",
        "likes": f"/api/1/logs/{liked.pk}/likes/",
        "profile": f"/api/1/users/{reader.username}/",
        "tags": "/api/1/tags/",
        "user-tags": f"/api/1/tags/user/{reader.username}/",
    }
    return urls


def variants(name: str, url: str, first_page: dict) -> dict[str, str]:
    """A list's page of 100 and a deep page (its last 20 items), beside its first page."""
    if "count" not in first_page:
        return {}
    deep = max(first_page["count"] - 20, 0)
    return {f"{name}-100": f"{url}?limit=100", f"{name}-deep": f"{url}?limit=20&offset={deep}"}


def test_every_page_is_the_stored_answer(seeded):
    reader = User.objects.filter(email__endswith=SEED_EMAIL_DOMAIN).order_by("id").first()
    client = APIClient()
    client.force_login(reader)
    ANSWERS.mkdir(exist_ok=True)
    differ = []
    with time_machine.travel(NOW, tick=False):
        todo = list(pages().items())
        while todo:
            name, url = todo.pop(0)
            r = client.get(url, HTTP_ACCEPT="application/json")
            assert r.status_code == 200, (url, r.content[:200])
            if "?" not in url:
                todo += variants(name, url, r.json()).items()
            stored = ANSWERS / f"{name}.json"
            if os.environ.get("UPDATE_ANSWERS"):
                stored.write_bytes(r.content)
            elif not stored.exists() or stored.read_bytes() != r.content:
                differ.append(f"{name} ({url})")
    assert differ == [], "these pages are not their stored answers (UPDATE_ANSWERS=1 writes them anew)"
