"""The dashboard's pages with Django's test client: "/" and /sites/<code>/, their numbers checked against the hits."""

from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import date, datetime, time, timedelta
from html import unescape

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from analytics import stats
from analytics.models import Domain, Hit, Site
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits

TZ = "Europe/Amsterdam"
URL = "/sites/shop/"


def local_time(days_ago: int, hour: int = 12) -> datetime:
    """A moment `days_ago` days before today, in TZ."""
    zone = zoneinfo.ZoneInfo(TZ)
    day = datetime.now(zone).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(hour), zone)


def today() -> date:
    return datetime.now(zoneinfo.ZoneInfo(TZ)).date()


def visitor(n: int) -> uuid.UUID:
    return uuid.UUID(int=n + 1)


BROWSERS = ["Chrome 131", "Firefox 133", "Safari 18.1", "Chrome 130"]
SYSTEMS = ["Windows 11", "macOS 15", "iOS 18", "Linux"]
SIZES = [1920, 1440, 390, 820]
LOCATIONS = ["NL", "DE", "US-CA", "FR"]
REFS = [("news.ycombinator.com", "h"), ("www.google.com", "h"), ("", ""), ("newsletter", "c")]
PAGES = [("/", "Home"), ("/pricing", "Pricing"), ("/blog/launch", "We launched"), ("/docs/setup", "Setup guide")]


def realistic_hits(count: int = 48, *, spread_days: int = 10) -> list[CleanHit]:
    """Visits of three pageviews each over the last days: a few pages, varied browsers and referrers, and a
    visitor hash per visit (it changes daily), so a page seen twice in a visit counts one visitor."""
    hits = []
    for n in range(count):
        visit = n // 3
        path, title = PAGES[(n * 7) % len(PAGES)] if n % 3 else PAGES[0]
        ref, scheme = REFS[visit % len(REFS)]
        hits.append(
            CleanHit(
                path=path,
                title=title,
                ref=ref,
                ref_scheme=scheme,
                browser=BROWSERS[visit % len(BROWSERS)],
                system=SYSTEMS[visit % len(SYSTEMS)],
                size=SIZES[visit % len(SIZES)],
                location=LOCATIONS[visit % len(LOCATIONS)],
                visitor=visitor(visit),
                created_at=local_time(visit % spread_days, hour=8 + visit % 12),
            )
        )
    return hits


def store(site: Site, hits: list[CleanHit]) -> None:
    with transaction.atomic():
        record_hits(site, hits)
    roll_up()


def expected(site: Site, start: date, end: date) -> dict:
    """What the hit table says about start..end (days of the site's zone): the dashboard must say the same."""
    low, high = stats.Range(start, end, site.timezone).utc_bounds()
    hits = Hit.objects.filter(site=site, created_at__gte=low, created_at__lt=high)
    return {"visitors": hits.filter(first_visit=True).count(), "pageviews": hits.count(), "hits": hits}


def search(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    found = re.search(pattern, text, flags)
    assert found is not None, pattern
    return found


def shown_totals(html: str) -> tuple[int, int]:
    visitors = search(r'id="total-visitors">([\d,]+)<', html).group(1)
    pageviews = search(r'id="total-pageviews">([\d,]+)<', html).group(1)
    return int(visitors.replace(",", "")), int(pageviews.replace(",", ""))


def shown_paths(html: str) -> dict[str, tuple[int, int]]:
    """path -> (visitors, pageviews) as the top pages table shows them."""
    rows = {}
    for row in re.findall(r'<tr class="path-row">(.*?)</tr>', html, re.DOTALL):
        name = unescape(search(r'class="path-name">(.*?)</span>', row).group(1))
        visitors = search(r'path-visitors">([\d,]+)<', row).group(1).replace(",", "")
        pageviews = search(r'path-pageviews">([\d,]+)<', row).group(1).replace(",", "")
        rows[name] = (int(visitors), int(pageviews))
    return rows


def shown_list(html: str, title: str) -> dict[str, int]:
    """name -> visitors in one of the smaller top lists (Referrers, Browsers, ...)."""
    section = search(rf'data-list="{title}".*?</section>', html, re.DOTALL).group(0)
    return {
        unescape(name): int(count.replace(",", ""))
        for name, count in re.findall(r'row-name">(.*?)</span><span class="num row-visitors">([\d,]+)<', section)
    }


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="shop", owner=alice, timezone=TZ)
    Domain.objects.create(site=site, domain="shop.example.org")
    return site


