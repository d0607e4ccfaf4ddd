"""Password guessing on every sign-in form and on the OAuth token endpoint's client authentication.

Failures are limited per account and address (5) and per address (20); past a limit the answer is 429 with
Retry-After, even to the right password, until 15 minutes after the last counted failure. The account stays
open from other addresses. See logsvc/signin.py.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error, InvalidClientError
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from logsvc.models import User

ATTACKER = "203.0.113.66"
ELSEWHERE = "198.51.100.7"
LIMIT = 5
ADDRESS_LIMIT = 20
COOL_OFF = 15 * 60

FORMS = ["/accounts/login/", "/api-auth/login/", "/admin/login/"]


@pytest.fixture
def alice(db) -> User:
    # staff, so that the admin's form lets her in as well
    return User.objects.create_user("alice", password="alice-password", is_staff=True)


def sign_in(form: str, password: str, ip: str = ATTACKER, username: str = "alice", **headers):
    client = Client(REMOTE_ADDR=ip)
    response = client.post(form, {"username": username, "password": password}, **headers)
    return response, client


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def failures(**where) -> int:
    return sum(a.failures_since_start for a in AccessAttempt.objects.filter(**where))


@pytest.mark.parametrize("form", FORMS)
def test_a_form_locks_the_account_from_the_guessing_address_only(alice, form):
    for attempt in range(1, LIMIT):
        response, client = sign_in(form, f"guess-{attempt}")
        assert response.status_code == 200, attempt  # the form again, with its error
        assert not signed_in(client)
    response, client = sign_in(form, "guess-5")
    assert response.status_code == 429
    assert response["Retry-After"] == str(COOL_OFF)
    assert "Try again in 15 minutes" in response.content.decode()
    assert failures(username="alice", ip_address=ATTACKER) == LIMIT

    # The right password from there is refused too, without counting (the lock is not prolonged).
    response, client = sign_in(form, "alice-password")
    assert response.status_code == 429 and not signed_in(client)
    assert failures(username="alice", ip_address=ATTACKER) == LIMIT

    # Alice, elsewhere, signs in as usual.
    response, client = sign_in(form, "alice-password", ip=ELSEWHERE)
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in(client)


@pytest.mark.parametrize("form", FORMS)
def test_the_lock_lifts_after_the_cool_off(alice, form):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for attempt in range(LIMIT):
            sign_in(form, f"guess-{attempt}")
        clock.shift(timedelta(seconds=COOL_OFF - 60))
        response, _ = sign_in(form, "alice-password")
        assert response.status_code == 429
        assert response["Retry-After"] == "60"  # the page says when, and it is true
        assert "Try again in 1 minute " in response.content.decode()
        clock.shift(timedelta(seconds=61))
        response, client = sign_in(form, "alice-password")
        assert response.status_code == 302 and signed_in(client)


def test_a_script_is_told_in_json(alice):
    for attempt in range(LIMIT):
        response, _ = sign_in("/accounts/login/", f"guess-{attempt}", HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response.json()["retry_after"] == COOL_OFF
    assert "Try again in 15 minutes" in response.json()["detail"]


def test_failures_on_one_form_count_on_the_others(alice):
    forms = list(FORMS)
    for attempt in range(LIMIT - 1):
        assert sign_in(forms[attempt % 3], f"guess-{attempt}")[0].status_code == 200
    assert sign_in("/admin/login/", "guess-last")[0].status_code == 429
    assert sign_in("/api-auth/login/", "alice-password")[0].status_code == 429


def test_one_address_guessing_many_accounts_is_stopped(alice, db):
    for n in range(ADDRESS_LIMIT - 1):  # a password spray: one guess per account, never an account's limit
        assert sign_in("/accounts/login/", "Winter2026!", username=f"user{n}")[0].status_code == 200
    assert sign_in("/accounts/login/", "Winter2026!", username="user-last")[0].status_code == 429
    assert failures(ip_address=ATTACKER) == ADDRESS_LIMIT
    # The address is locked for every account, alice's right password included; alice elsewhere is not.
    assert sign_in("/accounts/login/", "alice-password")[0].status_code == 429
    response, client = sign_in("/accounts/login/", "alice-password", ip=ELSEWHERE)
    assert response.status_code == 302 and signed_in(client)


def test_a_forged_forwarded_for_changes_nothing(alice):
    # Without BEHIND_PROXY, X-Forwarded-For is the client's own say-so: the socket's address is counted.
    for attempt in range(LIMIT):
        response, _ = sign_in("/accounts/login/", f"guess-{attempt}", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}")
    assert response.status_code == 429
    assert failures(username="alice", ip_address=ATTACKER) == LIMIT


def test_behind_our_proxy_its_forwarded_address_is_counted(alice, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "10.0.0.2"
    for attempt in range(LIMIT):
        response, _ = sign_in(
            "/accounts/login/", f"guess-{attempt}", ip=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.99, {ATTACKER}"
        )
    assert response.status_code == 429
    assert failures(username="alice", ip_address=ATTACKER) == LIMIT
    # Another client through the same proxy is someone else.
    response, client = sign_in("/accounts/login/", "alice-password", ip=proxy, HTTP_X_FORWARDED_FOR=ELSEWHERE)
    assert response.status_code == 302 and signed_in(client)


def test_an_ipv6_network_counts_as_one_address(alice):
    for attempt in range(LIMIT):
        response, _ = sign_in("/accounts/login/", f"guess-{attempt}", ip=f"2001:db8:1:2::{attempt + 1:x}")
    assert response.status_code == 429
    assert failures(username="alice", ip_address="2001:db8:1:2::") == LIMIT
    response, client = sign_in("/accounts/login/", "alice-password", ip="2001:db8:1:3::1")
    assert response.status_code == 302 and signed_in(client)


def test_a_sign_in_without_a_request_still_works(alice):
    # The test client's login() (and a script's authenticate()) has no address to count.
    client = Client()
    assert client.login(username="alice", password="alice-password")
    assert signed_in(client)
    assert not Client().login(username="alice", password="wrong")
    assert not AccessAttempt.objects.exists()


def test_a_locked_attempt_costs_no_password_hash(alice, settings, monkeypatch):
    for attempt in range(LIMIT):
        sign_in("/accounts/login/", f"guess-{attempt}")
    checked = []
    monkeypatch.setattr(User, "check_password", lambda self, raw: checked.append(raw) or True)
    assert sign_in("/accounts/login/", "anything")[0].status_code == 429
    assert checked == []


# --- OAuth client authentication at /oauth/token and /oauth/revoke_token ------------------------------------

SECRET = "s3cr3t-" + "x" * 40


@pytest.fixture
def app(alice) -> Application:
    return Application.objects.create(
        name="Logbook",
        user=alice,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://example.org/callback",
        client_secret=SECRET,
    )


def refresh_token(app: Application) -> str:
    raw = secrets.token_urlsafe(30)
    access = AccessToken.objects.create(
        user=app.user, application=app, token=secrets.token_urlsafe(30), expires=timezone.now() + timedelta(hours=1)
    )
    RefreshToken.objects.create(user=app.user, application=app, token=raw, access_token=access)
    return raw


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def refresh(app: Application, secret: str, token: str, ip: str = ATTACKER, in_body: bool = False):
    data = {"grant_type": "refresh_token", "refresh_token": token}
    if in_body:
        return Client(REMOTE_ADDR=ip).post(
            "/oauth/token", {**data, "client_id": app.client_id, "client_secret": secret}
        )
    return Client(REMOTE_ADDR=ip).post("/oauth/token", data, HTTP_AUTHORIZATION=basic(app.client_id, secret))


@pytest.mark.parametrize("in_body", [False, True], ids=["basic", "body"])
def test_the_token_endpoint_locks_a_client_guessed_from_one_address(app, in_body):
    token = refresh_token(app)
    for attempt in range(1, LIMIT):
        response = refresh(app, f"wrong-{attempt}", token, in_body=in_body)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    response = refresh(app, "wrong-last", token, in_body=in_body)
    assert response.status_code == 429
    assert response["Retry-After"] == str(COOL_OFF)
    assert response.json()["error"] == "slow_down"
    assert failures(username=f"oauth-client:{app.client_id}", ip_address=ATTACKER) == LIMIT
    # The right secret from there is refused, and the refresh token is untouched.
    assert refresh(app, SECRET, token, in_body=in_body).status_code == 429
    assert RefreshToken.objects.get(application=app).revoked is None
    # Nothing secret is kept with the failures.
    kept = "".join(a.post_data + a.get_data for a in AccessAttempt.objects.all())
    assert "wrong-" not in kept and token not in kept
    # The client's own server, elsewhere, refreshes as usual.
    response = refresh(app, SECRET, token, ip=ELSEWHERE, in_body=in_body)
    assert response.status_code == 200 and "access_token" in response.json()


def test_the_token_endpoint_lock_lifts_after_the_cool_off(app):
    token = refresh_token(app)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for attempt in range(LIMIT):
            refresh(app, f"wrong-{attempt}", token)
        clock.shift(timedelta(seconds=COOL_OFF + 1))
        response = refresh(app, SECRET, token)
        assert response.status_code == 200 and "access_token" in response.json()


def test_unknown_client_ids_count_against_the_address(app):
    for n in range(ADDRESS_LIMIT - 1):
        response = Client(REMOTE_ADDR=ATTACKER).post(
            "/oauth/token",
            {"grant_type": "refresh_token", "refresh_token": "x"},
            HTTP_AUTHORIZATION=basic(f"c{n}", "s"),
        )
        assert response.status_code == 401
    assert refresh(app, "wrong", "x").status_code == 429
    assert refresh(app, SECRET, refresh_token(app)).status_code == 429


def test_revocation_is_limited_too(app):
    for attempt in range(LIMIT):
        response = Client(REMOTE_ADDR=ATTACKER).post(
            "/oauth/revoke_token", {"token": "x"}, HTTP_AUTHORIZATION=basic(app.client_id, f"wrong-{attempt}")
        )
    assert response.status_code == 429 and response.json()["error"] == "slow_down"
    assert refresh(app, SECRET, refresh_token(app)).status_code == 429  # one count for the client, any endpoint


def test_a_right_secret_is_not_counted(app):
    for _ in range(LIMIT + 1):
        response = refresh(app, SECRET, refresh_token(app))
        assert response.status_code == 200
    assert not AccessAttempt.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_oauth_client_library_is_told_to_slow_down(live_server, monkeypatch, app):
    """requests-oauthlib, as a client's server would use it, refreshing over HTTP with a guessed secret."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the live server speaks http
    token = refresh_token(app)
    answers = []

    def session() -> OAuth2Session:
        client = OAuth2Session(app.client_id)
        client.register_compliance_hook("refresh_token_response", lambda r: answers.append(r) or r)
        return client

    url = f"{live_server.url}/oauth/token"
    for attempt in range(LIMIT - 1):
        with pytest.raises(InvalidClientError):
            session().refresh_token(url, refresh_token=token, auth=HTTPBasicAuth(app.client_id, f"wrong-{attempt}"))
    for secret in ("wrong-last", SECRET):
        with pytest.raises(CustomOAuth2Error) as refused:
            session().refresh_token(url, refresh_token=token, auth=HTTPBasicAuth(app.client_id, secret))
        assert refused.value.error == "slow_down"
        assert answers[-1].status_code == 429 and answers[-1].headers["Retry-After"] == str(COOL_OFF)
    assert RefreshToken.objects.get(application=app).revoked is None
