"""littlelogs' OAuth2 provider, driven end to end over HTTP against the running test server.

The browser is a requests.Session (signs in with the login form and its CSRF token, answers the
consent page); the client app is requests-oauthlib's OAuth2Session, as a third-party developer would use it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib.auth.hashers import check_password
from oauth2_provider.models import AccessToken, Application, RefreshToken
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError
from requests_oauthlib import OAuth2Session

from logsvc.models import User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("social.tests.oauth_urls")]

REDIRECT_URI = "http://127.0.0.1:8765/callback"  # a native app's loopback listener (RFC 8252)
SECRET = "s3cr3t-" + "x" * 40
ME = "/oauth-test/self/"  # OAuth2Authentication + TokenHasReadWriteScope (social/tests/oauth_urls.py)
API_SELF = "/api/1/users/$self/"  # the real littlelogs API
TOKEN_KEYS = {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
MONTH = 30 * 24 * 60 * 60


@pytest.fixture(autouse=True)
def _plain_http(settings, monkeypatch):
    # The live server speaks http: cookies may not be Secure-only, and oauthlib must allow http.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", email="alice@example.org", password="alice-password")


@pytest.fixture
def charlie(db) -> User:
    return User.objects.create_user("charlie", email="charlie@example.org", password="charlie-password")


def make_app(owner: User, client_type: str = "confidential", redirect_uris: str = REDIRECT_URI, **fields):
    fields = {"name": f"{client_type} app", "client_secret": SECRET, **fields}
    return Application.objects.create(
        user=owner,
        client_type=client_type,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=redirect_uris,
        **fields,
    )


@pytest.fixture
def app(alice):
    return make_app(alice)


@pytest.fixture
def public_app(alice):
    return make_app(alice, "public")


class Inputs(HTMLParser):
    """name -> value of every <input> on a page (hidden fields, the CSRF token, a read-only secret)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") and attrs.get("type") != "submit":
            self.values[attrs["name"]] = attrs.get("value") or ""


