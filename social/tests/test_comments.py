"""POST /api/1/logs/<id>/comment/ and DELETE /api/1/comment/<id>/delete/."""

from __future__ import annotations

import pytest

from social import services
from social.models import Activity, Comment, Counter
from social.serializers import COMMENTS_INLINE
from social.tests.conftest import post


def activity_of(user) -> list[tuple[str, str]]:
    return [(a.type, a.originator.username) for a in Activity.objects.filter(recipient=user).order_by("id")]


def test_it_comments_and_answers_the_updated_log(charlie_session, alice, charlie):
    log = post(alice)
    r = charlie_session.post(f"/api/1/logs/{log.pk}/comment/", {"content": "Thanks **guys** #team"}, format="json")
    assert r.status_code == 201
    body = r.json()
    comment = Comment.objects.get()
    assert body["id"] == log.pk
    assert [c["id"] for c in body["comments"]] == [comment.pk]
    assert body["comments"][0]["content"] == comment.content
    assert "<strong>guys</strong>" in comment.content
    assert body["comments"][0]["tags"] == ["team"]
    assert comment.user == charlie and comment.markdown == "Thanks **guys** #team"


def test_it_notifies_the_author_mentioned_and_earlier_commenters_once_each(alice, bob, charlie):
    log = post(alice)
    services.add_comment(log=log, user=bob, markdown="first")
    services.add_comment(log=log, user=charlie, markdown="me too @bob @alice")
    assert activity_of(alice) == [("comment", "bob"), ("comment", "charlie")]
    assert activity_of(bob) == [("mention", "charlie")]  # mentioned beats commented-after
    assert activity_of(charlie) == []
    assert Counter.objects.value("activity", alice.pk) == 2


def test_it_says_commented_after_you(alice, bob, charlie):
    log = post(alice)
    services.add_comment(log=log, user=bob, markdown="first")
    services.add_comment(log=log, user=charlie, markdown="second")
    [item] = Activity.objects.filter(recipient=bob)
    assert item.type == "comment_after" and item.log == log and item.comment.user == charlie


def test_it_never_notifies_myself(alice_session, alice):
    log = post(alice)
    alice_session.post(f"/api/1/logs/{log.pk}/comment/", {"content": "note to self @alice"}, format="json")
    assert not Activity.objects.exists()


def test_it_404s_for_an_unknown_log(alice_session, alice):
    assert alice_session.post("/api/1/logs/999/comment/", {"content": "x"}, format="json").status_code == 404


def test_it_rejects_an_empty_comment(alice_session, alice):
    log = post(alice)
    assert alice_session.post(f"/api/1/logs/{log.pk}/comment/", {}, format="json").status_code == 400
    assert not Comment.objects.exists()


def test_it_needs_a_user(anon_client, alice):
    log = post(alice)
    assert anon_client.post(f"/api/1/logs/{log.pk}/comment/", {"content": "x"}, format="json").status_code == 401


def test_the_author_deletes_a_comment(charlie_session, alice, charlie):
    comment = services.add_comment(log=post(alice), user=charlie, markdown="oops")
    r = charlie_session.delete(f"/api/1/comment/{comment.pk}/delete/")
    assert r.status_code == 204
    assert not Comment.objects.exists()
    assert not Activity.objects.exists()
    assert Counter.objects.value("activity", alice.pk) == 0


def test_the_logs_owner_deletes_a_comment(alice_session, alice, charlie):
    comment = services.add_comment(log=post(alice), user=charlie, markdown="spam")
    assert alice_session.post(f"/api/1/comment/{comment.pk}/delete/?_method=DELETE").status_code == 204
    assert not Comment.objects.exists()


def test_others_cannot_delete_a_comment(bob, alice, charlie):
    from social.tests.conftest import session_client

    comment = services.add_comment(log=post(alice), user=charlie, markdown="mine")
    r = session_client(bob).delete(f"/api/1/comment/{comment.pk}/delete/")
    assert r.status_code == 403
    assert Comment.objects.exists()


def test_it_404s_for_an_unknown_comment(alice_session, alice):
    assert alice_session.delete("/api/1/comment/999/delete/").status_code == 404


def test_deleting_a_comment_needs_a_user(anon_client, alice, charlie):
    log = post(alice)
    comment = services.add_comment(log=log, user=charlie, markdown="nice")
    r = anon_client.delete(f"/api/1/comment/{comment.pk}/delete/")
    assert r.status_code == 401
    assert Comment.objects.filter(pk=comment.pk).exists()


def test_a_comment_and_its_notifications_commit_together(alice, charlie, monkeypatch):
    log = post(alice)

    def broken(**kwargs):
        raise RuntimeError("the notification insert failed")

    # the comment row is written before the notifications: a failure there must take it back out
    monkeypatch.setattr(services, "_notify", broken)
    with pytest.raises(RuntimeError):
        services.add_comment(log=log, user=charlie, markdown="nice")
    assert not Comment.objects.exists()
    assert not Activity.objects.exists()


# --- A log carries its latest comments; the rest are paged ------------------------------------------


def test_a_log_carries_its_latest_comments_oldest_first_and_how_many_there_are(anon_client, alice, charlie):
    log = post(alice)
    comments = [services.add_comment(log=log, user=charlie, markdown=f"number {n}") for n in range(5)]

    body = anon_client.get(f"/api/1/logs/{log.pk}/").json()

    assert [c["id"] for c in body["comments"]] == [c.pk for c in comments[-COMMENTS_INLINE:]]
    assert body["comments_count"] == 5


def test_it_pages_all_of_a_logs_comments_oldest_first(anon_client, alice, charlie):
    log = post(alice)
    comments = [services.add_comment(log=log, user=charlie, markdown=f"#n{n} @alice") for n in range(5)]

    r = anon_client.get(f"/api/1/logs/{log.pk}/comments/?limit=2&offset=2")

    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 5
    assert [c["id"] for c in body["results"]] == [comments[2].pk, comments[3].pk]
    assert body["results"][0]["tags"] == ["n2"] and body["results"][0]["mentions"] == ["alice"]
    assert body["results"][0]["user"]["username"] == "charlie"
    assert body["next"].endswith("limit=2&offset=4") and body["previous"]


def test_it_pages_comments_in_a_fixed_number_of_queries(anon_client, alice, charlie, django_assert_num_queries):
    log = post(alice)
    for n in range(30):
        services.add_comment(log=log, user=charlie, markdown=f"#n{n} @alice")
    with django_assert_num_queries(5):  # log, count, page ids, the comments, their tags and users
        assert len(anon_client.get(f"/api/1/logs/{log.pk}/comments/?limit=30").json()["results"]) == 30


def test_it_404s_for_the_comments_of_an_unknown_log(anon_client, db):
    assert anon_client.get("/api/1/logs/999/comments/").json() == {"detail": "Not found."}
