"""The Django admin pages of every social model (the back office)."""

from __future__ import annotations

import pytest

from logsvc.models import User
from social import services
from social.models import Counter, Log
from social.tests.conftest import post

MODELS = ["tag", "log", "logtag", "comment", "like", "follow", "activity", "counter"]


@pytest.fixture
def admin_client(client, alice, charlie):
    admin = User.objects.create_superuser("root", "root@example.org", "root-password")
    log = post(alice, "#admin @charlie")
    services.add_comment(log=log, user=charlie, markdown="hi")
    services.like_log(log=log, user=charlie)
    services.follow(follower=charlie, followee=alice)
    client.force_login(admin)
    return client


@pytest.mark.parametrize("model", MODELS)
def test_it_lists_and_searches_each_model(admin_client, model):
    assert admin_client.get(f"/admin/social/{model}/").status_code == 200
    assert admin_client.get(f"/admin/social/{model}/?q=alice").status_code == 200


def test_it_deletes_a_log_through_the_service(admin_client, alice):
    log = Log.objects.get()
    r = admin_client.post(f"/admin/social/log/{log.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Log.objects.exists()
    assert Counter.objects.value("logs") == 0
    assert Counter.objects.value("activity", alice.pk) == 1  # the comment and like went; the follow stays


def test_it_rebuilds_counters_on_demand(admin_client):
    Counter.objects.update(value=42)
    ids = list(Counter.objects.values_list("pk", flat=True))
    r = admin_client.post("/admin/social/counter/", {"action": "recount", "_selected_action": ids})
    assert r.status_code == 302
    assert Counter.objects.value("logs") == 1
