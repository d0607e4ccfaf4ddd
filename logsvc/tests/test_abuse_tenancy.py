"""Tenancy: another user's credentials never read or change an object, on any route of the URL conf.

Every route is classified below, so a new one fails test_every_route_is_classified until someone says how its
tenancy is proven: by the sweep here (charlie tries every method on one of alice's objects and gets 403, 404 or
405, never her data, and the database does not change), by a test elsewhere, or as public by design.
"""

from __future__ import annotations

import gzip
import importlib
import itertools
import re
import string
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from analytics import sites
from analytics.models import Domain, Export, Import, Path, Site
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits
from conftest import client_with_key, make_key
from events.models import Event, LogMessage
from logsvc.models import User
from social import services
from social.tests.conftest import session_client, token_client
from social.tests.test_oauth import SECRET as APP_SECRET
from social.tests.test_oauth import make_app

SECRET = "alice-secret"  # in every object of alice's, so a leak shows in any body
ALICE_HOST, CHARLIE_HOST = "alice.example", "charlie.example"

# Routes whose tenancy is proven by the sweep below: route -> the status charlie gets for each method
# (unlisted methods: 405). {id} is alice's object; GoatCounter routes are tried from both hosts.
SWEPT = {
    "api/Log/<int:message_id>": ("logster", "/api/Log/{message}", {"GET": 404}),
    "api/v1/events/trace/<path:trace_id>": ("bytelog", "/api/v1/events/trace/{trace}", {"GET": 200}),
    "api/1/logs/<int:log_id>/delete/": ("littlelogs", "/api/1/logs/{log}/delete/", {"DELETE": 403}),
    "api/1/comment/<int:comment_id>/delete/": ("littlelogs", "/api/1/comment/{comment}/delete/", {"DELETE": 403}),
    # charlie has no like and no follow to take back: the answer is GoatCounter-style idempotent, alice's stay
    "api/1/logs/<int:log_id>/unlike/": ("littlelogs", "/api/1/logs/{log}/unlike/", {"DELETE": 204}),
    "api/1/users/<str:username>/unfollow/": ("littlelogs", "/api/1/users/bob/unfollow/", {"DELETE": 204}),
    "api/v0/sites/<int:site_id>": (
        "goatcounter",
        "/api/v0/sites/{site}",
        {"GET": 404, "PATCH": 404, "POST": 404, "DELETE": 404},
    ),
    "api/v0/sites/<int:site_id>/hits": ("goatcounter", "/api/v0/sites/{site}/hits", {"DELETE": 404}),
    "api/v0/export/<int:export_id>": ("goatcounter", "/api/v0/export/{export}", {"GET": 404}),
    "api/v0/export/<int:export_id>/download": ("goatcounter", "/api/v0/export/{export}/download", {"GET": 404}),
    "api/v0/stats/hits/<int:path_id>": ("goatcounter", "/api/v0/stats/hits/{path}", {"GET": 404}),
    "api/v0/stats/<str:page>/<path:id>": ("goatcounter", "/api/v0/stats/toprefs/{ref}", {"GET": 200}),
    "sites/<slug:code>/": (
        "browser",
        "/sites/alice-blog/",
        dict.fromkeys(["GET", "POST", "PUT", "PATCH", "DELETE"], 404),
    ),
    "sites/<slug:code>/import/": ("browser", "/sites/alice-blog/import/", {"GET": 404, "POST": 404}),
    "sites/<slug:code>/delete/": ("browser", "/sites/alice-blog/delete/", {"GET": 404, "POST": 404}),
    "sites/<slug:code>/import/<int:import_id>/": ("browser", "/sites/alice-blog/import/{import}/", {"GET": 404}),
    "oauth/applications/<int:pk>/": ("browser", "/oauth/applications/{app}/", {"GET": 404}),
    "oauth/applications/<int:pk>/update/": (
        "browser",
        "/oauth/applications/{app}/update/",
        {"GET": 404, "POST": 404, "PUT": 404},
    ),
    "oauth/applications/<int:pk>/delete/": (
        "browser",
        "/oauth/applications/{app}/delete/",
        {"GET": 404, "POST": 404, "DELETE": 404},
    ),
    "oauth/authorized_tokens/<int:pk>/delete/": (
        "browser",
        "/oauth/authorized_tokens/{token}/delete/",
        {"GET": 404, "POST": 404, "DELETE": 404},
    ),
}

