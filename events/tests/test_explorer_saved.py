"""Saved searches: a named filter set of /logs/ or /events/, kept per user, listed on its page, its link the
search itself."""

from __future__ import annotations

import base64

from django.test import Client

from events.models import LogMessage, SavedSearch


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_saves_a_search_and_lists_it_on_its_page(alice, charlie):
    web = signed_in(alice)
    r = web.post("/logs/saved/", {"name": "Shop errors", "query": "severity=4&application=shop&cursor=abc&follow=1"})
    assert r.status_code == 302 and r["Location"] == "/logs/?severity=4&application=shop"
    saved = SavedSearch.objects.get()
    assert (saved.owner, saved.page, saved.name, saved.query) == (
        alice,
        "logs",
        "Shop errors",
        "severity=4&application=shop",
    )
    html = web.get("/logs/").content.decode()
    assert (
        '<a href="/logs/?severity=4&amp;application=shop" title="severity=4&amp;application=shop">Shop errors</a>'
        in html
    )
    assert "Shop errors" not in signed_in(charlie).get("/logs/").content.decode()
    assert "Shop errors" not in web.get("/events/").content.decode()


def test_saving_a_name_again_replaces_its_query(alice):
    web = signed_in(alice)
    web.post("/events/saved/", {"name": "Payments", "query": "name=paypal"})
    web.post("/events/saved/", {"name": "Payments", "query": "name=stripe"})
    assert list(SavedSearch.objects.values_list("page", "name", "query")) == [("events", "Payments", "name=stripe")]


def test_it_deletes_only_ones_own(alice, charlie):
    mine = SavedSearch.objects.create(owner=alice, page="logs", name="mine", query="q=x")
    theirs = SavedSearch.objects.create(owner=charlie, page="logs", name="theirs", query="q=y")
    web = signed_in(alice)
    assert web.post(f"/saved/{theirs.pk}/delete/").status_code == 404
    assert web.get(f"/saved/{mine.pk}/delete/").status_code == 405
    r = web.post(f"/saved/{mine.pk}/delete/")
    assert r.status_code == 302 and r["Location"] == "/logs/"
    assert list(SavedSearch.objects.values_list("name", flat=True)) == ["theirs"]


def test_it_needs_a_name_a_page_and_a_signed_in_user(alice):
    web = signed_in(alice)
    assert web.post("/logs/saved/", {"name": "  ", "query": "q=x"})["Location"] == "/logs/?q=x"
    assert web.post("/other/saved/", {"name": "x"}).status_code == 404
    anonymous = Client().post("/logs/saved/", {"name": "x", "query": ""})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert not SavedSearch.objects.exists()


def test_a_saved_search_is_shared_as_its_url(alice, charlie):
    LogMessage.objects.create(owner=charlie, message="charlie's own disk", severity=4)
    LogMessage.objects.create(owner=alice, message="alice's disk", severity=4)
    SavedSearch.objects.create(owner=alice, page="logs", name="disk", query="q=disk")
    html = signed_in(charlie).get("/logs/?q=disk").content.decode()  # the link alice sent: charlie's data only
    assert "charlie&#x27;s own <mark>disk</mark>" in html and "alice" not in html


def test_the_explorer_answers_hostile_parameters_without_a_500(alice):
    """Cursors naming the ends of time or ids past bigint, dates PostgreSQL can't hold, NULs: a page or a 4xx."""
    web = signed_in(alice)
    LogMessage.objects.create(owner=alice, message="m", severity=2)
    cursors = ["2020-01-01|5", "2020-01-01T00:00:00+00:00|99999999999999999999", "9999-12-31T23:59:59+00:00|1"]
    for raw in [*cursors, "0001-01-01|1"]:
        cursor = base64.urlsafe_b64encode(raw.encode()).decode()
        for url in (f"/logs/?cursor={cursor}", f"/logs/?before={cursor}", f"/logs/tail?after={cursor}"):
            assert web.get(url).status_code == 200, url
        assert web.get(f"/events/?cursor={cursor}").status_code == 200
    for url in (
        "/logs/?since=99999-01-01",
        "/events/?start=0001-01-01T00:00:00%2B14:00",
        "/logs/histogram?since=0001-01-01T00:00&until=9999-12-31T00:00",
        "/logs/histogram?since=9999-12-31T00:00",
        "/events/histogram?range=all",
    ):
        assert web.get(url).status_code in (200, 400), url
    assert web.get("/logs/99999999999999999999/").status_code == 404
    for url in ("/events/trace/a%00", "/logs/?q=%00", "/logs/tail?application=%00", "/events/?data=a%3D%00"):
        r = web.get(url)
        assert r.status_code == 400 and b"NUL" in r.content, url
    assert web.post("/logs/saved/", {"name": "a\x00b", "query": ""}).status_code == 400
    assert not SavedSearch.objects.exists()
