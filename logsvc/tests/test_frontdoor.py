"""The front door at "/": the five APIs with ready curl lines for anyone; the signed-in user's own sites, log
messages, events and littlelogs, and never another user's. Also the favicon and the offline API reference."""

from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from analytics.models import Domain, Site
from events.models import Event, LogMessage
from logsvc.models import ApiKey
from social import services

FIVE = ["Logster", "Bytelog", "Loggator", "littlelogs", "GoatCounter"]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cards(page: str) -> dict[str, str]:
    """API name -> the HTML of its card."""
    return dict(re.findall(r'<li class="card api-card" data-api="(\w+)">(.*?)</li>', page, re.DOTALL))


def test_a_stranger_sees_the_five_apis_with_curl_lines_and_a_way_to_sign_in(client, db):
    r = client.get("/")

    assert r.status_code == 200
    page = r.content.decode()
    assert list(cards(page)) == FIVE
    assert 'href="/accounts/login/?next=/"' in page
    for name, card in cards(page).items():
        assert f'href="/api.html#tag/{name}"' in card
        assert "curl -s " in html.unescape(card) and "http://testserver/" in html.unescape(card)
    assert "Needs an API key with <code>logs:write</code>" in cards(page)["Logster"]
    assert "Your sites" not in page and "Your log messages" not in page


def test_the_curl_lines_run_as_shown(client, alice, db):
    # The Bytelog line, with $KEY set to a key of the right scope, stores what it says
    raw = ApiKey.create(user=alice, name="shop server", scopes=["events:write"])[1]
    line = html.unescape(cards(client.get("/").content.decode())["Bytelog"])
    body = re.search(r"-d '(.*?)'", line, re.DOTALL).group(1)
    r = client.post("/api/v1/events", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 201
    assert Event.objects.get(owner=alice).data == {"button": "sign up"}


def test_it_names_the_signed_in_users_keys_that_can_run_each_line(alice, charlie):
    ApiKey.create(user=alice, name="shop server", scopes=["logs:write", "events:write"])
    ApiKey.create(user=alice, name="stats reader", scopes=["stats"])
    revoked, _ = ApiKey.create(user=alice, name="old laptop", scopes=["logs:write"])
    revoked.revoked = revoked.created
    revoked.save()
    ApiKey.create(user=charlie, name="charlies key", scopes=["logs:write", "stats"])

    page = signed_in(alice).get("/").content.decode()

    shown = cards(page)
    assert 'class="key-name">shop server<' in shown["Logster"] and "stats reader" not in shown["Logster"]
    assert 'class="key-name">shop server<' in shown["Bytelog"]
    assert 'class="key-name">stats reader<' in shown["GoatCounter"] and "shop server" not in shown["GoatCounter"]
    assert "old laptop" not in page and "charlies key" not in page
    assert "api-keys" not in shown["littlelogs"]  # no key needed


def test_it_tells_a_user_without_a_key_how_to_make_one(alice):
    card = cards(signed_in(alice).get("/").content.decode())["Logster"]
    assert "You have no key with <code>logs:write</code> yet" in card
    assert "manage.py createapikey alice --scope logs:write" in card


def test_it_shows_the_users_own_sites_logs_events_and_littlelogs(alice, charlie):
    site = Site.objects.create(code="alices-blog", owner=alice)
    Domain.objects.create(site=site, domain="blog.alice.example")
    Site.objects.create(code="charlies-shop", owner=charlie)
    LogMessage.objects.create(owner=alice, message="Disk almost full", severity=3, application="shop")
    LogMessage.objects.create(owner=charlie, message="charlie's secret message", severity=5)
    Event.objects.create(owner=alice, name="paypal_payment", trace_id="03758690")
    Event.objects.create(owner=charlie, name="charlies_event")
    services.create_log(user=alice, markdown="Shipped the #frontdoor")
    services.create_log(user=charlie, markdown="charlie's own log")

    page = signed_in(alice).get("/").content.decode()

    assert 'href="/sites/alices-blog/"' in page and "blog.alice.example" in page
    assert "Disk almost full" in page and 'data-count="logs">1<' in page
    assert "paypal_payment" in page and "trace 03758690" in page and 'data-count="events">1<' in page
    assert f'href="/api/events/{Event.objects.get(name="paypal_payment").uid}.json"' in page
    assert "Shipped the #frontdoor" in page and 'href="/alice"' in page
    assert "charlie" not in page.replace("charlie's", "")  # nothing of charlie's, by any name
    assert "charlies" not in page and "secret" not in page and "own log" not in page


def test_an_empty_account_gets_a_hint_in_each_panel(alice):
    page = signed_in(alice).get("/").content.decode()
    assert "No sites yet" in page
    assert "No log messages yet" in page and "No events yet" in page and "No logs yet" in page


def test_it_reads_a_fixed_number_of_queries_whatever_the_data(alice):
    client = signed_in(alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/").status_code == 200
        return len(captured)

    def add(n: int) -> None:
        Site.objects.create(code=f"site-{n}", owner=alice)
        LogMessage.objects.create(owner=alice, message=f"message {n}", severity=n % 7)
        Event.objects.create(owner=alice, name=f"event-{n}", trace_id="t")
        services.create_log(user=alice, markdown=f"log {n} #tag{n}")
        ApiKey.create(user=alice, name=f"key {n}", scopes=["logs:write"])

    add(0)
    one = queries()
    for n in range(1, 9):
        add(n)
    assert queries() == one


def test_a_huge_log_count_is_shown_as_more_than_ten_thousand(alice, monkeypatch):
    from events import panels

    monkeypatch.setattr(panels, "COUNT_UP_TO", 3)
    LogMessage.objects.bulk_create([LogMessage(owner=alice, message="m", severity=1) for _ in range(5)])
    assert 'data-count="logs">3+<' in signed_in(alice).get("/").content.decode()


# --- the favicon and the reference ----------------------------------------------------------------


def test_every_page_has_a_favicon_from_this_server(client, db):
    for url in ("/", "/api.html", "/accounts/login/"):
        page = client.get(url).content.decode()
        if url == "/accounts/login/" and "favicon" not in page:
            continue  # the login page names none: the browser asks for /favicon.ico
        assert re.search(r'<link rel="icon" href="/static/logsvc/favicon\.svg"', page), url
    r = client.get("/favicon.ico")
    assert r.status_code == 302 and r["Location"] == "/static/logsvc/favicon.svg"


def test_the_reference_may_load_nothing_from_another_server(client, db):
    # Redoc draws the Redocly logo from cdn.redoc.ly: the policy keeps the browser from fetching it
    policy = client.get("/api.html")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    assert "http" not in policy and "*" not in policy


@pytest.mark.parametrize("name", FIVE)
def test_the_reference_groups_every_operation_under_one_of_the_five_apis(client, db, name):
    schema = client.get("/api.json").json()
    assert [tag["name"] for tag in schema["tags"]] == FIVE
    assert name in schema["info"]["description"]
    tags = {tuple(op["tags"]) for item in schema["paths"].values() for op in item.values()}
    assert tags == {(family,) for family in FIVE}
