"""POST users/<username>/follow/, DELETE users/<username>/unfollow/, GET users/followed-by/ and users/following/."""

from __future__ import annotations

from social import services
from social.models import Activity, Counter, Follow


def test_it_follows_with_an_empty_201(alice_session, alice, charlie):
    r = alice_session.post("/api/1/users/charlie/follow/")
    assert r.status_code == 201
    assert r.content == b""
    assert Follow.objects.get().followee == charlie
    [item] = Activity.objects.all()
    assert (item.recipient, item.type, item.originator, item.log) == (charlie, "follow", alice, None)
    assert Counter.objects.value("activity", charlie.pk) == 1


def test_following_twice_is_harmless(alice_session, alice, charlie):
    alice_session.post("/api/1/users/charlie/follow/")
    assert alice_session.post("/api/1/users/charlie/follow/").status_code == 201
    assert Follow.objects.count() == 1
    assert Activity.objects.count() == 1


def test_it_refuses_to_follow_myself(alice_session, alice):
    r = alice_session.post("/api/1/users/alice/follow/")
    assert r.status_code == 400
    assert not Follow.objects.exists()


def test_it_404s_for_an_unknown_user(alice_session, alice):
    assert alice_session.post("/api/1/users/nobody/follow/").status_code == 404
    assert alice_session.delete("/api/1/users/nobody/unfollow/").status_code == 404


def test_it_needs_a_user(anon_client, charlie):
    assert anon_client.post("/api/1/users/charlie/follow/").status_code == 401
    assert not Follow.objects.exists()


def test_it_unfollows(alice_session, alice, charlie):
    services.follow(follower=alice, followee=charlie)
    r = alice_session.delete("/api/1/users/charlie/unfollow/")
    assert r.status_code == 204
    assert not Follow.objects.exists()
    assert alice_session.post("/api/1/users/charlie/unfollow/?_method=DELETE").status_code == 204


def test_it_lists_whom_a_user_follows(anon_client, alice, bob, charlie):
    services.follow(follower=alice, followee=bob)
    services.follow(follower=alice, followee=charlie)
    services.follow(follower=charlie, followee=alice)
    r = anon_client.get("/api/1/users/followed-by/alice/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    assert [user["username"] for user in body["results"]] == ["charlie", "bob"]
    assert set(body["results"][0]) == {
        "id", "username", "first_name", "last_name", "bio", "url", "location", "avatar", "timezone"
    }  # fmt: skip


def test_it_lists_who_follows_a_user(anon_client, alice, bob, charlie):
    services.follow(follower=bob, followee=alice)
    services.follow(follower=alice, followee=charlie)
    r = anon_client.get("/api/1/users/following/alice/")
    assert r.status_code == 200
    assert r.json()["count"] == 1
    assert [user["username"] for user in r.json()["results"]] == ["bob"]


def test_follow_lists_404_for_an_unknown_user(anon_client, db):
    assert anon_client.get("/api/1/users/followed-by/nobody/").status_code == 404
    assert anon_client.get("/api/1/users/following/nobody/").status_code == 404


def test_follow_lists_run_a_fixed_number_of_queries(anon_client, alice, django_assert_num_queries):
    from logsvc.models import User

    for n in range(30):
        services.follow(follower=User.objects.create_user(f"fan{n}"), followee=alice)
    with django_assert_num_queries(4):  # user, count, page ids, page
        r = anon_client.get("/api/1/users/following/alice/?limit=100")
    assert len(r.json()["results"]) == 30


def test_unfollowing_needs_a_user(anon_client, alice, charlie):
    services.follow(follower=alice, followee=charlie)
    r = anon_client.delete("/api/1/users/charlie/unfollow/")
    assert r.status_code == 401
    assert Follow.objects.filter(follower=alice, followee=charlie).exists()
