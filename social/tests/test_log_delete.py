"""DELETE /api/1/logs/<id>/delete/ (also POST with _method=DELETE)."""

from __future__ import annotations

from social import services
from social.models import Activity, Counter, Log, Tag
from social.tests.conftest import post


def test_it_deletes_my_log_and_what_hangs_on_it(alice_session, alice, charlie):
    log = post(alice, "#x @charlie")
    services.add_comment(log=log, user=charlie, markdown="hi")
    services.like_log(log=log, user=charlie)
    r = alice_session.delete(f"/api/1/logs/{log.pk}/delete/")
    assert r.status_code == 204
    assert r.content == b""
    assert not Log.objects.exists()
    assert not Activity.objects.exists()
    assert Tag.objects.exists()  # tags outlive their logs


def test_it_keeps_the_counters(alice_session, alice, charlie):
    log = post(alice, "#x @charlie")
    services.add_comment(log=log, user=charlie, markdown="hi")
    alice_session.delete(f"/api/1/logs/{log.pk}/delete/")
    tag = Tag.objects.get()
    assert Counter.objects.value("logs") == 0
    assert Counter.objects.value("user_logs", alice.pk) == 0
    assert Counter.objects.value("tag_logs", tag.pk) == 0
    assert Counter.objects.value("activity", charlie.pk) == 0
    assert Counter.objects.value("activity", alice.pk) == 0


def test_it_accepts_post_with_method_delete(alice_session, alice):
    log = post(alice)
    r = alice_session.post(f"/api/1/logs/{log.pk}/delete/", {"_method": "DELETE"})
    assert r.status_code == 204
    assert not Log.objects.exists()


def test_it_forbids_deleting_someone_elses_log(charlie_session, alice, charlie):
    log = post(alice)
    r = charlie_session.delete(f"/api/1/logs/{log.pk}/delete/")
    assert r.status_code == 403
    assert "detail" in r.json()
    assert Log.objects.filter(pk=log.pk).exists()
    assert Counter.objects.value("logs") == 1


def test_it_404s_for_an_unknown_log(alice_session, alice):
    assert alice_session.delete("/api/1/logs/999/delete/").status_code == 404


def test_it_needs_a_user(anon_client, alice):
    log = post(alice)
    assert anon_client.delete(f"/api/1/logs/{log.pk}/delete/").status_code == 401
    assert Log.objects.exists()
