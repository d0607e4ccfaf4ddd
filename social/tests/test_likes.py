"""POST /api/1/logs/<id>/like/ and DELETE /api/1/logs/<id>/unlike/."""

from __future__ import annotations

from logsvc.models import User
from social import services
from social.models import Activity, Counter, Like
from social.serializers import LIKES_INLINE
from social.tests.conftest import post


def test_it_likes_and_answers_the_updated_log(charlie_session, alice, charlie):
    log = post(alice)
    r = charlie_session.post(f"/api/1/logs/{log.pk}/like/")
    assert r.status_code == 201
    like = Like.objects.get()
    assert r.json()["id"] == log.pk
    assert r.json()["likes"] == [{"user": "charlie", "created": like.created.strftime("%Y-%m-%dT%H:%M:%SZ")}]
    [item] = Activity.objects.all()
    assert (item.recipient, item.type, item.originator, item.log) == (alice, "like", charlie, log)
    assert Counter.objects.value("activity", alice.pk) == 1


def test_liking_twice_is_harmless(charlie_session, alice, charlie):
    log = post(alice)
    charlie_session.post(f"/api/1/logs/{log.pk}/like/")
    r = charlie_session.post(f"/api/1/logs/{log.pk}/like/")
    assert r.status_code == 201
    assert len(r.json()["likes"]) == 1
    assert Like.objects.count() == 1
    assert Activity.objects.count() == 1


def test_liking_my_own_log_notifies_nobody(alice_session, alice):
    log = post(alice)
    assert alice_session.post(f"/api/1/logs/{log.pk}/like/").status_code == 201
    assert Like.objects.exists() and not Activity.objects.exists()


def test_it_unlikes(charlie_session, alice, charlie):
    log = post(alice)
    charlie_session.post(f"/api/1/logs/{log.pk}/like/")
    r = charlie_session.delete(f"/api/1/logs/{log.pk}/unlike/")
    assert r.status_code == 204
    assert not Like.objects.exists()
    assert charlie_session.delete(f"/api/1/logs/{log.pk}/unlike/").status_code == 204  # again: still fine


def test_it_unlikes_with_method_override(charlie_session, alice, charlie):
    log = post(alice)
    charlie_session.post(f"/api/1/logs/{log.pk}/like/")
    assert charlie_session.post(f"/api/1/logs/{log.pk}/unlike/", {"_method": "DELETE"}).status_code == 204
    assert not Like.objects.exists()


def test_it_404s_for_an_unknown_log(alice_session, alice):
    assert alice_session.post("/api/1/logs/999/like/").status_code == 404
    assert alice_session.delete("/api/1/logs/999/unlike/").status_code == 404


def test_it_needs_a_user(anon_client, alice):
    log = post(alice)
    assert anon_client.post(f"/api/1/logs/{log.pk}/like/").status_code == 401
    assert anon_client.delete(f"/api/1/logs/{log.pk}/unlike/").status_code == 401
    assert not Like.objects.exists()


def test_a_log_carries_its_latest_likes_and_pages_the_rest(anon_client, alice):
    log = post(alice)
    likers = [User.objects.create_user(f"liker{n:02}") for n in range(LIKES_INLINE + 5)]
    for user in likers:
        services.like_log(log=log, user=user)

    body = anon_client.get(f"/api/1/logs/{log.pk}/").json()
    assert [like["user"] for like in body["likes"]] == [u.username for u in likers[-LIKES_INLINE:]]
    assert body["likes_count"] == LIKES_INLINE + 5

    page = anon_client.get(f"/api/1/logs/{log.pk}/likes/?limit=3").json()
    assert page["count"] == LIKES_INLINE + 5
    assert [like["user"] for like in page["results"]] == ["liker00", "liker01", "liker02"]
    assert set(page["results"][0]) == {"user", "created"}
    assert anon_client.get("/api/1/logs/999/likes/").status_code == 404
