"""POST /api/v0/count: GoatCounter's batch of 1 to 500 hits from a backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from analytics import sites
from analytics.models import BotHit, Domain, Hit, Path, Site, VisitorPath
from conftest import client_with_key, make_key
from logsvc.models import IdempotencyRecord

URL = "/api/v0/count"
HOST = "stats.alice.example"
IP = "203.0.113.77"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
NOW = datetime(2030, 3, 4, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _any_host(settings):
    settings.ALLOWED_HOSTS = ["*"]
    sites.forget_pixel_sites()


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice, ignore_ips=["192.0.2.9"])
    Domain.objects.create(site=site, domain=HOST)
    return site


def post(client: APIClient, body, host: str = HOST, **headers):
    return client.post(URL, body, format="json", HTTP_HOST=host, **headers)


def hit(path: str = "/", **fields) -> dict:
    return {"path": path, "ip": IP, "user_agent": UA, **fields}


def stored() -> list[tuple[str, bool]]:
    """(path, first_visit) of every stored hit, oldest first."""
    return list(Hit.objects.order_by("id").values_list("path__path", "first_visit"))


def test_it_stores_a_valid_batch_and_answers_202_as_json(api_client, site):
    r = post(
        api_client,
        {
            "hits": [
                hit(
                    "/post/1",
                    title="First post",
                    ref="https://news.example.com/item?id=1",
                    size=[1920, 1080, 2],
                    location="NL",
                    language="nl",
                    created_at="2025-01-01T10:00:00Z",
                ),
                hit("signup", event=True, session="s-1"),
            ]
        },
    )
    assert r.status_code == 202
    assert r["Content-Type"] == "application/json"
    assert r.json() == {"status": "ok"}
    page, event = Hit.objects.select_related("path").order_by("id")
    assert (page.site, page.path.path, page.path.title, page.path.event) == (site, "/post/1", "First post", False)
    assert (page.ref, page.ref_scheme, page.size, page.location) == ("news.example.com/item", "h", 1920, "NL")
    assert page.browser.startswith("Firefox") and page.system.startswith("Linux")
    assert page.created_at == datetime(2025, 1, 1, 10, tzinfo=UTC)
    assert (event.path.path, event.path.event) == ("signup", True)


def test_it_matches_field_names_in_any_case_as_goatcounters_server_does(api_client, site):
    # Go's encoding/json: an exact name, else one that differs only in case; of two for one field, the later
    r = post(
        api_client, {"Hits": [{"Path": "/go", "IP": IP, "User_Agent": UA, "path": "/later"}], "No_Sessions": False}
    )
    assert (r.status_code, r.json()) == (202, {"status": "ok"})
    assert stored() == [("/later", True)]
    r = post(api_client, {"hits": [{"path": "/x", "ip": IP, "user_agent": UA, "Paths": "/y"}]})
    assert r.status_code == 400 and "'Paths'" in r.json()["errors"]["0"][0]  # no field of that name in any case
    assert stored() == [("/later", True)]


def test_it_accepts_500_hits(api_client, site):
    r = post(api_client, {"no_sessions": True, "hits": [{"path": f"/p/{i}"} for i in range(500)]})
    assert r.status_code == 202
    assert Hit.objects.count() == 500
    assert Path.objects.filter(site=site).count() == 500


def test_it_refuses_501_hits_and_stores_none(api_client, site):
    r = post(api_client, {"no_sessions": True, "hits": [{"path": "/"}] * 501})
    assert r.status_code == 400
    assert r.json() == {"error": "maximum amount of pageviews in one batch is 500"}
    assert not Hit.objects.exists()


@pytest.mark.parametrize("body", [{"hits": []}, {}])
def test_it_refuses_a_batch_without_hits(api_client, site, body):
    r = post(api_client, body)
    assert r.status_code == 400
    assert r.json() == {"error": "no hits"}
    assert not Hit.objects.exists()


def test_it_stores_the_valid_hits_and_names_the_invalid_ones_by_index(api_client, site):
    r = post(api_client, {"hits": [hit("/ok"), {"path": "/no-visitor"}, hit("/also-ok"), hit("")]})
    assert r.status_code == 400
    assert r["Content-Type"] == "application/json"
    assert r.json() == {
        "errors": {
            "1": ["session or browser/IP not set; use no_sessions if you don't want to track unique visits"],
            "3": ["path: must be set"],
        }
    }
    assert [path for path, _ in stored()] == ["/ok", "/also-ok"]


def test_it_needs_a_session_or_user_agent_and_ip_unless_no_sessions(api_client, site):
    r = post(api_client, {"hits": [{"path": "/ua-only", "user_agent": UA}, {"path": "/ip-only", "ip": IP}]})
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"0", "1"}
    assert not Hit.objects.exists()

    assert post(api_client, {"hits": [{"path": "/session", "session": "abc"}]}).status_code == 202
    assert post(api_client, {"no_sessions": True, "hits": [{"path": "/anonymous"}]}).status_code == 202
    visitors = dict(Hit.objects.values_list("path__path", "visitor"))
    assert visitors["/session"] is not None
    assert visitors["/anonymous"] is None


def test_it_refuses_a_created_at_in_the_future(api_client, site):
    with time_machine.travel(NOW, tick=False):
        r = post(
            api_client,
            {
                "hits": [
                    hit("/future", created_at="2030-03-04T12:01:00Z"),
                    hit("/past", created_at="2030-03-04T11:00:00Z"),
                ]
            },
        )
    assert r.status_code == 400
    assert r.json() == {"errors": {"0": ["created_at: is in the future"]}}
    assert list(Hit.objects.values_list("path__path", "created_at")) == [("/past", NOW - timedelta(hours=1))]


def test_it_refuses_a_path_over_2048_bytes(api_client, site):
    longest = "/" + "é" * 1023 + "x"  # 2048 bytes of UTF-8, in fewer characters
    r = post(api_client, {"hits": [hit(longest), hit(longest + "x")]})
    assert r.status_code == 400
    assert r.json() == {"errors": {"1": ["path: may be at most 2048 bytes long"]}}
    assert [path for path, _ in stored()] == [longest]


def test_it_keeps_bots_apart(api_client, site):
    r = post(api_client, {"hits": [hit("/crawled", user_agent=GOOGLEBOT), hit("/read")]})
    assert r.status_code == 202
    assert [path for path, _ in stored()] == ["/read"]
    bot = BotHit.objects.get()
    assert (bot.site, bot.path) == (site, "/crawled")
    assert bot.bot > 0


def test_it_skips_hits_from_ignored_ips_and_says_which(api_client, site):
    r = post(api_client, {"hits": [hit("/mine", ip="192.0.2.9"), hit("/theirs")]})
    assert r.status_code == 202
    assert r["X-Goatcounter-Filter"] == "0"
    assert [path for path, _ in stored()] == ["/theirs"]


def test_it_counts_ignored_ips_when_the_filter_is_off(api_client, site):
    r = post(api_client, {"filter": [], "hits": [hit("/mine", ip="192.0.2.9")]})
    assert r.status_code == 202
    assert "X-Goatcounter-Filter" not in r
    assert [path for path, _ in stored()] == ["/mine"]


def test_it_replays_a_retry_with_the_same_idempotency_key(api_client, site):
    body = {"hits": [hit("/a"), hit("/b")]}
    first = post(api_client, body, HTTP_IDEMPOTENCY_KEY="batch-1")
    retry = post(api_client, body, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert (first.status_code, retry.status_code) == (202, 202)
    assert retry.json() == first.json() == {"status": "ok"}
    assert retry["Idempotent-Replayed"] == "true"
    assert Hit.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 1


def test_it_replays_a_retry_of_a_partly_invalid_batch(api_client, site):
    body = {"hits": [hit("/a"), {"path": "/no-visitor"}]}
    first = post(api_client, body, HTTP_IDEMPOTENCY_KEY="batch-2")
    retry = post(api_client, body, HTTP_IDEMPOTENCY_KEY="batch-2")
    assert (first.status_code, retry.status_code) == (400, 400)
    assert retry.json() == first.json()
    assert set(first.json()["errors"]) == {"1"}
    assert retry["Idempotent-Replayed"] == "true"
    assert [path for path, _ in stored()] == ["/a"]


def test_it_refuses_to_reuse_an_idempotency_key_for_another_batch(api_client, site):
    assert post(api_client, {"hits": [hit("/a")]}, HTTP_IDEMPOTENCY_KEY="k").status_code == 202
    r = post(api_client, {"hits": [hit("/b")]}, HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["errors"]
    assert [path for path, _ in stored()] == ["/a"]


def test_another_users_key_never_counts_on_alices_site(charlie, site):
    theirs = Site.objects.create(code="charlie-site", owner=charlie)  # this Host is alice's: it doesn't matter
    r = post(client_with_key(make_key(charlie)), {"hits": [hit()]})
    assert r.status_code == 202
    assert list(Hit.objects.values_list("site", flat=True)) == [theirs.pk]


def test_it_refuses_a_request_without_a_key(site):
    r = post(APIClient(), {"hits": [hit()]})
    assert r.status_code == 401
    assert "error" in r.json()
    assert not Hit.objects.exists()


def test_it_refuses_a_key_without_the_count_scope(alice, site):
    r = post(client_with_key(make_key(alice, "sites", "export")), {"hits": [hit()]})
    assert r.status_code == 403
    assert "error" in r.json()
    assert not Hit.objects.exists()


def test_it_marks_a_visitors_first_hit_on_each_path(api_client, site):
    assert post(api_client, {"hits": [hit("/one")]}).status_code == 202
    assert post(api_client, {"hits": [hit("/one")]}).status_code == 202
    assert post(api_client, {"hits": [hit("/two"), hit("/two")]}).status_code == 202
    assert post(api_client, {"hits": [hit("/one", ip="198.51.100.1")]}).status_code == 202  # someone else
    assert stored() == [("/one", True), ("/one", False), ("/two", True), ("/two", False), ("/one", True)]
    assert Hit.objects.values("visitor").distinct().count() == 2
    assert VisitorPath.objects.count() == 3


def text_columns_holding(*needles: str) -> list[tuple[str, str]]:
    """(table, column) of every text-like column, in every table, with a value containing one of needles."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY', 'inet')"
        )
        columns = cursor.fetchall()
        found = []
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE ' + " OR ".join(f'"{column}"::text LIKE %s' for _ in needles),
                [f"%{needle}%" for needle in needles],
            )
            if cursor.fetchone()[0]:
                found.append((table, column))
    return found


def test_it_keeps_no_ip_and_no_user_agent_in_any_table(api_client, site):
    r = post(api_client, {"hits": [hit("/one"), hit("/two", session="client-session-42")]})
    assert r.status_code == 202
    assert Hit.objects.count() == 2
    assert text_columns_holding(IP, UA, "client-session-42") == []
    assert text_columns_holding("/two") != []  # the scan does find what is stored