class Errors(HTMLParser):
    """The messages of a form page's error lists."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.depth = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "ul" and "errorlist" in (dict(attrs).get("class") or ""):
            self.depth = 1
        elif self.depth and tag == "li":
            self.messages.append("")

    def handle_endtag(self, tag):
        if tag == "ul":
            self.depth = 0

    def handle_data(self, data):
        if self.depth and self.messages:
            self.messages[-1] += data


def signed_in(base: str, username: str = "alice", password: str = "alice-password") -> requests.Session:
    """A browser session, signed in through the login form."""
    browser = requests.Session()
    page = browser.get(f"{base}/accounts/login/")
    assert page.status_code == 200
    csrf = Inputs(page.text).values["csrfmiddlewaretoken"]
    answer = browser.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    assert "sessionid" in browser.cookies
    return browser


def consent(browser: requests.Session, authorize_url: str, allow: bool = True) -> str:
    """Open the consent page, answer it, and return where the browser is sent (not followed)."""
    page = browser.get(authorize_url, allow_redirects=False)
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"), page.text[:500])
    fields = Inputs(page.text).values
    if allow:
        fields["allow"] = "Authorize"
    answer = browser.post(authorize_url, data=fields, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["Location"]


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def bearer(base: str, token: str, method: str = "GET") -> requests.Response:
    return requests.request(method, f"{base}{ME}", headers={"Authorization": f"Bearer {token}"})


def code_for(browser, base, client_id, redirect_uri=REDIRECT_URI, scope="read write", **extra) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope}
    location = consent(browser, f"{base}/oauth/authorize?{urlencode({**params, **extra})}")
    assert location.startswith(redirect_uri + "?"), location
    return query(location)["code"]


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# The whole flow, as the seed describes it, with a real OAuth2 client library.


def test_authorization_code_flow_end_to_end(live_server, app, alice):
    base = live_server.url
    browser = signed_in(base)
    client = OAuth2Session(app.client_id, redirect_uri=REDIRECT_URI, scope=["read", "write"])
    authorize_url, state = client.authorization_url(f"{base}/oauth/authorize")

    callback = consent(browser, authorize_url)
    assert callback.startswith(REDIRECT_URI + "?")
    params = query(callback)
    assert params["state"] == state and params["code"]
    assert params["iss"] == base  # RFC 9207 mix-up defence

    token = client.fetch_token(
        f"{base}/oauth/token", authorization_response=callback, client_secret=SECRET, include_client_id=True
    )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == ["read", "write"]
    assert MONTH - 5 <= token["expires_in"] <= MONTH
    me = client.get(f"{base}{API_SELF}")
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "alice"
    assert client.get(f"{base}{ME}").json() == {"username": "alice", "scope": "read write"}
    assert client.post(f"{base}{ME}").status_code == 201

    # Refresh (client_id/client_secret in the body, as the seed): the old pair is dead at once.
    old_access, old_refresh = token["access_token"], token["refresh_token"]
    fresh = client.refresh_token(f"{base}/oauth/token", client_id=app.client_id, client_secret=SECRET)
    assert fresh["access_token"] != old_access and fresh["refresh_token"] != old_refresh
    assert client.get(f"{base}{API_SELF}").status_code == 200
    assert bearer(base, old_access).status_code == 401
    assert requests.get(f"{base}{API_SELF}", headers={"Authorization": f"Bearer {old_access}"}).status_code == 401
    assert RefreshToken.objects.get(token_checksum=hashlib.sha256(old_refresh.encode()).hexdigest()).revoked

    # Replaying the used refresh token is refused, and (reuse protection) ends the whole family.
    with pytest.raises(InvalidGrantError):
        client.refresh_token(
            f"{base}/oauth/token", refresh_token=old_refresh, client_id=app.client_id, client_secret=SECRET
        )
    assert bearer(base, fresh["access_token"]).status_code == 401
    with pytest.raises(InvalidGrantError):
        client.refresh_token(f"{base}/oauth/token", client_id=app.client_id, client_secret=SECRET)


def test_token_answer_is_the_seeds_and_tokens_are_stored_hashed(live_server, app):
    base = live_server.url
    code = code_for(signed_in(base), base, app.client_id)
    answer = requests.post(  # the seed's own example request
        f"{base}/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app.client_id,
            "client_secret": SECRET,
            "redirect_uri": REDIRECT_URI,
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer" and body["scope"] == "read write"
    assert answer.headers["Cache-Control"] == "no-store"
    stored = AccessToken.objects.get()
    assert stored.token == "" and stored.token_checksum == hashlib.sha256(body["access_token"].encode()).hexdigest()

    refreshed = requests.post(
        f"{base}/oauth/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": app.client_id,
            "client_secret": SECRET,
        },
    )
    assert refreshed.status_code == 200 and set(refreshed.json()) == TOKEN_KEYS


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/token/"])
def test_token_endpoint_with_and_without_slash_and_http_basic(live_server, app, path):
    base = live_server.url
    browser = signed_in(base)
    client = OAuth2Session(app.client_id, redirect_uri=REDIRECT_URI, scope=["read"])
    authorize_url, _ = client.authorization_url(f"{base}/oauth/authorize/")  # the slash spelling works too
    callback = consent(browser, authorize_url)
    # No include_client_id: the library sends client_id:client_secret as HTTP Basic.
    token = client.fetch_token(f"{base}{path}", authorization_response=callback, client_secret=SECRET)
    assert token["scope"] == ["read"]
    assert client.get(f"{base}{ME}").status_code == 200


def test_wrong_client_secret_is_refused(live_server, app):
    base = live_server.url
    code = code_for(signed_in(base), base, app.client_id)
    answer = requests.post(
        f"{base}/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app.client_id,
            "client_secret": "wrong",
            "redirect_uri": REDIRECT_URI,
        },
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_read_scope_cannot_write(live_server, app):
    base = live_server.url
    browser = signed_in(base)
    client = OAuth2Session(app.client_id, redirect_uri=REDIRECT_URI, scope=["read"])
    authorize_url, _ = client.authorization_url(f"{base}/oauth/authorize")
    client.fetch_token(
        f"{base}/oauth/token",
        authorization_response=consent(browser, authorize_url),
        client_secret=SECRET,
        include_client_id=True,
    )
    assert client.get(f"{base}{ME}").status_code == 200
    assert client.post(f"{base}{ME}").status_code == 403
    assert client.get(f"{base}{API_SELF}").status_code == 200
    assert client.post(f"{base}/api/1/logs/create/", json={"content": "Hello #oauth"}).status_code == 403


def test_no_token_or_token_in_query_string_is_refused(live_server, app):
    base = live_server.url
    code = code_for(signed_in(base), base, app.client_id)
    token = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(app.client_id, SECRET),
    ).json()["access_token"]
    assert requests.get(f"{base}{ME}").status_code == 401
    assert requests.get(f"{base}{ME}", params={"access_token": token}).status_code == 401  # RFC 9700 §4.3.2
    assert bearer(base, token).status_code == 200


def test_denied_consent_sends_the_user_back_with_an_error(live_server, app):
    base = live_server.url
    params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT_URI, "state": "s1"}
    location = consent(signed_in(base), f"{base}/oauth/authorize?{urlencode(params)}", allow=False)
    assert query(location)["error"] == "access_denied" and query(location)["state"] == "s1"
    assert "code" not in query(location)


# PKCE: required (S256) for public clients, optional for confidential ones, downgrade refused.


def test_public_client_with_pkce_s256(live_server, public_app):
    base = live_server.url
    browser = signed_in(base)
    client = OAuth2Session(public_app.client_id, redirect_uri=REDIRECT_URI, scope=["read", "write"], pkce="S256")
    authorize_url, _ = client.authorization_url(f"{base}/oauth/authorize")
    assert query(authorize_url)["code_challenge_method"] == "S256"
    callback = consent(browser, authorize_url)
    token = client.fetch_token(f"{base}/oauth/token", authorization_response=callback, include_client_id=True)
    assert set(TOKEN_KEYS) <= set(token)
    assert client.get(f"{base}{ME}").status_code == 200
    # The public client refreshes without a secret, and rotation applies to it too.
    fresh = client.refresh_token(f"{base}/oauth/token", client_id=public_app.client_id)
    assert fresh["refresh_token"] != token["refresh_token"]
    assert bearer(base, token["access_token"]).status_code == 401


def test_public_client_without_pkce_is_refused(live_server, public_app):
    base = live_server.url
    params = {"response_type": "code", "client_id": public_app.client_id, "redirect_uri": REDIRECT_URI}
    answer = signed_in(base).get(f"{base}/oauth/authorize?{urlencode(params)}", allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(REDIRECT_URI)
    assert query(answer.headers["Location"])["error"] == "invalid_request"
    assert "code" not in query(answer.headers["Location"])


@pytest.mark.parametrize("method", ["plain", None])
def test_pkce_challenge_other_than_s256_is_refused(live_server, public_app, method):
    base = live_server.url
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": public_app.client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
    }
    if method:
        params["code_challenge_method"] = method
    answer = signed_in(base).get(f"{base}/oauth/authorize?{urlencode(params)}", allow_redirects=False)
    assert answer.status_code == 302
    assert query(answer.headers["Location"])["error"] == "invalid_request"


def test_public_client_token_request_without_verifier_is_refused(live_server, public_app):
    base = live_server.url
    _, challenge = pkce_pair()
    code = code_for(signed_in(base), base, public_app.client_id, code_challenge=challenge, code_challenge_method="S256")
    answer = requests.post(
        f"{base}/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": public_app.client_id,
            "redirect_uri": REDIRECT_URI,
        },
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_confidential_client_may_use_pkce(live_server, app):
    base = live_server.url
    verifier, challenge = pkce_pair()
    code = code_for(signed_in(base), base, app.client_id, code_challenge=challenge, code_challenge_method="S256")
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    wrong = requests.post(f"{base}/oauth/token", {**data, "code_verifier": "x" * 50}, auth=(app.client_id, SECRET))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    right = requests.post(f"{base}/oauth/token", {**data, "code_verifier": verifier}, auth=(app.client_id, SECRET))
    assert right.status_code == 200, right.text


def test_pkce_downgrade_is_refused(live_server, app):
    """A confidential client that sent no code_challenge may not send a code_verifier (RFC 9700 §2.1.1)."""
    base = live_server.url
    code = code_for(signed_in(base), base, app.client_id)
    verifier, _ = pkce_pair()
    client = OAuth2Session(app.client_id, redirect_uri=REDIRECT_URI)
    with pytest.raises(InvalidGrantError, match="no code_challenge"):
        client.fetch_token(
            f"{base}/oauth/token",
            code=code,
            code_verifier=verifier,
            client_secret=SECRET,
            include_client_id=True,
        )
    # The same code without the verifier is fine: it was refused for the downgrade, nothing else.
    token = client.fetch_token(f"{base}/oauth/token", code=code, client_secret=SECRET, include_client_id=True)
    assert token["access_token"]


# Redirect URIs: https, or http on loopback; matched exactly.


def test_authorize_refuses_a_registered_non_https_non_loopback_redirect_uri(live_server, alice):
    # Created behind the form's back (e.g. in the admin): /oauth/authorize still refuses it.
    legacy = make_app(alice, redirect_uris="http://client.example/callback")
    base = live_server.url
    params = {"response_type": "code", "client_id": legacy.client_id, "redirect_uri": "http://client.example/callback"}
    answer = signed_in(base).get(f"{base}/oauth/authorize?{urlencode(params)}", allow_redirects=False)
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert "invalid_request" in answer.text


@pytest.mark.parametrize(
    "asked",
    [
        "https://client.example/callback?extra=1",
        "https://client.example/callback/",
        "https://client.example/callback2",
        "https://client.example:444/callback",
        "https://evil.example/callback",
        "https://client.example/callback#frag",
        "https://user@client.example/callback",
    ],
)
def test_redirect_uri_must_match_exactly(live_server, alice, asked):
    registered = make_app(alice, redirect_uris="https://client.example/callback")
    base = live_server.url
    params = {"response_type": "code", "client_id": registered.client_id, "redirect_uri": asked}
    answer = signed_in(base).get(f"{base}/oauth/authorize?{urlencode(params)}", allow_redirects=False)
    assert answer.status_code == 400
    assert "Location" not in answer.headers


def test_loopback_redirect_may_use_any_port_and_https_works(live_server, alice):
    both = make_app(alice, redirect_uris=f"https://client.example/callback {REDIRECT_URI}")
    base = live_server.url
    browser = signed_in(base)
    assert code_for(browser, base, both.client_id, redirect_uri="https://client.example/callback")
    assert code_for(browser, base, both.client_id, redirect_uri="http://127.0.0.1:50123/callback")  # RFC 8252 §7.3


def test_token_redirect_uri_must_match_the_authorization_requests(live_server, alice):
    both = make_app(alice, redirect_uris=f"https://client.example/callback {REDIRECT_URI}")
    base = live_server.url
    code = code_for(signed_in(base), base, both.client_id)
    answer = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://client.example/callback"},
        auth=(both.client_id, SECRET),
    )
    assert answer.status_code == 400


# The consent page.


def test_consent_page_shows_app_and_scopes_and_cannot_be_framed(live_server, app):
    base = live_server.url
    params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT_URI, "scope": "read"}
    page = signed_in(base).get(f"{base}/oauth/authorize?{urlencode(params)}")
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert app.name in page.text
    assert "Read your logs" in page.text and "on your behalf" not in page.text  # only the scope asked for


def test_authorize_needs_a_signed_in_user(live_server, app):
    base = live_server.url
    params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT_URI}
    answer = requests.get(f"{base}/oauth/authorize?{urlencode(params)}", allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/accounts/login/?next=/oauth/authorize")


# The apps page.


def test_apps_page_requires_login(live_server):
    answer = requests.get(f"{live_server.url}/oauth/applications/", allow_redirects=False)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/accounts/login/")


def register(browser, base, **fields) -> requests.Response:
    form = Inputs(browser.get(f"{base}/oauth/applications/register/").text).values
    data = {
        "csrfmiddlewaretoken": form["csrfmiddlewaretoken"],
        "name": "My client",
        "client_type": "confidential",
        "authorization_grant_type": "authorization-code",
        "redirect_uris": "https://client.example/callback",
        "client_secret": form["client_secret"],
        **fields,
    }
    return browser.post(f"{base}/oauth/applications/register/", data=data, allow_redirects=False)


def test_apps_page_registers_an_app_for_the_user(live_server, alice):
    base = live_server.url
    browser = signed_in(base)
    page = browser.get(f"{base}/oauth/applications/register/")
    assert page.status_code == 200 and "Register an app" in page.text
    secret = Inputs(page.text).values["client_secret"]
    assert len(secret) >= 32

    answer = register(
        browser, base, client_secret=secret, redirect_uris=f"https://client.example/callback\n{REDIRECT_URI}"
    )
    assert answer.status_code == 302, answer.text
    created = Application.objects.get()
    assert answer.headers["Location"] == f"/oauth/applications/{created.pk}/"
    assert created.user == alice and created.name == "My client"
    assert created.client_type == "confidential" and created.authorization_grant_type == "authorization-code"
    assert created.redirect_uris == f"https://client.example/callback {REDIRECT_URI}"
    assert created.client_secret != secret and check_password(secret, created.client_secret)  # hashed
    detail = browser.get(f"{base}/oauth/applications/{created.pk}/")
    assert created.client_id in detail.text and secret not in detail.text

    # The secret copied from the form is the one that works at /oauth/token.
    code = code_for(browser, base, created.client_id)
    token = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(created.client_id, secret),
    )
    assert token.status_code == 200, token.text


@pytest.mark.parametrize(
    "redirect_uris",
    ["http://client.example/callback", "https://ok.example/cb http://10.0.0.1/cb", "ftp://client.example/cb", ""],
)
def test_apps_page_refuses_non_https_non_loopback_redirect_uris(live_server, alice, redirect_uris):
    base = live_server.url
    answer = register(signed_in(base), base, redirect_uris=redirect_uris)
    assert answer.status_code == 200  # the form again, with the error
    errors = Errors(answer.text).messages
    assert len(errors) == 1, errors
    assert "Redirect URIs must use https" in errors[0] or "at least one" in errors[0]
    assert not Application.objects.exists()


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9000/cb", "http://[::1]:9000/cb", "http://localhost/cb"])
def test_apps_page_accepts_loopback_http(live_server, alice, uri):
    base = live_server.url
    assert register(signed_in(base), base, redirect_uris=uri).status_code == 302
    assert Application.objects.get().redirect_uris == uri


@pytest.mark.parametrize("field, value", [("authorization_grant_type", "implicit"), ("client_type", "other")])
def test_apps_page_allows_only_authorization_code_and_known_client_types(live_server, alice, field, value):
    base = live_server.url
    answer = register(signed_in(base), base, **{field: value})
    assert answer.status_code == 200 and "errorlist" in answer.text
    assert not Application.objects.exists()


def test_apps_page_shows_only_the_users_own_apps(live_server, alice, charlie):
    mine = make_app(alice)
    theirs = make_app(charlie, name="Charlie's secret app")
    base = live_server.url
    browser = signed_in(base)
    listing = browser.get(f"{base}/oauth/applications/")
    assert listing.status_code == 200
    assert mine.name in listing.text and "Charlie" not in listing.text
    assert browser.get(f"{base}/oauth/applications/{mine.pk}/").status_code == 200
    for path in ("", "update/", "delete/"):
        assert browser.get(f"{base}/oauth/applications/{theirs.pk}/{path}").status_code == 404


def test_apps_page_edits_and_deletes(live_server, alice):
    mine = make_app(alice)
    base = live_server.url
    browser = signed_in(base)
    form = Inputs(browser.get(f"{base}/oauth/applications/{mine.pk}/update/").text).values
    data = {
        "csrfmiddlewaretoken": form["csrfmiddlewaretoken"],
        "name": "Renamed",
        "client_type": "public",
        "authorization_grant_type": "authorization-code",
        "redirect_uris": "http://client.example/cb",
    }
    refused = browser.post(f"{base}/oauth/applications/{mine.pk}/update/", data=data, allow_redirects=False)
    assert refused.status_code == 200 and "errorlist" in refused.text
    data["redirect_uris"] = "https://client.example/cb"
    saved = browser.post(f"{base}/oauth/applications/{mine.pk}/update/", data=data, allow_redirects=False)
    assert saved.status_code == 302
    mine.refresh_from_db()
    assert (mine.name, mine.client_type, mine.redirect_uris) == ("Renamed", "public", "https://client.example/cb")
    deleted = browser.post(
        f"{base}/oauth/applications/{mine.pk}/delete/",
        data={"csrfmiddlewaretoken": form["csrfmiddlewaretoken"]},
        allow_redirects=False,
    )
    assert deleted.status_code == 302 and not Application.objects.exists()


# Revocation and discovery.


def test_revoke_token(live_server, app):
    base = live_server.url
    code = code_for(signed_in(base), base, app.client_id)
    token = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(app.client_id, SECRET),
    ).json()
    answer = requests.post(
        f"{base}/oauth/revoke_token",
        {"token": token["access_token"], "client_id": app.client_id, "client_secret": SECRET},
    )
    assert answer.status_code == 200
    assert bearer(base, token["access_token"]).status_code == 401
    refresh = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(app.client_id, SECRET),
    )
    assert refresh.status_code == 400  # revoking the access token revoked its refresh token too


def test_authorization_server_metadata(live_server):
    meta = requests.get(f"{live_server.url}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == live_server.url
    assert meta["authorization_endpoint"] == f"{live_server.url}/oauth/authorize"
    assert meta["token_endpoint"] == f"{live_server.url}/oauth/token"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert meta["scopes_supported"] == ["read", "write"]


def test_no_scope_asked_means_read(live_server, app):
    base = live_server.url
    params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT_URI}
    code = query(consent(signed_in(base), f"{base}/oauth/authorize?{urlencode(params)}"))["code"]
    token = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(app.client_id, SECRET),
    ).json()
    assert token["scope"] == "read"


def test_user_revokes_an_app_on_the_authorized_apps_page(live_server, app):
    base = live_server.url
    browser = signed_in(base)
    code = code_for(browser, base, app.client_id)
    token = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(app.client_id, SECRET),
    ).json()
    listing = browser.get(f"{base}/oauth/authorized_tokens/")
    assert listing.status_code == 200 and app.name in listing.text
    stored = AccessToken.objects.get()
    page = browser.get(f"{base}/oauth/authorized_tokens/{stored.pk}/delete/")
    csrf = Inputs(page.text).values["csrfmiddlewaretoken"]
    answer = browser.post(
        f"{base}/oauth/authorized_tokens/{stored.pk}/delete/", data={"csrfmiddlewaretoken": csrf}, allow_redirects=False
    )
    assert answer.status_code == 302
    assert bearer(base, token["access_token"]).status_code == 401
    refresh = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(app.client_id, SECRET),
    )
    assert refresh.status_code == 400


def test_access_token_lifetime_comes_from_the_environment():
    script = "from django.conf import settings; print(settings.OAUTH2_PROVIDER['ACCESS_TOKEN_EXPIRE_SECONDS'])"
    # Settings only parse DATABASE_URL; a dummy one keeps the embedded server out of it.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "logsvc.settings", "SECRET_KEY": "x"}
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/none"
    for value, expected in (("3600", "3600"), ("", str(MONTH))):
        env["OAUTH_ACCESS_TOKEN_SECONDS"] = value
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        assert result.stdout.strip() == expected
