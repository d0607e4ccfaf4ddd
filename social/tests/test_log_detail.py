"""GET /api/1/logs/<id>/: the seed's log shape."""

from __future__ import annotations

from social import services
from social.tests.conftest import post


def test_it_shows_a_log_in_the_seeds_shape(anon_client, alice, charlie):
    alice.first_name, alice.bio, alice.location, alice.timezone = "Alice", "Bio", "Melbourne", "Australia/Melbourne"
    alice.save()
    log = post(alice, "Catching up on #admin and #HelloCode with @charlie")
    services.like_log(log=log, user=charlie)
    comment = services.add_comment(log=log, user=charlie, markdown="Go #team @alice")
    r = anon_client.get(f"/api/1/logs/{log.pk}/")
    assert r.status_code == 200
    body = r.json()
    # The seed's fields, plus how many comments and likes there are in all (only the latest few are inline).
    seed = {"id", "created", "user", "source", "content", "comments", "tags", "mentions", "likes"}
    assert set(body) == seed | {"comments_count", "likes_count"}
    assert body["comments_count"] == 1 and body["likes_count"] == 1
    assert body["id"] == log.pk
    assert body["created"] == log.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["user"] == {
        "id": alice.pk,
        "username": "alice",
        "first_name": "Alice",
        "last_name": "",
        "bio": "Bio",
        "url": "",
        "location": "Melbourne",
        "avatar": "http://testserver/static/social/avatar.svg",  # the default picture, absolute
        "timezone": "Australia/Melbourne",
    }
    assert body["source"] is None
    assert body["content"].startswith('<p>Catching up on <a class="tag" href="/tag/admin">')
    assert body["tags"] == ["admin", "HelloCode"]
    assert body["mentions"] == ["charlie"]
    assert body["likes"] == [{"user": "charlie", "created": body["likes"][0]["created"]}]
    [shown] = body["comments"]
    assert set(shown) == {"id", "created", "user", "content", "source", "tags", "mentions"}
    assert shown["id"] == comment.pk
    assert shown["user"]["username"] == "charlie"
    assert shown["tags"] == ["team"]
    assert shown["mentions"] == ["alice"]
    assert shown["source"] is None


def test_it_404s_for_an_unknown_log(anon_client, db):
    r = anon_client.get("/api/1/logs/999/")
    assert r.status_code == 404
    assert set(r.json()) == {"detail"}


def test_it_answers_json_p(anon_client, alice):
    log = post(alice)
    r = anon_client.get(f"/api/1/logs/{log.pk}/?callback=show")
    assert r.status_code == 200
    assert r.content.startswith(b"/**/show(")


def test_it_renders_the_browsable_api_for_a_browser(alice_session, alice):
    log = post(alice)
    r = alice_session.get(f"/api/1/logs/{log.pk}/", HTTP_ACCEPT="text/html")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")


def test_it_reads_a_log_in_a_fixed_number_of_queries(anon_client, alice, charlie, django_assert_num_queries):
    log = post(alice, "#a @charlie")
    for _ in range(5):
        services.add_comment(log=log, user=charlie, markdown="#b @alice")
    with django_assert_num_queries(2):  # the log with its totals, latest comments and likes; its tags and users
        assert anon_client.get(f"/api/1/logs/{log.pk}/").status_code == 200