@pytest.fixture
def alice_browser(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def charlie_browser(charlie) -> Client:
    client = Client()
    client.force_login(charlie)
    return client


def test_it_shows_the_numbers_that_were_stored(site, alice_browser):
    store(site, realistic_hits())
    start, end = today() - timedelta(days=29), today()
    want = expected(site, start, end)

    r = alice_browser.get(URL)

    assert r.status_code == 200
    html = r.content.decode()
    assert shown_totals(html) == (want["visitors"], want["pageviews"])
    assert want["pageviews"] == 48 and 0 < want["visitors"] < 48  # returning people are not new visitors
    hits = want["hits"]
    pricing = hits.filter(path__path="/pricing")
    assert shown_paths(html)["/pricing"] == (pricing.filter(first_visit=True).count(), pricing.count())
    assert set(shown_paths(html)) == {path for path, _ in PAGES}
    chrome = hits.filter(browser__startswith="Chrome ")
    assert shown_list(html, "Browsers")["Chrome"] == chrome.filter(first_visit=True).count() > 0
    google = hits.filter(ref="www.google.com")
    assert shown_list(html, "Referrers")["www.google.com"] == google.filter(first_visit=True).count()
    assert shown_list(html, "Locations")["US"] == hits.filter(location="US-CA", first_visit=True).count()
    assert "Phones" in shown_list(html, "Screen sizes")
    assert "Windows" in shown_list(html, "Systems")
    assert "Setup guide" in html  # a page's title under its path
    assert "<svg" in html and "<title>" in html  # the chart, with a tooltip per day


def test_it_formats_numbers_with_thousands_separators(site, alice_browser):
    hits = [CleanHit(path="/popular", created_at=local_time(1)) for _ in range(1234)]  # no visitor hash: all new
    store(site, hits)

    html = alice_browser.get(URL).content.decode()

    assert 'id="total-pageviews">1,234<' in html
    assert 'path-visitors">1,234<' in html


def test_it_shows_the_range_asked_for(site, alice_browser):
    store(site, realistic_hits())
    start, end = today() - timedelta(days=3), today() - timedelta(days=1)
    want = expected(site, start, end)

    r = alice_browser.get(URL, {"start": start.isoformat(), "end": end.isoformat()})

    html = r.content.decode()
    assert shown_totals(html) == (want["visitors"], want["pageviews"])
    assert 0 < want["pageviews"] < 48
    assert f'name="start" value="{start.isoformat()}"' in html
    assert 'role="alert"' not in html


def test_it_marks_the_preset_in_use(site, alice_browser):
    start = today() - timedelta(days=6)
    html = alice_browser.get(URL, {"start": start.isoformat(), "end": today().isoformat()}).content.decode()

    assert re.search(r'class="active" aria-current="true">7 days<', html)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2025-13-01", "end": "2025-12-31"},
        {"start": "yesterday", "end": "today"},
        {"start": "2025-05-10", "end": "2025-05-01"},  # backwards
        {"start": "2025-05-10"},  # no end
        {"start": "2015-01-01", "end": "2025-01-01"},  # too long
        {"start": "<script>", "end": "2025-01-01"},
    ],
)
def test_it_shows_the_default_range_for_a_bad_one(site, alice_browser, params):
    store(site, realistic_hits())
    want = expected(site, today() - timedelta(days=29), today())

    r = alice_browser.get(URL, params)

    assert r.status_code == 200
    html = r.content.decode()
    assert 'role="alert"' in html and "showing the last 30 days instead" in html
    assert shown_totals(html) == (want["visitors"], want["pageviews"])
    assert "<script>" not in html


def test_it_redirects_a_stranger_to_the_login_page(site, client):
    r = client.get(f"{URL}?start=2025-01-01&end=2025-01-31")

    assert r.status_code == 302
    assert r["Location"] == "/accounts/login/?next=/sites/shop/%3Fstart%3D2025-01-01%26end%3D2025-01-31"


def test_it_hides_a_site_from_other_users(site, charlie_browser):
    assert charlie_browser.get(URL).status_code == 404


