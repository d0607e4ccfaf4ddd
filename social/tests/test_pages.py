"""Where littlelogs' rendered links lead: /tag/<tag> and /<username> (as the seed writes them) are pages of that
tag's or that user's logs; and /api/1/ is the API's root, listing its endpoints."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from logsvc.models import User
from social.tests.conftest import post
from social.web import PER_PAGE

pytestmark = pytest.mark.django_db


def links(html: str) -> list[str]:
    return re.findall(r'href="(/[^"]*)"', html)


def shown_logs(html: str) -> list[str]:
    return re.findall(r'<div class="content">(.*?)</div>', html, re.DOTALL)


def test_a_tag_link_in_a_log_leads_to_that_tags_logs(client, alice, charlie):
    log = post(alice, "Shipped the #logsvc README, thanks @charlie!")
    post(charlie, "More on #LogSvc today")
    post(charlie, "Nothing tagged here")

    tag_link = re.search(r'class="tag" href="(/tag/[^"]+)"', log.content).group(1)
    r = client.get(tag_link)

    assert r.status_code == 200
    page = r.content.decode()
    assert "<h1>#logsvc</h1>" in page and "2 logs tagged #logsvc" in page
    assert len(shown_logs(page)) == 2  # newest first, both spellings of the tag
    assert "More on" in shown_logs(page)[0] and "Shipped the" in shown_logs(page)[1]
    assert "Nothing tagged here" not in page
    assert 'href="/api/1/logs/tag/logsvc/"' in page


def test_a_mention_link_leads_to_that_users_logs(client, alice, charlie):
    charlie.first_name, charlie.location, charlie.bio = "Charlie", "Leeds", "Makes tea"
    charlie.save()
    log = post(alice, "Thanks @charlie!")
    post(charlie, "Charlie's first #log")
    post(alice, "alice's other log")

    user_link = re.search(r'class="content-user" href="(/[^"]+)"', log.content).group(1)
    assert user_link == "/charlie"
    page = client.get(user_link).content.decode()

    assert "<h1>Charlie </h1>" in page and "@charlie · Leeds · 1 log" in page and "Makes tea" in page
    assert [("Charlie's first" in html) for html in shown_logs(page)] == [True]
    assert "alice's other log" not in page
    assert re.search(r'<img class="avatar" src="http://testserver/static/social/avatar\.svg"', page)
    assert 'href="/tag/log"' in page  # the log's own links work from here too


def test_an_unknown_tag_or_user_is_a_friendly_404_page(client, db):
    r = client.get("/tag/nothing-yet")
    assert r.status_code == 404 and "Nobody has tagged a log #nothing-yet yet." in r.content.decode()
    r = client.get("/nobody")
    assert r.status_code == 404 and "Nobody here is called nobody." in r.content.decode()
    assert r["Content-Type"].startswith("text/html")


def test_a_page_shows_twenty_logs_and_links_the_older_ones(client, alice):
    for n in range(PER_PAGE + 3):
        post(alice, f"log number {n} #daily")

    first = client.get("/tag/daily").content.decode()
    assert len(shown_logs(first)) == PER_PAGE and "log number 22" in first
    assert 'href="?page=2"' in first and "page=0" not in first
    second = client.get("/tag/daily?page=2").content.decode()
    assert [re.search(r"log number (\d+)", html).group(1) for html in shown_logs(second)] == ["2", "1", "0"]
    assert 'href="?page=1"' in second and 'href="?page=3"' not in second
    assert client.get("/alice?page=oops").status_code == 200  # a bad page number is page one


def test_log_content_stays_sanitised_on_the_pages(client, alice):
    post(alice, "<script>alert(1)</script> <img src=x onerror=alert(2)> #safe")
    for url in ("/tag/safe", "/alice"):
        page = client.get(url).content.decode()
        assert "<script" not in page and "<img src=x" not in page  # shown as text, if at all


def literal_single_segments() -> set[str]:
    """Every path of one segment that some URL pattern other than the user page answers, e.g. "healthz"."""
    found = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern) and pattern.name != "littlelogs-user-page":
                path = (prefix + route).lstrip("^").rstrip("$")
                if path and "/" not in path.rstrip("/") and "<" not in path and "(" not in path:
                    found.add(path)

    walk(get_resolver().url_patterns, "")
    return found


def test_no_users_name_shadows_another_path(client, db):
    names = literal_single_segments()
    assert {"healthz", "api.html", "api.json", "count", "count.js", "favicon.ico"} <= names
    for name in names:
        User.objects.create_user(name.rstrip("/"))
    for name in names:
        view = resolve("/" + name).func
        assert getattr(view, "__name__", "") != "user_page", name
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/api.json").status_code == 200
    assert client.get("/count.js")["Content-Type"].startswith("text/javascript")


def test_the_api_root_lists_littlelogs_endpoints(client, db):
    r = client.get("/api/1/", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    root = r.json()
    assert root["logs"] == "http://testserver/api/1/logs/"
    assert root["users/$self"] == "http://testserver/api/1/users/$self/"
    assert root["tags/trending"] == "http://testserver/api/1/tags/trending/"
    assert "http://testserver/api/1/logs/{id}/comments/" in root["templates"]
    for name, url in root.items():
        if name != "templates":
            assert client.get(url.removeprefix("http://testserver"), HTTP_ACCEPT="application/json").status_code in (
                200,
                401,
                405,
            ), name


def test_the_api_root_is_browsable(alice):
    browser = Client()
    browser.force_login(alice)
    r = browser.get("/api/1/", HTTP_ACCEPT="text/html")
    assert r.status_code == 200
    page = r.content.decode()
    assert "Api Root" in page or "littlelogs" in page
    assert "http://testserver/api/1/timelines/home/" in page
