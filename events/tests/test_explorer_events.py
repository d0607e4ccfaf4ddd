"""/events/ and a trace's page: a signed-in user's own Bytelog events, filtered by name, time and data, each with
its trace and its public Loggator link; nobody else's, ever."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from events.models import Event

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


def add(owner, seconds_ago=60, **fields):
    values = {"name": "click", "date": NOW - timedelta(seconds=seconds_ago)}
    return Event.objects.create(owner=owner, **{**values, **fields})


def shown(response) -> list[str]:
    assert response.status_code == 200
    return re.findall(r'class="event-item" data-uid="([\w-]+)"', response.content.decode())


def test_it_asks_an_anonymous_visitor_to_sign_in(db):
    assert Client().get("/events/")["Location"] == "/accounts/login/?next=/events/"
    assert Client().get("/events/trace/t1")["Location"] == "/accounts/login/?next=/events/trace/t1"


def test_it_lists_ones_own_events_newest_first_with_their_links(web, alice, charlie):
    old = add(alice, 120, name="signup", trace_id="t1", data={"plan": "pro"})
    new = add(alice, 60, name="paypal_payment", trace_id="t1", data={"amount": 12})
    add(charlie, 30, name="charlies_event", trace_id="t1")
    r = web.get("/events/")
    assert shown(r) == [new.uid, old.uid]
    html = r.content.decode()
    assert "charlies_event" not in html
    assert 'href="/events/trace/t1"' in html
    assert f'href="http://testserver/api/events/{new.uid}.json"' in html  # its Loggator link
    assert "{&quot;plan&quot;: &quot;pro&quot;}" in html
    assert "2 events" in web.get("/events/histogram").content.decode()


def test_it_filters_by_name_time_and_data(web, alice):
    pro = add(alice, 10, name="signup", data={"plan": "pro", "source": "ad"})
    free = add(alice, 20, name="signup", data={"plan": "free", "count": 3})
    other = add(alice, 30, name="click", data={"button": "Pro plan"})
    ancient = add(alice, 86400 * 10, name="signup", data={})
    assert shown(web.get("/events/?name=signup")) == [pro.uid, free.uid]
    assert shown(web.get("/events/?name=signup&range=all")) == [pro.uid, free.uid, ancient.uid]
    assert shown(web.get("/events/?data=plan%3Dpro")) == [pro.uid]
    assert shown(web.get("/events/?data=count%3D3")) == [free.uid]
    assert shown(web.get("/events/?data=pro")) == [pro.uid, other.uid]  # in the JSON's text, any case
    assert shown(web.get("/events/?start=2026-03-02T11:59:35&end=2026-03-02T11:59:45")) == [free.uid]
    bad = web.get("/events/?start=yesterday")
    assert bad.status_code == 200 and shown(bad) == []
    assert "start: Use a date as YYYY-MM-DD" in bad.content.decode()


def test_it_pages_by_cursor(web, alice):
    events = [add(alice, n, name=f"e{n}") for n in range(1, 61)]
    first = web.get("/events/")
    assert shown(first) == [e.uid for e in events[:50]]
    older = re.search(r'href="(\?cursor=[^"]+)" rel="next"', first.content.decode())
    assert older
    assert shown(web.get("/events/" + older.group(1))) == [e.uid for e in events[50:]]


def test_a_trace_draws_its_events_in_order_with_the_gaps(web, alice, charlie):
    start = add(alice, 10, name="checkout_started", trace_id="order/42")
    paid = add(alice, 7.5, name="paypal_payment", trace_id="order/42", data={"amount": 12})
    shipped = add(alice, 0, name="shipped", trace_id="order/42")
    add(charlie, 5, name="charlies_step", trace_id="order/42")
    r = web.get("/events/trace/order/42")
    assert r.status_code == 200
    html = r.content.decode()
    names = re.findall(r'<div class="wf-label">\s*<strong>(\w+)</strong>', html)
    assert names == ["checkout_started", "paypal_payment", "shipped"]
    assert "charlies_step" not in html
    assert "+2.5 s · gap 2.5 s" in html and "+10 s · gap 7.5 s" in html
    assert 'style="left: 25.0%"' in html  # paypal_payment, 2.5 s into 10
    assert f"/api/events/{paid.uid}.json" in html and start.uid in html and shipped.uid in html
    assert "&quot;amount&quot;: 12" in html


def test_another_users_trace_is_a_404(web, charlie):
    add(charlie, 5, name="secret", trace_id="t9")
    r = web.get("/events/trace/t9")
    assert r.status_code == 404
    assert "secret" not in r.content.decode()
