"""The browsable API for a signed-in browser (session + CSRF), and its login page."""

from __future__ import annotations

import pytest

from social.tests.conftest import post

PAGES = ["logs/", "logs/{id}/", "timelines/home/", "timelines/activity/", "users/$self/", "tags/", "tags/trending/"]
POST_ONLY = ["logs/create/", "logs/preview/", "logs/{id}/comment/", "logs/{id}/like/", "users/charlie/follow/"]


@pytest.mark.parametrize("path", PAGES)
def test_it_renders_html_pages_for_a_browser(alice_session, alice, path):
    log = post(alice)
    r = alice_session.get("/api/1/" + path.format(id=log.pk), HTTP_ACCEPT="text/html")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")
    assert b"Log out" in r.content or b"alice" in r.content


@pytest.mark.parametrize("path", POST_ONLY)
def test_a_browser_get_of_a_write_endpoint_is_a_clean_405(alice_session, alice, charlie, path):
    log = post(alice)
    r = alice_session.get("/api/1/" + path.format(id=log.pk), HTTP_ACCEPT="text/html")
    assert r.status_code == 405
    assert "detail" in r.json()  # errors under /api/ are JSON, whatever was asked for


def test_it_offers_the_session_login_page(client, db):
    r = client.get("/api-auth/login/")
    assert r.status_code == 200
    assert b"csrfmiddlewaretoken" in r.content


def test_a_session_post_with_the_csrf_token_works(alice, client):
    from social.models import Log

    client.force_login(alice)
    client.handler.enforce_csrf_checks = True
    page = client.get("/api-auth/login/")
    token = page.cookies["csrftoken"].value
    r = client.post("/api/1/logs/create/", {"content": "from the browser"}, HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 201
    assert Log.objects.get().markdown == "from the browser"
