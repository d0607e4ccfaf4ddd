"""GET/POST /count and /count/<code>: the browser's pixel, and /count.js."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from analytics import sites
from analytics.models import BotHit, Domain, Hit, Site

HOST = "stats.alice.example"
IP = "203.0.113.77"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
OTHER_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
NOW = datetime(2030, 3, 4, 12, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-pixel": "4/1"}
    sites.forget_pixel_sites()  # the pixel remembers sites for seconds; each test has its own


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice, ignore_ips=["192.0.2.9"])
    Domain.objects.create(site=site, domain=HOST)
    return site


def pixel(params: dict | None = None, url: str = "/count", method: str = "get", ua: str = UA, **headers):
    query = "&".join(f"{name}={value}" for name, value in (params or {}).items())
    client = Client()
    return getattr(client, method)(f"{url}?{query}", HTTP_HOST=HOST, HTTP_USER_AGENT=ua, REMOTE_ADDR=IP, **headers)


def assert_gif(r, status: int) -> None:
    assert r.status_code == status
    assert r["Content-Type"] == "image/gif"
    assert len(r.content) == 43 and r.content.startswith(b"GIF89a")
    assert r["Access-Control-Allow-Origin"] == "*"
    assert "Set-Cookie" not in r and not r.cookies


def stored_paths() -> list[str]:
    return list(Hit.objects.order_by("id").values_list("path__path", flat=True))


def test_it_counts_a_get_and_stores_the_fields_as_sent(site):
    r = pixel({"p": "/post/1", "t": "First%20post", "r": "https://news.example.com/item", "s": "1920,1080,2"})
    assert_gif(r, 200)
    assert "X-Goatcounter" not in r
    hit = Hit.objects.select_related("path").get()
    assert (hit.site, hit.path.path, hit.path.title, hit.path.event) == (site, "/post/1", "First post", False)
    assert (hit.ref, hit.ref_scheme, hit.size, hit.first_visit) == ("news.example.com/item", "h", 1920, True)
    assert hit.browser.startswith("Firefox")
    assert hit.visitor is not None


def test_it_counts_a_post_like_sendbeacon(site):
    assert_gif(pixel({"p": "/beacon"}, method="post"), 200)
    assert stored_paths() == ["/beacon"]


def test_it_stores_an_event(site):
    assert_gif(pixel({"p": "/signup-click", "e": "true"}), 200)
    path = Hit.objects.select_related("path").get().path
    assert (path.path, path.event) == ("signup-click", True)


def test_it_finds_the_site_by_code_in_the_path(site, alice):
    other = Site.objects.create(code="alice-notes", owner=alice)  # no domain at all
    r = Client().get("/count/alice-notes?p=/note", HTTP_HOST="anything.example", REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    assert_gif(r, 200)
    assert list(Hit.objects.values_list("site", "path__path")) == [(other.pk, "/note")]


def test_it_drops_utm_parameters_from_the_path_and_keeps_the_campaign(site):
    r = pixel({"p": "/page%3Fid%3D3%26utm_source%3Dnews", "q": "%3Futm_source%3Dnewsletter%26utm_campaign%3Dspring"})
    assert_gif(r, 200)
    hit = Hit.objects.select_related("path").get()
    assert hit.path.path == "/page?id=3"
    assert (hit.ref, hit.ref_scheme, hit.campaign) == ("newsletter", "c", "spring")


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"t": "no path"}, "no path (p) given"),
        ({"p": "/x", "b": "7"}, "b: must be a number from 150 (set by count.js for headless browsers)"),
        ({"p": "/" + "x" * 2048}, "path (p) is longer than 2048 bytes"),
    ],
)
def test_it_refuses_a_bad_hit_with_a_reason(site, params, reason):
    r = pixel(params)
    assert_gif(r, 400)
    assert r["X-Goatcounter"] == reason
    assert not Hit.objects.exists()


@pytest.mark.parametrize("url", ["/count", "/count/nobody"])
def test_it_answers_404_for_an_unknown_site(db, url):
    r = Client().get(f"{url}?p=/x", HTTP_HOST="unknown.example", REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    assert_gif(r, 404)
    assert r["X-Goatcounter"]
    assert not Hit.objects.exists()


@pytest.mark.parametrize("header", [{"HTTP_DNT": "1"}, {"HTTP_SEC_GPC": "1"}])
def test_it_does_not_count_a_browser_that_asks_not_to_be_tracked(site, header):
    r = pixel({"p": "/private"}, **header)
    assert_gif(r, 202)
    assert "not counted" in r["X-Goatcounter"]
    assert not Hit.objects.exists() and not BotHit.objects.exists()


def test_it_does_not_count_a_prefetch(site):
    r = pixel({"p": "/next"}, HTTP_SEC_PURPOSE="prefetch")
    assert_gif(r, 200)
    assert r["X-Goatcounter"] == "not counted: a prefetch"
    assert not Hit.objects.exists()


def test_it_does_not_count_an_ignored_ip(site):
    r = Client().get("/count?p=/mine", HTTP_HOST=HOST, REMOTE_ADDR="192.0.2.9", HTTP_USER_AGENT=UA)
    assert_gif(r, 202)
    assert not Hit.objects.exists()


def test_it_keeps_a_bot_apart(site):
    assert_gif(pixel({"p": "/crawled"}, ua="curl/8.5.0"), 200)
    assert not Hit.objects.exists()
    assert list(BotHit.objects.values_list("path", flat=True)) == ["/crawled"]


def test_it_allows_4_hits_a_second_per_ip_and_user_agent(site):
    with time_machine.travel(NOW, tick=False) as traveller:
        for n in range(4):
            assert_gif(pixel({"p": f"/{n}"}), 200)
        r = pixel({"p": "/too-many"})
        assert_gif(r, 429)
        assert r["X-Goatcounter"].startswith("rate limited")
        assert r["Retry-After"] == "1"
        assert_gif(pixel({"p": "/other-browser"}, ua=OTHER_UA), 200)
        traveller.shift(timedelta(seconds=1))
        assert_gif(pixel({"p": "/next-second"}), 200)
    assert stored_paths() == ["/0", "/1", "/2", "/3", "/other-browser", "/next-second"]


def test_it_keeps_no_ip_and_no_user_agent_in_any_table(site):
    for n in range(2):
        assert_gif(pixel({"p": f"/{n}"}), 200)
    assert Hit.objects.count() == 2
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY', 'inet')"
        )
        holding = []
        for table, column in cursor.fetchall():
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s OR "{column}"::text LIKE %s',
                [f"%{IP}%", f"%{UA}%"],
            )
            if cursor.fetchone()[0]:
                holding.append(f"{table}.{column}")
    assert holding == []


def test_it_serves_count_js_as_javascript(db):
    r = Client().get("/count.js")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/javascript")
    assert b"".join(r.streaming_content)


def test_it_counts_b_0_as_goatcounters_own_script_sends_it(site):
    assert_gif(pixel({"p": "/from-count-js", "b": "0"}), 200)
    assert stored_paths() == ["/from-count-js"]


@pytest.mark.django_db(transaction=True)  # committed as in production: the deferred foreign keys are checked
def test_a_site_deleted_after_the_pixel_remembered_it_is_a_404_not_a_500(site):
    assert_gif(pixel({"p": "/before"}), 200)  # the site is remembered now
    Hit.objects.all().delete()
    Site.objects.filter(pk=site.pk).update(code="renamed")  # no signal: as if another process changed it
    Domain.objects.all()._raw_delete(Domain.objects.db)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM analytics_visitorpath; DELETE FROM analytics_path; DELETE FROM analytics_site")
    assert_gif(pixel({"p": "/after"}), 404)
    assert Hit.objects.count() == 0


def test_an_event_takes_no_campaign_from_the_query_as_on_the_api(site):
    assert_gif(pixel({"p": "/signup-click", "e": "true", "q": "%3Futm_campaign%3Dspring"}), 200)
    assert campaign_of("signup-click") == ""  # events lose their leading slash
    assert_gif(pixel({"p": "/landing", "q": "%3Futm_campaign%3Dspring"}), 200)
    assert campaign_of("/landing") == "spring"


def campaign_of(path: str) -> str:
    return Hit.objects.get(path__path=path).campaign
