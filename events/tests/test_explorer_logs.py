"""/logs/, a message's page and the live tail's poll: a signed-in user's own Logster messages, filtered as the API
filters them, paged by cursor; nobody else's, ever."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from events.models import LogMessage

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def web(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def add(owner, minutes_ago=1, **fields):
    values = {"message": "something happened", "severity": 2, "created": NOW - timedelta(minutes=minutes_ago)}
    return LogMessage.objects.create(owner=owner, **{**values, **fields})


def shown(response) -> list[int]:
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'class="log-item" data-pk="(\d+)"', response.content.decode())]


def test_it_asks_an_anonymous_visitor_to_sign_in(db):
    r = Client().get("/logs/?q=disk")
    assert r.status_code == 302
    assert r["Location"] == "/accounts/login/?next=/logs/%3Fq%3Ddisk"
    assert Client().get("/logs/tail").status_code == 302
    assert Client().get("/logs/histogram").status_code == 302


def test_it_lists_ones_own_messages_newest_first(web, alice, charlie):
    old = add(alice, 30, message="Disk almost full", application="shop", severity=3)
    new = add(alice, 5, message="Payment refused", exception="System.InvalidOperationException: no card\nat X")
    add(charlie, 10, message="charlie's secret")
    r = web.get("/logs/")
    assert shown(r) == [new.pk, old.pk]
    html = r.content.decode()
    assert "Disk almost full" in html and "Payment refused" in html
    assert "System.InvalidOperationException: no card" in html  # the exception's first line
    assert "charlie&#x27;s secret" not in html and "charlie's secret" not in html
    assert 'data-chart="/logs/histogram?"' in html  # the histogram comes after the page


def test_the_histogram_counts_the_chosen_messages_by_severity(web, alice, charlie):
    add(alice, 5, severity=4)
    add(alice, 6, severity=4)
    add(alice, 7, severity=3)
    add(alice, 8, severity=1, application="stock")
    add(alice, 60 * 24 * 8, severity=4)  # before the 7 days asked for
    add(charlie, 5, severity=4)
    assert "Last 24 h" in web.get("/logs/histogram").content.decode()  # the default
    r = web.get("/logs/histogram?range=7d")
    assert r.status_code == 200
    html = r.content.decode()
    assert "4 messages" in html and "Last 7 d" in html and "bars of 3 h" in html
    assert "2 errors, 1 warnings, 1 info and below" in html  # the last bar's title
    assert "1 message" in web.get("/logs/histogram?application=stock&range=1h").content.decode()
    bars = web.get("/logs/histogram?range=15m").content.decode()
    assert "bars of 1 min" in bars and "range=15m" not in bars
    assert 'href="?since=2026-03-02T11%3A55&amp;until=2026-03-02T11%3A56"' in bars  # a bar is a link to its minute
    assert web.get("/logs/histogram?severity=x").status_code == 400
    assert "No messages" in web.get("/logs/histogram?q=nothing").content.decode()


def test_it_filters_as_the_api_does(web, alice):
    error = add(alice, 1, message="Timeout talking to the bank", severity=4, application="shop", user="u1")
    add(alice, 2, message="Timeout in the cache", severity=2, application="shop")
    add(alice, 3, message="Timeout at the warehouse", severity=5, application="stock")
    add(alice, 60 * 24 * 8, message="Timeout long ago", severity=5, application="shop")
    assert shown(web.get("/logs/?severity=4&application=shop")) == [error.pk]
    assert shown(web.get("/logs/?user=u1")) == [error.pk]
    assert len(shown(web.get("/logs/?range=15m"))) == 3
    assert len(shown(web.get("/logs/?range=all"))) == 4
    custom = web.get("/logs/?since=2026-03-02T11:56&until=2026-03-02T11:58")
    assert shown(custom) == [LogMessage.objects.get(message="Timeout at the warehouse").pk]
    assert "2 Mar 2026 11:56 to 2 Mar 2026 11:58 UTC" in custom.content.decode()


def test_it_searches_the_text_and_marks_the_words_found(web, alice):
    found = add(alice, message="Payments failed for <b>Garage.Frobnicator</b>", stack_trace="at Shop.Pay()")
    add(alice, message="All good")
    r = web.get("/logs/?q=failing+frobnicator")
    assert shown(r) == [found.pk]
    html = r.content.decode()
    assert "Payments <mark>failed</mark> for &lt;b&gt;Garage.<mark>Frobnicator</mark>&lt;/b&gt;" in html
    assert shown(web.get("/logs/?q=shop")) == [found.pk]  # the stack trace is searched too
    assert shown(web.get("/logs/?q=payments+-frobnicator")) == []


def test_it_shows_a_bad_filter_as_a_notice_not_a_500(web, alice):
    add(alice)
    r = web.get("/logs/?severity=9")
    assert r.status_code == 200
    assert "severity: Must be a whole number from 0 to 6." in r.content.decode()
    assert shown(r) == []
    r = web.get("/logs/?cursor=nonsense")
    assert r.status_code == 200 and "Use the Next link of a previous page." in r.content.decode()


def test_it_pages_by_cursor_both_ways(web, alice):
    messages = [add(alice, minutes_ago=n, message=f"m{n}") for n in range(1, 121)]  # m1 is the newest
    first = web.get("/logs/")
    assert shown(first) == [m.pk for m in messages[:50]]
    older = re.search(r'href="(\?cursor=[^"]+)" rel="next"', first.content.decode())
    assert older and 'rel="prev"' not in first.content.decode()
    second = web.get("/logs/" + older.group(1).replace("&amp;", "&"))
    assert shown(second) == [m.pk for m in messages[50:100]]
    newer = re.search(r'href="(\?before=[^"]+)" rel="prev"', second.content.decode())
    assert newer
    assert shown(web.get("/logs/" + newer.group(1).replace("&amp;", "&"))) == [m.pk for m in messages[:50]]
    third = web.get("/logs/" + re.findall(r'href="(\?cursor=[^"]+)"', second.content.decode())[0].replace("&amp;", "&"))
    assert shown(third) == [m.pk for m in messages[100:]]
    assert 'rel="next"' not in third.content.decode()


def test_a_page_deep_in_runs_the_same_few_queries(web, alice, django_assert_max_num_queries):
    for n in range(1, 130):
        add(alice, minutes_ago=n)
    first = web.get("/logs/")
    cursor = re.search(r'href="(\?cursor=[^"]+)" rel="next"', first.content.decode())
    assert cursor
    with django_assert_max_num_queries(8):
        assert len(shown(web.get("/logs/" + cursor.group(1)))) == 50


def test_a_message_page_lays_out_its_exception_and_what_happened_around_it(web, alice, charlie):
    before = add(alice, 3, message="Cart opened", application="shop")
    message = add(
        alice,
        2,
        message="Payment refused",
        application="shop",
        category="payments",
        user="u7",
        severity=4,
        exception="System.InvalidOperationException: no card",
        stack_trace="System.InvalidOperationException: no card\n   at Shop.Pay() in Pay.cs:line 12\n   at Shop.Main()",
    )
    after = add(alice, 1, message="Retry scheduled", application="shop")
    add(alice, 1, message="Other app's line", application="stock")
    other = add(charlie, 2, message="charlie's", application="shop")
    r = web.get(f"/logs/{message.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    assert '<h1 class="message-text">Payment refused</h1>' in html
    assert '<span class="frame">   at Shop.Pay() in Pay.cs:line 12</span>' in html
    assert "Error" in html and "payments" in html and "u7" in html
    assert f'value="http://testserver/logs/{message.pk}/"' in html  # the copyable link
    around = html[html.index('id="around"') :]
    assert f"/logs/{before.pk}/" in around and f"/logs/{after.pk}/" in around
    assert "Other app" not in around and "charlie" not in around
    assert web.get(f"/logs/{other.pk}/").status_code == 404  # charlie's
    assert web.get("/logs/999999/").status_code == 404


def test_the_tail_answers_what_is_newer_than_the_cursor_with_the_filters(web, alice, charlie):
    first = add(alice, 2, message="first", application="shop")
    page = web.get("/logs/?application=shop&follow=1").content.decode()
    cursor = re.search(r'data-cursor="([^"]*)"', page)
    assert cursor and 'id="follow"' in page and "checked" in page
    assert web.get(f"/logs/tail?application=shop&after={cursor.group(1)}").json()["ids"] == [first.pk]  # overlap
    new = add(alice, 0, message="a new one", application="shop")
    add(alice, 0, message="another app's", application="stock")
    add(charlie, 0, message="charlie's", application="shop")
    answer = web.get(f"/logs/tail?application=shop&after={cursor.group(1)}").json()
    assert answer["ids"] == [new.pk, first.pk]
    assert "a new one" in answer["html"] and "charlie" not in answer["html"]
    assert answer["cursor"] != cursor.group(1)
    # What the page has already is not drawn again: only the ids of the window are
    again = web.get(f"/logs/tail?application=shop&after={answer['cursor']}&seen={new.pk},{first.pk}").json()
    assert again["ids"] == [new.pk] and again["html"].strip() == "" and again["cursor"] == answer["cursor"]
    late = add(alice, 0, message="late", application="shop")
    again = web.get(f"/logs/tail?application=shop&after={answer['cursor']}&seen={new.pk},x,").json()
    assert again["ids"] == [late.pk, new.pk] and "late" in again["html"] and "a new one" not in again["html"]
    assert web.get("/logs/tail?after=bad").status_code == 400