# Routes proven elsewhere: route -> the test that shows an outsider none of alice's objects.
ELSEWHERE = {
    "api/Log": "events.tests.test_logster_list::test_it_shows_an_outsider_none_of_alices_messages",
    "api/Log/": "events.tests.test_logster_list::test_it_shows_an_outsider_none_of_alices_messages",
    "api/v1/events": "events.tests.test_bytelog_list::test_it_shows_an_outsider_none_of_alices_events",
    "api/v1/events/": "events.tests.test_bytelog_list::test_it_shows_an_outsider_none_of_alices_events",
    "api/1/timelines/home/": "social.tests.test_timelines::test_it_shows_my_logs_and_those_of_whom_i_follow",
    "api/1/timelines/activity/": "social.tests.test_timelines::test_it_hides_other_peoples_activity",
    "api/v0/sites": "analytics.tests.test_sites::test_it_never_lists_another_users_sites",
    "api/v0/me": "analytics.tests.test_sites::test_me_shows_charlie_his_own",
    "api/v0/count": "analytics.tests.test_count::test_another_users_key_never_counts_on_alices_site",
    "api/v0/export": "analytics.tests.test_export::test_an_outsider_exports_only_his_own_site",
    "api/v0/paths": "logsvc.tests.test_abuse_tenancy::test_alices_path_ids_mean_nothing_on_charlies_site",
    "api/v0/stats/total": "analytics.tests.test_stats_api::test_another_user_never_sees_alices_numbers",
    "api/v0/stats/hits": "logsvc.tests.test_abuse_tenancy::test_alices_path_ids_mean_nothing_on_charlies_site",
    "api/v0/stats/<str:page>": "analytics.tests.test_stats_api::test_another_user_never_sees_alices_numbers",
    "": "logsvc.tests.test_frontdoor::test_it_shows_the_users_own_sites_logs_events_and_littlelogs",
    "oauth/applications/": "social.tests.test_oauth::test_apps_page_shows_only_the_users_own_apps",
    "oauth/authorized_tokens/": "logsvc.tests.test_abuse_tenancy::test_the_authorized_apps_page_lists_only_ones_own",
    "^oauth/revoke_token/?$": "logsvc.tests.test_abuse_tenancy::test_an_app_cannot_revoke_another_apps_token",
    # the explorer (events/explorer.py): a signed-in user's own messages, events and saved searches
    "logs/": "events.tests.test_explorer_logs::test_it_lists_ones_own_messages_newest_first",
    "logs/tail": "events.tests.test_explorer_logs::test_the_tail_answers_what_is_newer_than_the_cursor_with_the_filters",
    "logs/histogram": "events.tests.test_explorer_logs::test_the_histogram_counts_the_chosen_messages_by_severity",
    "logs/<int:message_id>/": "events.tests.test_explorer_logs::test_a_message_page_lays_out_its_exception_and_what_happened_around_it",
    "events/": "events.tests.test_explorer_events::test_it_lists_ones_own_events_newest_first_with_their_links",
    "events/histogram": "events.tests.test_explorer_events::test_it_lists_ones_own_events_newest_first_with_their_links",
    "events/trace/<path:trace_id>": "events.tests.test_explorer_events::test_another_users_trace_is_a_404",
    "^(?P<page>logs|events)/saved/$": "events.tests.test_explorer_saved::test_it_saves_a_search_and_lists_it_on_its_page",
    "saved/<int:search_id>/delete/": "events.tests.test_explorer_saved::test_it_deletes_only_ones_own",
    # avatars are public, as the profiles that link them; nothing but a stored picture is served
    "media/<path:path>": "social.tests.test_avatars::test_media_serves_nothing_but_stored_pictures",
}

