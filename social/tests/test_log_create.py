"""POST /api/1/logs/create/ and /api/1/logs/preview/."""

from __future__ import annotations

from rest_framework.test import APIClient

from social.models import Activity, Counter, Log, LogTag, Tag
from social.tests.conftest import post, token_client

URL = "/api/1/logs/create/"


def test_it_creates_a_log_from_markdown(alice_session, alice, charlie):
    r = alice_session.post(URL, {"content": "Shipped **it** #HelloCode with @charlie"}, format="json")
    assert r.status_code == 201
    body = r.json()
    log = Log.objects.get()
    assert body["id"] == log.pk
    assert body["user"]["username"] == "alice"
    assert "<strong>it</strong>" in body["content"]
    assert body["tags"] == ["HelloCode"] and body["mentions"] == ["charlie"]
    assert body["comments"] == [] and body["likes"] == []
    assert log.markdown == "Shipped **it** #HelloCode with @charlie"
    assert log.content == body["content"]
    assert list(log.mentions.all()) == [charlie]
    assert LogTag.objects.get().user == alice
    assert LogTag.objects.get().created == log.created


def test_it_accepts_a_form_post(alice_session, alice):
    r = alice_session.post(URL, {"content": "from a form"})
    assert r.status_code == 201
    assert Log.objects.get().markdown == "from a form"


def test_it_notifies_each_mentioned_user_once_and_never_the_author(alice_session, alice, bob, charlie):
    alice_session.post(URL, {"content": "@charlie @bob @charlie @alice @nobody"}, format="json")
    activity = Activity.objects.order_by("recipient__username")
    assert [(a.recipient.username, a.type, a.originator.username) for a in activity] == [
        ("bob", "mention", "alice"),
        ("charlie", "mention", "alice"),
    ]
    assert Counter.objects.value("activity", charlie.pk) == 1


def test_it_reuses_a_tag_whatever_its_case(alice_session, alice):
    post(alice, "#HelloCode")
    alice_session.post(URL, {"content": "#hellocode again"}, format="json")
    assert Tag.objects.get().name == "HelloCode"
    assert LogTag.objects.count() == 2


def test_it_keeps_the_counters(alice_session, alice):
    alice_session.post(URL, {"content": "#a #b"}, format="json")
    tag_a = Tag.objects.get(name="a")
    assert Counter.objects.value("logs") == 1
    assert Counter.objects.value("user_logs", alice.pk) == 1
    assert Counter.objects.value("tag_logs", tag_a.pk) == 1
    assert Counter.objects.value("tags") == 2


def test_it_rejects_empty_content(alice_session, alice):
    r = alice_session.post(URL, {"content": ""}, format="json")
    assert r.status_code == 400
    assert "content" in r.json()
    r = alice_session.post(URL, {}, format="json")
    assert r.status_code == 400
    assert not Log.objects.exists()


def test_it_needs_a_user(anon_client, db):
    r = anon_client.post(URL, {"content": "hi"}, format="json")
    assert r.status_code == 401
    assert "WWW-Authenticate" in r
    assert not Log.objects.exists()


def test_it_accepts_an_oauth_token_with_write_scope_and_records_the_app(alice):
    r = token_client(alice, "read write", app_name="Logbook").post(URL, {"content": "hi"}, format="json")
    assert r.status_code == 201
    assert r.json()["source"] == "Logbook"
    assert Log.objects.get().source == "Logbook"


def test_it_refuses_a_read_only_token(alice):
    r = token_client(alice, "read").post(URL, {"content": "hi"}, format="json")
    assert r.status_code == 403
    assert "write" in r.json()["detail"]
    assert not Log.objects.exists()


def test_it_needs_csrf_for_a_session_post(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    r = client.post(URL, {"content": "hi"}, format="json")
    assert r.status_code == 403
    assert "CSRF" in r.json()["detail"]
    assert not Log.objects.exists()


def test_it_keeps_a_post_through_the_slash_redirect(alice_session, alice):
    r = alice_session.post("/api/1/logs/create", {"content": "hi"}, format="json")
    assert r.status_code == 308
    assert r["Location"] == "/api/1/logs/create/"
    assert not Log.objects.exists()


def test_it_previews_without_storing(alice_session, alice, charlie):
    r = alice_session.post("/api/1/logs/preview/", {"content": "*hi* #Tag @charlie"}, format="json")
    assert r.status_code == 200
    body = r.json()
    assert "<em>hi</em>" in body["content"]
    assert body["tags"] == ["Tag"] and body["mentions"] == ["charlie"]
    assert not Log.objects.exists() and not Tag.objects.exists() and not Activity.objects.exists()


def test_it_needs_a_user_to_preview(anon_client, db):
    assert anon_client.post("/api/1/logs/preview/", {"content": "x"}, format="json").status_code == 401
