"""Saved searches: a named filter set of /logs/ or /events/, kept per user, listed on its page, its link the
search itself."""

from __future__ import annotations

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