# Routes with no object of one user's to reach: route -> why.
NOT_TENANTED = {
    "^api/events/(?P<uid>[\\w-]{16})\\.json$": "Loggator: the uid is the capability (test_loggator_ids_*)",
    "^api/events/(?P<uid>[\\w-]{16})$": "a redirect to the .json address",
    "api/1/": "littlelogs: the API's root, links to its endpoints",
    "api/1/timelines/public/": "littlelogs: public",
    "api/1/users/$self/": "the requester's own profile; there is no id to put another's in",
    "accounts/delete/": "deletes the requester's own account; there is no id to put another's in",
    "api/1/users/followed-by/<str:username>/": "littlelogs: public",
    "api/1/users/following/<str:username>/": "littlelogs: public",
    "api/1/users/<str:username>/": "littlelogs: public",
    "api/1/users/<str:username>/follow/": "anyone signed in may follow anyone; it adds the requester's follow",
    "api/1/logs/": "littlelogs: public",
    "api/1/logs/create/": "creates the requester's own log",
    "api/1/logs/preview/": "stores nothing",
    "api/1/logs/tag/<str:tag>/": "littlelogs: public",
    "api/1/logs/user/<str:username>/": "littlelogs: public",
    "api/1/logs/<int:log_id>/": "littlelogs: public",
    "api/1/logs/<int:log_id>/comment/": "anyone signed in may comment on any log",
    "api/1/logs/<int:log_id>/like/": "anyone signed in may like any log",
    "api/1/logs/<int:log_id>/comments/": "littlelogs: public, as the log they are on",
    "api/1/logs/<int:log_id>/likes/": "littlelogs: public, as the log they are on",
    "api/1/tags/": "littlelogs: public",
    "api/1/tags/trending/": "littlelogs: public",
    "api/1/tags/user/<str:username>/": "littlelogs: public",
    "tag/<str:tag>": "littlelogs: public, as api/1/logs/tag/<tag>/",
    "^(?P<username>[\\w.@+-]+)$": "littlelogs: public, as api/1/logs/user/<username>/",
    "favicon.ico": "a redirect to a static picture",
    "count.js": "a static script",
    "count": "the pixel: any visitor counts a pageview for the site of the Host",
    "count/<slug:code>": "the pixel: any visitor counts a pageview for the site of the code",
    "api-auth/login/": "sign-in",
    "api-auth/logout/": "sign-out",
    "accounts/login/": "sign-in",
    "accounts/logout/": "sign-out",
    "api.json": "the OpenAPI document",
    "api.html": "the API reference",
    "healthz": "health",
    "^oauth/authorize/?$": "consent for the signed-in user's own grant",
    "^oauth/token/?$": "the client authenticates itself (social/tests/test_oauth.py)",
    ".well-known/oauth-authorization-server": "public metadata",
    "oauth/applications/register/": "creates the requester's own app",
}


