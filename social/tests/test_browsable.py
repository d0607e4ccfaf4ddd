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
def test_a_browser_gets_the_form_of_a_write_endpoint(alice_session, alice, charlie, path):
    log = post(alice)
    r = alice_session.get("/api/1/" + path.format(id=log.pk), HTTP_ACCEPT="text/html")
    assert r.status_code == 405  # GET isn't the endpoint's method, but the page offers its POST form
    assert r["Content-Type"].startswith("text/html")
    assert b'method="POST"' in r.content or b'method="POST"' in r.content
    assert b"csrfmiddlewaretoken" in r.content


def test_an_api_client_get_of_a_write_endpoint_is_a_json_405(alice_session, alice):
    r = alice_session.get("/api/1/logs/create/")
    assert r.status_code == 405
    assert r.json() == {"detail": 'Method "GET" not allowed.'}


def test_a_browser_form_deletes_with_method_override_and_its_csrf_token(alice, client):
    from social.models import Log

    log = post(alice)
    client.force_login(alice)
    client.handler.enforce_csrf_checks = True
    token = client.get("/api-auth/login/").cookies["csrftoken"].value
    url = f"/api/1/logs/{log.pk}/delete/"
    r = client.post(url, {"_method": "DELETE", "csrfmiddlewaretoken": token})
    assert r.status_code == 204
    assert not Log.objects.exists()


def test_a_method_override_form_without_its_csrf_token_is_refused(alice, client):
    from social.models import Log

    log = post(alice)
    client.force_login(alice)
    client.handler.enforce_csrf_checks = True
    r = client.post(f"/api/1/logs/{log.pk}/delete/", {"_method": "DELETE"})
    assert r.status_code == 403
    assert "CSRF" in r.json()["detail"]
    assert Log.objects.filter(pk=log.pk).exists()


def test_a_json_body_can_carry_the_method_override(alice_session, alice, charlie):
    from social.models import Like

    log = post(charlie)
    assert alice_session.post(f"/api/1/logs/{log.pk}/like/").status_code == 201
    r = alice_session.post(f"/api/1/logs/{log.pk}/unlike/", {"_method": "DELETE"}, content_type="application/json")
    assert r.status_code == 204
    assert not Like.objects.exists()


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
