"""GET /api/1/tags/, /api/1/tags/user/<username>/ and /api/1/tags/trending/."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.utils import timezone

from logsvc.models import User
from social.tests.conftest import post


def test_it_lists_every_tag_alphabetically(anon_client, alice, charlie):
    post(alice, "#writing #API #ansible")
    post(charlie, "#blogging #api")
    r = anon_client.get("/api/1/tags/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 4
    assert [tag["name"] for tag in body["results"]] == ["ansible", "API", "blogging", "writing"]
    assert set(body["results"][0]) == {"name", "created"}


def test_it_pages_tags(anon_client, alice):
    post(alice, "#a #b #c")
    body = anon_client.get("/api/1/tags/?limit=2").json()
    assert [tag["name"] for tag in body["results"]] == ["a", "b"]
    assert body["next"] == "http://testserver/api/1/tags/?limit=2&offset=2"


def test_it_lists_a_users_tags(anon_client, alice, charlie):
    post(alice, "#writing #Exist")
    post(alice, "#writing again")
    post(charlie, "#other")
    r = anon_client.get("/api/1/tags/user/alice/")
    assert r.status_code == 200
    assert r.json()["count"] == 2
    assert [tag["name"] for tag in r.json()["results"]] == ["Exist", "writing"]


def test_it_404s_for_an_unknown_users_tags(anon_client, db):
    assert anon_client.get("/api/1/tags/user/nobody/").status_code == 404


def test_it_ranks_trending_tags_by_how_many_people_used_them(anon_client, alice, bob, charlie):
    with time_machine.travel(timezone.now() - timedelta(days=8)):
        for _ in range(5):
            post(alice, "#old")  # too long ago
    post(alice, "#solo #solo2")
    post(alice, "#solo")  # one person, many times
    for user in (alice, bob, charlie):
        post(user, "#popular")
    post(bob, "#second")
    post(charlie, "#second")
    r = anon_client.get("/api/1/tags/trending/")
    assert r.status_code == 200
    names = [tag["name"] for tag in r.json()]
    assert names[:2] == ["popular", "second"]
    assert set(names) == {"popular", "second", "solo", "solo2"}
    assert set(r.json()[0]) == {"name", "created"}


def test_it_shows_at_most_ten_trending_tags(anon_client, alice):
    post(alice, " ".join(f"#t{n}" for n in range(15)))
    assert len(anon_client.get("/api/1/tags/trending/").json()) == 10


def test_trending_is_a_plain_list(anon_client, db):
    assert anon_client.get("/api/1/tags/trending/").json() == []


def test_trending_counts_people_not_posts(anon_client, alice):
    for n in range(3):
        post(User.objects.create_user(f"u{n}"), "#many")
    for _ in range(10):
        post(alice, "#busy")
    assert [tag["name"] for tag in anon_client.get("/api/1/tags/trending/").json()] == ["many", "busy"]