def routes() -> list[str]:
    """Every route of the URL conf but the admin's (staff only, by Django's own permissions)."""

    def walk(patterns, prefix: str = ""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    return [route for route in walk(get_resolver().url_patterns) if not route.startswith("admin/")]


def test_every_route_is_classified():
    classified = [*SWEPT, *ELSEWHERE, *NOT_TENANTED]
    assert [route for route, seen in Counter(classified).items() if seen > 1] == []
    assert sorted(set(routes()) - set(classified)) == [], "say how these routes' tenancy is tested"
    assert sorted(set(classified) - set(routes())) == [], "these routes are gone"


def test_every_route_with_an_id_of_a_users_object_is_swept_or_tested_elsewhere():
    with_ids = {route for route in routes() if re.search(r"<int:|<path:|\(\?P<", route)}
    public = {route for route in with_ids if route in NOT_TENANTED}
    assert public == {
        "^api/events/(?P<uid>[\\w-]{16})\\.json$",
        "^api/events/(?P<uid>[\\w-]{16})$",
        "^(?P<username>[\\w.@+-]+)$",
        "api/1/logs/<int:log_id>/",
        "api/1/logs/<int:log_id>/comment/",
        "api/1/logs/<int:log_id>/like/",
        "api/1/logs/<int:log_id>/comments/",
        "api/1/logs/<int:log_id>/likes/",
    }


@pytest.mark.parametrize("route", sorted(ELSEWHERE))
def test_the_tests_named_elsewhere_exist(route):
    module, _, name = ELSEWHERE[route].partition("::")
    assert callable(getattr(importlib.import_module(module), name, None)), ELSEWHERE[route]


# --- The world: alice owns one of everything; charlie has his own key, site, session and token ----------------


@pytest.fixture(autouse=True)
def _any_host(settings):
    settings.ALLOWED_HOSTS = ["*"]
    sites.forget_pixel_sites()


@pytest.fixture
def world(alice, charlie, tmp_path) -> dict[str, object]:
    bob = User.objects.create_user("bob", password="bob-password")
    message = LogMessage.objects.create(owner=alice, message=f"{SECRET} message", severity=3)
    Event.objects.create(owner=alice, name=f"{SECRET} event", trace_id="t-alice", data={"note": SECRET})
    log = services.create_log(user=alice, markdown=f"{SECRET} log")
    comment = services.add_comment(log=log, user=alice, markdown=f"{SECRET} comment")
    services.like_log(log=log, user=alice)
    services.follow(follower=alice, followee=bob)
    services.add_comment(log=log, user=bob, markdown="a comment that notifies alice")

    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain=ALICE_HOST)
    charlies = Site.objects.create(code="charlie-blog", owner=charlie)
    Domain.objects.create(site=charlies, domain=CHARLIE_HOST)
    ref = f"{SECRET}-ref.example"
    with transaction.atomic():
        record_hits(
            site,
            [
                CleanHit(path=f"/{SECRET}", title=SECRET, ref=ref, ref_scheme="o", visitor=uuid.uuid4())
                for _ in range(2)
            ],
        )
    roll_up()
    file = tmp_path / "alice-export.csv.gz"
    file.write_bytes(gzip.compress(f"{SECRET}\n".encode()))
    export = Export.objects.create(site=site, finished_at=timezone.now(), file=str(file), num_rows=2)
    upload = Import.objects.create(site=site, name=f"{SECRET}.csv", file=str(file), finished_at=timezone.now())

    app = make_app(alice, name=f"{SECRET} app")
    token = AccessToken.objects.create(
        user=alice,
        application=app,
        token=uuid.uuid4().hex,
        expires=timezone.now() + timedelta(hours=1),
        scope="read write",
    )
    return {
        "ids": {
            "message": message.pk,
            "trace": "t-alice",
            "log": log.pk,
            "comment": comment.pk,
            "site": site.pk,
            "export": export.pk,
            "import": upload.pk,
            "path": Path.objects.get(site=site).pk,
            "ref": ref,
            "app": app.pk,
            "token": token.pk,
        },
        "clients": {
            "logster": client_with_key(make_key(charlie)),
            "bytelog": client_with_key(make_key(charlie)),
            "goatcounter": client_with_key(make_key(charlie)),
            "littlelogs": [session_client(charlie), token_client(charlie)],
            "browser": session_client(charlie),
        },
    }


# What any request may change: its rate-limit window, and the last_used of the key it came with.
VOLATILE = {"logsvc_ratelimitcounter"}
ROWS = {"logsvc_apikey": "(SELECT id, user_id, prefix, hashed_key, scopes, expires, revoked FROM logsvc_apikey)"}


