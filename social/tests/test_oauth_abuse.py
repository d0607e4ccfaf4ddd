"""Attacks on littlelogs' OAuth2 provider that test_oauth.py does not already try, over HTTP against the live
test server: open redirects, code replay (also concurrent), PKCE tricks, another client's refresh token,
and access tokens anywhere but the Authorization header.

Already covered there: redirect URIs with an added query, a trailing slash, another path, port or host, a
fragment or userinfo before the host; a public client without PKCE or with `plain`; a missing or wrong
verifier for a confidential client; the PKCE downgrade; refresh-token rotation and reuse (the whole family is
revoked); `?access_token=` on a test view.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
import requests
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from social.models import Log
from social.tests.test_oauth import (  # noqa: F401 (_plain_http: an autouse fixture)
    REDIRECT_URI,
    SECRET,
    Inputs,
    _plain_http,
    code_for,
    make_app,
    pkce_pair,
    query,
    signed_in,
)

pytestmark = pytest.mark.django_db(transaction=True)

REGISTERED = "https://client.example/callback"
API_SELF = "/api/1/users/$self/"


def authorize(base: str, browser: requests.Session, **params: str) -> requests.Response:
    return browser.get(
        f"{base}/oauth/authorize?{urlencode({'response_type': 'code', **params})}", allow_redirects=False
    )


def exchange(base: str, app, code: str, **extra: str) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, **extra}
    return requests.post(f"{base}/oauth/token", data, auth=(app.client_id, SECRET))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- Open redirects: the error page is ours, the browser is never sent elsewhere ------------------------------


@pytest.mark.parametrize(
    "asked",
    [
        "https://client.example@evil.example/callback",  # userinfo: the host is evil.example
        "https://client.example\\@evil.example/callback",  # a backslash some URL parsers read as a slash
        "https://client.example%2eevil.example/callback",
        "https://client.example.evil.example/callback",
        "https://evil.client.example/callback",
        "https://client.example/callback/../evil",
        "https://client.example/evil/../callback",  # normalises to the registered URI: still not it
        "https://client.example/callback/..%2Fevil",
        "http://client.example/callback",  # downgraded to http
        "https://client.example:443/callback",
        "https://client.example/callback?",
        "//evil.example/callback",
        "https:client.example/callback",
    ],
)
def test_a_redirect_uri_other_than_the_registered_one_is_refused_on_our_page(live_server, alice, asked):
    app = make_app(alice, redirect_uris=REGISTERED)
    answer = authorize(live_server.url, signed_in(live_server.url), client_id=app.client_id, redirect_uri=asked)
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert not Grant.objects.exists()


@pytest.mark.parametrize(
    "asked",
    [
        "http://127.0.0.1.evil.example:8765/callback",
        "http://127.0.0.1@evil.example:8765/callback",
        "http://localhost:8765/callback",  # a name, which DNS or /etc/hosts may point anywhere
        "http://[::1]:8765/callback",  # another loopback host than the registered one
        "http://127.0.0.1:8765/other",
        "https://127.0.0.1:8765/callback",
    ],
)
def test_only_the_port_of_a_registered_loopback_uri_may_vary(live_server, alice, asked):
    app = make_app(alice)  # REDIRECT_URI, http://127.0.0.1:8765/callback
    browser = signed_in(live_server.url)
    answer = authorize(live_server.url, browser, client_id=app.client_id, redirect_uri=asked)
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    other_port = authorize(
        live_server.url, browser, client_id=app.client_id, redirect_uri=REDIRECT_URI.replace("8765", "9999")
    )
    assert other_port.status_code == 200  # RFC 8252 §7.3: the control


@pytest.mark.parametrize(
    "params",
    [
        {"scope": "bogus"},
        {"response_type": "token"},
        {"client_id": "no-such-client"},
    ],
    ids=["bad-scope", "implicit-grant", "unknown-client"],
)
def test_an_error_with_an_unregistered_redirect_uri_is_not_redirected(live_server, alice, params):
    """The authorization server as an open redirector (RFC 9700 §4.11.2): errors go back to a trusted URI only."""
    app = make_app(alice, redirect_uris=REGISTERED)
    asked = {"client_id": app.client_id, "redirect_uri": "https://evil.example/callback", **params}
    answer = authorize(live_server.url, signed_in(live_server.url), **asked)
    assert answer.status_code == 400
    assert "Location" not in answer.headers


def test_a_redirect_uri_swapped_in_the_consent_form_is_refused(live_server, alice):
    app = make_app(alice, redirect_uris=REGISTERED)
    base = live_server.url
    browser = signed_in(base)
    url = f"{base}/oauth/authorize?{urlencode({'response_type': 'code', 'client_id': app.client_id, 'redirect_uri': REGISTERED})}"
    fields = Inputs(browser.get(url).text).values
    assert fields["redirect_uri"] == REGISTERED
    answer = browser.post(
        url, data={**fields, "allow": "Authorize", "redirect_uri": "https://evil.example/cb"}, allow_redirects=False
    )
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert not Grant.objects.exists()


# --- Authorization codes are single-use ------------------------------------------------------------------


def test_a_used_code_is_refused(live_server, alice):
    """RFC 6749 §4.1.2: a second use MUST fail, and SHOULD revoke the tokens issued from the code. The toolkit
    deletes the grant on first use, so a replay looks like an unknown code: it is refused, but the first
    tokens stay valid (the toolkit keeps no link from a code to its tokens)."""
    app = make_app(alice)
    base = live_server.url
    code = code_for(signed_in(base), base, app.client_id)
    first = exchange(base, app, code)
    assert first.status_code == 200
    replay = exchange(base, app, code)
    assert replay.status_code == 400 and replay.json() == {"error": "invalid_grant"}
    assert AccessToken.objects.count() == 1 and RefreshToken.objects.count() == 1
    assert requests.get(f"{base}{API_SELF}", headers=bearer(first.json()["access_token"])).status_code == 200


def test_a_code_replayed_concurrently_gets_one_token(live_server, alice):
    """Several exchanges of one code at once: one token, the others invalid_grant. Before the token endpoint
    locked the grant, every racer stored a token and the loser could get a 500."""
    app = make_app(alice)
    base = live_server.url
    browser = signed_in(base)
    for _ in range(3):
        code = code_for(browser, base, app.client_id)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(exchange, [base] * 4, [app] * 4, [code] * 4))
        assert sorted(r.status_code for r in answers) == [200, 400, 400, 400]
        assert all(r.json() == {"error": "invalid_grant"} for r in answers if r.status_code == 400)
    assert AccessToken.objects.count() == 3 and RefreshToken.objects.count() == 3


def test_another_clients_code_is_refused(live_server, alice, charlie):
    app, other = make_app(alice), make_app(charlie, name="Charlie's app")
    base = live_server.url
    code = code_for(signed_in(base), base, app.client_id)
    stolen = exchange(base, other, code)
    assert stolen.status_code == 400 and stolen.json() == {"error": "invalid_grant"}
    assert not AccessToken.objects.exists()
    assert exchange(base, app, code).status_code == 200  # the code was not spent by the attempt


# --- PKCE ------------------------------------------------------------------------------------------------


def test_a_public_clients_wrong_verifier_is_refused(live_server, alice):
    public = make_app(alice, "public")
    base = live_server.url
    verifier, challenge = pkce_pair()
    code = code_for(signed_in(base), base, public.client_id, code_challenge=challenge, code_challenge_method="S256")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": public.client_id,
    }
    # Another verifier, and the challenge itself (what "plain" would compare): an eavesdropper's two guesses.
    for wrong in ("x" * 50, challenge):
        answer = requests.post(f"{base}/oauth/token", {**data, "code_verifier": wrong})
        assert answer.status_code == 400 and answer.json() == {"error": "invalid_grant"}
    assert not AccessToken.objects.exists()
    assert requests.post(f"{base}/oauth/token", {**data, "code_verifier": verifier}).status_code == 200


# --- Refresh tokens --------------------------------------------------------------------------------------


def test_another_clients_refresh_token_is_refused_and_spares_the_owner(live_server, alice, charlie):
    app, other = make_app(alice), make_app(charlie, name="Charlie's app")
    base = live_server.url
    token = exchange(base, app, code_for(signed_in(base), base, app.client_id)).json()
    stolen = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(other.client_id, SECRET),
    )
    assert stolen.status_code == 400 and stolen.json() == {"error": "invalid_grant"}
    assert AccessToken.objects.filter(application=other).count() == 0
    assert requests.get(f"{base}{API_SELF}", headers=bearer(token["access_token"])).status_code == 200
    own = requests.post(
        f"{base}/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(app.client_id, SECRET),
    )
    assert own.status_code == 200


# --- Access tokens travel in the Authorization header only -----------------------------------------------


def test_an_access_token_outside_the_header_does_not_authenticate_on_the_api(live_server, alice):
    app = make_app(alice)
    base = live_server.url
    token = exchange(base, app, code_for(signed_in(base), base, app.client_id)).json()["access_token"]

    assert requests.get(f"{base}{API_SELF}", params={"access_token": token}).status_code == 401
    in_query = requests.post(f"{base}/api/1/logs/create/?access_token={token}", data={"content": "via the query"})
    assert in_query.status_code == 401
    in_form = requests.post(f"{base}/api/1/logs/create/", data={"access_token": token, "content": "via a form field"})
    assert in_form.status_code == 401
    assert in_form.json() == {"detail": "Authentication credentials were not provided."}
    jsonp = requests.get(f"{base}{API_SELF}", params={"callback": "f", "access_token": token})
    assert jsonp.status_code == 401
    assert not Log.objects.exists()

    in_header = requests.post(f"{base}/api/1/logs/create/", data={"content": "via the header"}, headers=bearer(token))
    assert in_header.status_code == 201
    assert list(Log.objects.values_list("markdown", flat=True)) == ["via the header"]
