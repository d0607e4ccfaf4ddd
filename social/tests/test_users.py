"""GET/PATCH /api/1/users/$self/ and GET /api/1/users/<username>/."""

from __future__ import annotations

import io

from PIL import Image

from social.tests.conftest import token_client

SELF = "/api/1/users/$self/"


def test_it_says_who_i_am(alice_session, alice):
    r = alice_session.get(SELF)
    assert r.status_code == 200
    assert r.json()["id"] == alice.pk
    assert r.json()["username"] == "alice"


def test_it_says_who_i_am_with_a_read_token(alice):
    r = token_client(alice, "read").get(SELF)
    assert r.status_code == 200
    assert r.json()["username"] == "alice"


def test_it_needs_a_user_to_say_who_i_am(anon_client, db):
    r = anon_client.get(SELF)
    assert r.status_code == 401
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_it_updates_my_profile(alice_session, alice):
    changes = {
        "first_name": "Alice",
        "last_name": "Liddell",
        "bio": "Down the rabbit hole",
        "url": "https://alice.example.org/",
        "location": "Oxford",
        "timezone": "Europe/London",
    }
    r = alice_session.patch(SELF, changes, format="json")
    assert r.status_code == 200
    assert {key: r.json()[key] for key in changes} == changes
    alice.refresh_from_db()
    assert alice.timezone == "Europe/London" and alice.bio == "Down the rabbit hole"


def test_it_keeps_what_a_patch_leaves_out(alice_session, alice):
    alice.location = "Oxford"
    alice.save()
    alice_session.patch(SELF, {"bio": "new"}, format="json")
    alice.refresh_from_db()
    assert alice.location == "Oxford" and alice.bio == "new"


def test_it_rejects_an_unknown_timezone(alice_session, alice):
    r = alice_session.patch(SELF, {"timezone": "Mars/Olympus"}, format="json")
    assert r.status_code == 400
    assert "timezone" in r.json()
    alice.refresh_from_db()
    assert alice.timezone == "UTC"


def test_it_rejects_a_bad_url(alice_session, alice):
    assert alice_session.patch(SELF, {"url": "not a url"}, format="json").status_code == 400


def test_it_ignores_fields_i_may_not_change(alice_session, alice):
    alice_session.patch(SELF, {"username": "queen", "is_staff": True}, format="json")
    alice.refresh_from_db()
    assert alice.username == "alice" and not alice.is_staff


def test_it_uploads_an_avatar(alice_session, alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    image = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(image, "PNG")
    image.name = "me.png"
    image.seek(0)
    r = alice_session.patch(SELF, {"avatar": image}, format="multipart")
    assert r.status_code == 200
    assert r.json()["avatar"].startswith("http://testserver/media/avatars/me")
    alice.refresh_from_db()
    assert alice.avatar.name.startswith("avatars/me")


def test_it_rejects_an_avatar_that_is_not_an_image(alice_session, alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    text = io.BytesIO(b"not an image")
    text.name = "me.png"
    assert alice_session.patch(SELF, {"avatar": text}, format="multipart").status_code == 400


def test_it_needs_a_write_token_to_patch(alice):
    r = token_client(alice, "read").patch(SELF, {"bio": "x"}, format="json")
    assert r.status_code == 403
    alice.refresh_from_db()
    assert alice.bio == ""


def test_it_shows_a_user_to_anyone(anon_client, charlie):
    r = anon_client.get("/api/1/users/charlie/")
    assert r.status_code == 200
    assert r.json()["username"] == "charlie"


def test_it_404s_for_an_unknown_user(anon_client, db):
    r = anon_client.get("/api/1/users/nobody/")
    assert r.status_code == 404
    assert "detail" in r.json()