def snapshot() -> dict[str, str]:
    """table -> a digest of all its rows, in one query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        tables = [name for (name,) in cursor.fetchall() if name not in VOLATILE]
        cursor.execute(
            " UNION ALL ".join(
                f"SELECT '{table}', md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {ROWS.get(table, table)} t"
                for table in tables
            )
        )
        return dict(cursor.fetchall())


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def sweep_cases():
    for route, (family, _, _) in SWEPT.items():
        hosts = [CHARLIE_HOST, ALICE_HOST] if family == "goatcounter" else [CHARLIE_HOST]
        clients = [0, 1] if family == "littlelogs" else [0]
        for method in METHODS:
            for host in hosts:
                for client in clients:
                    yield pytest.param(route, method, host, client, id=f"{route}-{method}-{host}-{client}")


@pytest.mark.parametrize(("route", "method", "host", "which"), list(sweep_cases()))
def test_an_outsider_never_reads_or_changes_alices_object(world, route, method, host, which):
    family, template, statuses = SWEPT[route]
    client = world["clients"][family]
    if isinstance(client, list):
        client = client[which]
    url = template.format(**world["ids"])
    before = snapshot()

    body = {"settings": {"public": True}, "name": "mine now", "content": "x"}
    send = getattr(client, method.lower())
    if method == "GET":
        r = send(url, HTTP_HOST=host)
    elif isinstance(client, APIClient):
        r = send(url, body, format="json", HTTP_HOST=host)
    else:
        r = send(url, body, content_type="application/json", HTTP_HOST=host)

    # On alice's Host too: another user's domain never picks the site of charlie's request, his own site does.
    expected = statuses.get(method, 405)
    assert r.status_code == expected, r.content[:300]
    assert SECRET.encode() not in r.content
    assert snapshot() == before


def test_the_sweep_would_see_a_leak_and_a_change(world):
    # The checks above are not vacuous: the owner's own request shows the secret, and a delete changes the rows.
    alice = session_client(User.objects.get(username="alice"))
    assert SECRET.encode() in alice.get(f"/api/1/logs/{world['ids']['log']}/").content
    before = snapshot()
    assert alice.delete(f"/api/1/comment/{world['ids']['comment']}/delete/").status_code == 204
    assert snapshot() != before


# --- The rest, one by one ---------------------------------------------------------------------------------------


def test_alices_path_ids_mean_nothing_on_charlies_site(world, charlie):
    client = world["clients"]["goatcounter"]
    path_id = world["ids"]["path"]
    before = snapshot()
    answers = {
        url: client.get(url, HTTP_HOST=CHARLIE_HOST)
        for url in (
            f"/api/v0/paths?id={path_id}",
            f"/api/v0/stats/hits?include_paths={path_id}",
            f"/api/v0/stats/total?include_paths={path_id}",
            f"/api/v0/stats/hits?path_by_name=true&include_paths=/{SECRET}",
        )
    }
    for url, r in answers.items():
        assert r.status_code in (200, 400), (url, r.content)
        assert SECRET.encode() not in r.content, url
    assert answers[f"/api/v0/paths?id={path_id}"].json()["paths"] == []
    assert answers[f"/api/v0/stats/total?include_paths={path_id}"].json()["total_pageviews"] == 0
    assert snapshot() == before
    # alice, on her own site, sees it
    alices = client_with_key(make_key(User.objects.get(username="alice"), "stats"))
    assert alices.get(f"/api/v0/paths?id={path_id}", HTTP_HOST=ALICE_HOST).json()["paths"][0]["id"] == path_id


def test_the_authorized_apps_page_lists_only_ones_own(world):
    r = world["clients"]["browser"].get("/oauth/authorized_tokens/")
    assert r.status_code == 200
    assert SECRET.encode() not in r.content


def test_an_app_cannot_revoke_another_apps_token(world, charlie):
    token = AccessToken.objects.get(pk=world["ids"]["token"])
    raw = token.token
    app = make_app(charlie, name="charlie's app")
    before = snapshot()
    r = Client().post("/oauth/revoke_token", {"token": raw, "client_id": app.client_id, "client_secret": APP_SECRET})
    assert r.status_code in (200, 400, 401)  # RFC 7009 lets a server answer 200 for a token it will not revoke
    assert snapshot() == before
    assert APIClient().get("/api/1/users/$self/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


# --- Loggator: public by design, so its ids must be unguessable -------------------------------------------------

URL_SAFE = set(string.ascii_letters + string.digits + "-_")


def test_loggator_ids_are_16_random_url_safe_characters(alice):
    events = Event.objects.bulk_create([Event(owner=alice, name="e") for _ in range(2000)])
    uids = [event.uid for event in events]
    assert len(set(uids)) == len(uids)
    assert all(len(uid) == 16 and set(uid) <= URL_SAFE for uid in uids)
    # No order to walk: neighbours share no prefix, and every character is used about evenly at every position.
    assert sum(a[:3] == b[:3] for a, b in itertools.pairwise(uids)) <= 2
    for position in range(16):
        seen = Counter(uid[position] for uid in uids)
        assert len(seen) >= 60 and max(seen.values()) < 2000 / 64 * 2.5, position
    assert not any(str(event.pk) in event.uid and len(str(event.pk)) > 2 for event in events[:50])


def test_loggator_ids_cannot_be_walked_from_a_known_one(anon_client, alice):
    event = Event.objects.create(owner=alice, name="shared")
    Event.objects.create(owner=alice, name=f"{SECRET} not shared")
    near = {event.uid[:-1] + c for c in "AaZz09-_" if event.uid[:-1] + c != event.uid}
    near |= {event.uid.upper(), event.uid.lower(), event.uid[::-1]} - {event.uid}
    for uid in near:
        r = anon_client.get(f"/api/events/{uid}.json")
        assert r.status_code == 404
        assert r.json() == {"message": "Not Found"}
