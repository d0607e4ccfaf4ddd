"""GET /api/1/timelines/home/ and /api/1/timelines/activity/."""

from __future__ import annotations

import pytest

from social import services
from social.tests.conftest import post


def test_it_shows_my_logs_and_those_of_whom_i_follow(alice_session, alice, bob, charlie):
    services.follow(follower=alice, followee=bob)
    mine = post(alice)
    bobs = post(bob)
    post(charlie)  # not followed
    r = alice_session.get("/api/1/timelines/home/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    assert [log["id"] for log in body["results"]] == [bobs.pk, mine.pk]


def test_it_counts_home_from_the_counters(alice_session, alice, bob, charlie, django_assert_num_queries):
    services.follow(follower=alice, followee=bob)
    for _ in range(3):
        post(bob)
    post(alice)
    post(charlie)
    assert alice_session.get("/api/1/timelines/home/").json()["count"] == 4


def test_it_needs_a_user_for_home(anon_client, db):
    r = anon_client.get("/api/1/timelines/home/")
    assert r.status_code == 401
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert "detail" in r.json()


def test_it_shows_my_activity_newest_first(alice_session, alice, charlie):
    log = post(alice, "hello")
    services.like_log(log=log, user=charlie)
    comment = services.add_comment(log=log, user=charlie, markdown="Thanks :)")
    post(charlie, "not for alice")
    r = alice_session.get("/api/1/timelines/activity/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    newest, oldest = body["results"]
    assert newest["type"] == "comment"
    assert newest["content"] == "charlie commented on your log"
    assert newest["originator"]["username"] == "charlie"
    assert newest["log"]["id"] == log.pk
    assert newest["log"]["comments"][0]["id"] == comment.pk
    assert newest["comment"]["id"] == comment.pk
    assert newest["comment"]["content"] == "<p>Thanks :)</p>"
    assert oldest["type"] == "like"
    assert oldest["content"] == "charlie liked your log"
    assert oldest["comment"] is None


def test_it_hides_other_peoples_activity(charlie_session, alice, charlie):
    services.like_log(log=post(alice), user=charlie)
    assert charlie_session.get("/api/1/timelines/activity/").json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_it_needs_a_user_for_activity(anon_client, db):
    assert anon_client.get("/api/1/timelines/activity/").status_code == 401


@pytest.mark.parametrize("count", [2, 30])
def test_it_runs_a_fixed_number_of_queries_per_activity_page(
    alice_session, alice, bob, charlie, count, django_assert_num_queries
):
    for n in range(count):
        log = post(alice, f"#t{n}")
        services.add_comment(log=log, user=charlie if n % 2 else bob, markdown="@alice #x")
    services.follow(follower=charlie, followee=alice)
    # session, user, the counter with the page's ids, the items with the comments they are about, their logs (with
    # their latest comments), the page's tags and users
    with django_assert_num_queries(6):
        r = alice_session.get("/api/1/timelines/activity/?limit=100")
    assert len(r.json()["results"]) == r.json()["count"] == count + 1  # the comments and the follow


@pytest.mark.parametrize("count", [2, 30])
def test_it_runs_a_fixed_number_of_queries_per_home_page(alice_session, alice, bob, count, django_assert_num_queries):
    services.follow(follower=alice, followee=bob)
    for _ in range(count):
        post(bob, "#x @alice")
    # session, user, the counters (count and plan) with the page's ids, the logs with their totals, the page's tags
    # and users
    with django_assert_num_queries(5):
        r = alice_session.get("/api/1/timelines/home/?limit=100")
    assert r.json()["count"] == count


@pytest.mark.parametrize("plan", ["scan", "per author"])
def test_both_plans_page_the_same(alice, bob, charlie, plan, monkeypatch):
    from django.db.models import Q

    from social.models import Follow, Log
    from social.timelines import HomeTimeline

    services.follow(follower=alice, followee=bob)
    for n in range(12):
        post([alice, bob, charlie][n % 3], f"log {n}")
    monkeypatch.setattr(HomeTimeline, "force_plan", plan)
    expected = list(
        Log.objects.filter(Q(user=alice) | Q(user__in=Follow.objects.filter(follower=alice).values("followee")))
        .order_by("-created", "-id")
        .values_list("id", flat=True)
    )
    timeline = HomeTimeline(alice)
    assert timeline.plan(20) == plan
    assert timeline[0:100] == expected
    assert timeline[3:6] == expected[3:6]
    assert timeline[20:40] == []


def test_it_reads_per_author_when_the_followed_post_little(alice, bob, charlie):
    from social.timelines import HomeTimeline

    services.follow(follower=alice, followee=bob)
    post(bob)
    for _ in range(30):
        post(charlie)  # most logs are by people alice doesn't follow
    assert HomeTimeline(alice).plan(20) == "per author"


def test_it_scans_when_the_followed_wrote_most_logs(alice):
    from logsvc.models import User
    from social.timelines import HomeTimeline

    for n in range(4):
        friend = User.objects.create_user(f"friend{n}")
        services.follow(follower=alice, followee=friend)
        for _ in range(10):
            post(friend)
    # per author would read 4 x 10 rows; the scan reads about the 20 it needs
    assert HomeTimeline(alice).plan(20) == "scan"
