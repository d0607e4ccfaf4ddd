"""Who may call littlelogs: OAuth2 tokens by scope, session users, and anonymous readers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from social.models import Log
from social.tests.conftest import post, token_client

PUBLIC = [
    "/api/1/logs/",
    "/api/1/timelines/public/",
    "/api/1/users/alice/",
    "/api/1/users/followed-by/alice/",
    "/api/1/users/following/alice/",
    "/api/1/logs/user/alice/",
    "/api/1/tags/",
    "/api/1/tags/user/alice/",
    "/api/1/tags/trending/",
]
PRIVATE = ["/api/1/timelines/home/", "/api/1/timelines/activity/", "/api/1/users/$self/"]


@pytest.mark.parametrize("url", PUBLIC)
def test_anyone_reads_public_lists(anon_client, alice, url):
    assert anon_client.get(url).status_code == 200


@pytest.mark.parametrize("url", PRIVATE)
def test_private_reads_need_a_user(anon_client, db, url):
    r = anon_client.get(url)
    assert r.status_code == 401
    assert r["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("url", PUBLIC + PRIVATE)
def test_a_read_token_reads_everything(alice, url):
    assert token_client(alice, "read").get(url).status_code == 200


@pytest.mark.parametrize("url", PUBLIC + PRIVATE)
def test_a_write_only_token_cannot_read(alice, url):
    r = token_client(alice, "write").get(url)
    assert r.status_code == 403
    assert r.json() == {"detail": "This access token lacks the 'read' scope."}


def test_a_session_user_is_not_limited_by_scopes(alice_session, alice):
    assert alice_session.post("/api/1/logs/create/", {"content": "x"}, format="json").status_code == 201


def test_an_expired_token_is_a_401(alice):
    client = token_client(alice)
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    r = client.get("/api/1/timelines/home/")
    assert r.status_code == 401
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_token_is_a_401_on_private_paths(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert client.get("/api/1/timelines/home/").status_code == 401


def test_an_api_key_does_not_work_here(api_client, alice):
    # API keys belong to the other families; littlelogs takes OAuth2 tokens and sessions only
    assert api_client.get("/api/1/users/$self/").status_code == 401
    assert api_client.post("/api/1/logs/create/", {"content": "x"}, format="json").status_code == 401
    assert not Log.objects.exists()


def test_a_token_writes_as_its_user(charlie):
    r = token_client(charlie).post("/api/1/logs/create/", {"content": "via app"}, format="json")
    assert r.status_code == 201
    assert Log.objects.get().user == charlie


def test_a_token_cannot_delete_someone_elses_log(alice, charlie):
    log = post(alice)
    assert token_client(charlie).delete(f"/api/1/logs/{log.pk}/delete/").status_code == 403


def test_a_token_is_read_with_its_app_and_user_in_one_query(alice, django_assert_num_queries):
    """The token, its application (whose name a post records as its source) and its user in one query: the
    request needs no other to know who is asking and with which app."""
    client = token_client(alice, app_name="Logbook")
    with django_assert_num_queries(1):
        r = client.get("/api/1/users/$self/")
    assert r.status_code == 200 and r.json()["username"] == "alice"
    token = AccessToken.objects.get(user=alice)
    r = client.post("/api/1/logs/create/", {"content": "from the app"}, format="json")
    assert r.status_code == 201 and r.json()["source"] == "Logbook"
    assert Log.objects.get(pk=r.json()["id"]).source == "Logbook"
    token.application.delete()  # its tokens go with it
    assert client.get("/api/1/users/$self/").status_code == 401