def test_it_404s_an_unknown_site(alice_browser, client):
    assert alice_browser.get("/sites/nope/").status_code == 404
    assert client.get("/sites/nope/").status_code == 404


def test_it_shows_a_public_site_to_anyone_read_only(site, client, charlie_browser):
    site.public = True
    site.save()
    store(site, realistic_hits())
    want = expected(site, today() - timedelta(days=29), today())

    for browser in (client, charlie_browser):
        r = browser.get(URL)
        assert r.status_code == 200
        assert shown_totals(r.content.decode()) == (want["visitors"], want["pageviews"])
        assert "Public" in r.content.decode()


def test_it_shows_how_to_add_count_js_when_there_is_nothing(site, alice_browser, client):
    html = alice_browser.get(URL).content.decode()

    assert "No pageviews in this range yet" in html
    assert "data-goatcounter=&quot;http://testserver/count/shop&quot;" in html
    assert "http://testserver/count.js" in html
    assert shown_totals(html) == (0, 0)

    site.public = True
    site.save()
    html = client.get(URL).content.decode()
    assert "No pageviews in this range yet" in html and "count.js" not in html  # only the owner needs it


def test_it_escapes_what_visitors_sent(site, alice_browser):
    evil = "<script>alert(1)</script>"
    store(site, [CleanHit(path=f"/{evil}", title=evil, ref=evil, ref_scheme="o", created_at=local_time(1))])

    html = alice_browser.get(URL).content.decode()

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert shown_paths(html) == {f"/{evil}": (1, 1)}
    assert shown_list(html, "Referrers") == {evil: 1}


def test_it_runs_the_same_queries_whatever_the_data(site, alice_browser):
    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert alice_browser.get(URL).status_code == 200
        return [query["sql"] for query in captured]

    store(site, [CleanHit(path=f"/few/{n}", browser="Firefox 133", created_at=local_time(n)) for n in range(5)])
    few = queries()
    store(site, realistic_hits(300) + [CleanHit(path=f"/many/{n}", created_at=local_time(n % 20)) for n in range(50)])
    many = queries()

    assert len(few) == len(many) == 13  # session, user, site, domains, 9 stats queries
    assert not [sql for sql in many if re.search(r'\banalytics_hit\b|"analytics_hit"', sql)]  # rollups only


def test_it_lists_a_users_sites_with_their_week(site, alice_browser, charlie):
    Site.objects.create(code="charlies", owner=charlie)
    Site.objects.create(code="blog", owner=site.owner, timezone="America/New_York")
    store(site, realistic_hits())
    want = expected(site, today() - timedelta(days=6), today())

    r = alice_browser.get("/")

    assert r.status_code == 200
    html = r.content.decode()
    assert 'href="/sites/shop/"' in html and 'href="/sites/blog/"' in html
    assert "charlies" not in html
    assert "shop.example.org" in html
    assert f'data-site-visitors="shop">{want["visitors"]:,}<' in html
    assert 'data-site-visitors="blog">0<' in html
    assert 'href="/api.html"' in html
    assert 'href="/admin/"' not in html  # alice is no staff


def test_it_links_the_admin_for_staff(alice, alice_browser):
    alice.is_staff = True
    alice.save()

    assert 'href="/admin/"' in alice_browser.get("/").content.decode()


def test_it_lists_sites_with_a_fixed_number_of_queries(alice, alice_browser):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert alice_browser.get("/").status_code == 200
        return len(captured)

    Site.objects.create(code="one", owner=alice)
    one = count()
    for n in range(5):
        site = Site.objects.create(code=f"more-{n}", owner=alice)
        Domain.objects.create(site=site, domain=f"more-{n}.example.org")
    assert count() == one


def test_it_greets_a_stranger_with_a_way_to_sign_in(client):
    r = client.get("/")

    assert r.status_code == 200
    assert 'href="/accounts/login/?next=/"' in r.content.decode()


def test_it_draws_a_days_sparklines_by_the_hour(site, alice_browser):
    store(site, realistic_hits())
    day = today().isoformat()

    html = alice_browser.get(URL, {"start": day, "end": day}).content.decode()

    lines = re.findall(r'<polyline points="([^"]*)"', html)
    assert lines and all(len(line.split()) == 24 for line in lines)
    assert html.count('class="day"') == 1
