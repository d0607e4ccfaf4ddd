"""Locations from the IP (analytics.geoip): a hit of the pixel, count.js or /api/v0/count gets its country (and
region, with a MaxMind City file) at count time, under the Django views and the ASGI hot path alike, and the stats
show it. The IP itself is kept nowhere.
"""

from __future__ import annotations

import ipaddress
import random
import re

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from analytics import geoip, sites
from analytics import pixel as asgi_pixel
from analytics.models import Domain, Hit, Site
from analytics.rollups import roll_up
from analytics.tests import test_count_asgi, test_pixel_asgi
from conftest import client_with_key, make_key
from logsvc.asgi import close_lookup_connections

HOST = "stats.alice.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
NL_IP = "193.0.6.139"  # the RIPE NCC's, in Amsterdam: NL in the registries' data iptocc ships
NL_IPV6 = "2001:67c:2e8::1"
PRIVATE_IPS = ["192.168.1.20", "10.0.0.7", "127.0.0.1", "::1", "fe80::1"]


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-pixel": "1000/60", "goatcounter-count": ""}
    sites.forget_pixel_sites()
    yield
    asgi_pixel.hits_batcher.forget()  # its loop is gone with an ASGI test's asyncio.run
    close_lookup_connections()


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain=HOST)
    return site


@pytest.fixture
def city_file(tmp_path) -> str:
    """A MaxMind City database of three networks, one of them private (as an operator's own file may have)."""
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    writer.insert_network(IPSet(["8.8.8.0/24"]), {"country": {"iso_code": "US"}, "subdivisions": [{"iso_code": "CA"}]})
    writer.insert_network(IPSet(["193.0.6.0/24"]), {"country": {"iso_code": "NL"}})
    writer.insert_network(IPSet(["10.0.0.0/8"]), {"country": {"iso_code": "DE"}})
    path = tmp_path / "GeoLite2-City.mmdb"
    writer.to_db_file(str(path))
    return str(path)


def pixel(ip: str, path: str = "/", **headers):
    return Client().get(f"/count?p={path}", HTTP_HOST=HOST, HTTP_USER_AGENT=UA, REMOTE_ADDR=ip, **headers)


def count(alice, *hits: dict, **body):
    client = client_with_key(make_key(alice, "count"))
    return client.post("/api/v0/count", {"hits": list(hits), **body}, format="json", HTTP_HOST=HOST)


def locations() -> list[str]:
    return list(Hit.objects.order_by("id").values_list("location", flat=True))


def stats(alice, page: str = "locations") -> dict[str, int]:
    roll_up()
    r = client_with_key(make_key(alice, "stats")).get(f"/api/v0/stats/{page}", HTTP_HOST=HOST)
    assert r.status_code == 200, r.content
    return {row["name"]: row["count"] for row in r.json()["stats"]}


# --- Django's views ------------------------------------------------------------------------------------------------


def test_it_stores_the_country_of_a_pixel_hits_ip_and_the_stats_show_it(alice, site):
    assert pixel(NL_IP, "/one").status_code == 200
    assert pixel(NL_IPV6, "/two").status_code == 200
    assert pixel("203.0.113.7", "/three").status_code == 200  # a documentation address: in no registry
    assert locations() == ["NL", "NL", ""]
    assert stats(alice) == {"NL": 2, "(unknown)": 1}


def test_it_places_an_ipv4_client_of_a_dual_stack_socket(site):
    assert pixel(f"::ffff:{NL_IP}").status_code == 200
    assert locations() == ["NL"]


def test_it_takes_the_ip_our_proxy_reports(settings, site):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert pixel("127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.1.1.1, {NL_IP}").status_code == 200
    assert locations() == ["NL"]


@pytest.mark.parametrize("ip", PRIVATE_IPS)
def test_a_private_or_loopback_ip_stays_unknown(site, ip):
    assert pixel(ip).status_code == 200
    assert locations() == [""]


def test_an_api_hit_gets_the_country_of_its_ip_and_an_explicit_location_wins(alice, site):
    r = count(
        alice,
        {"path": "/ip", "ip": NL_IP, "user_agent": UA},
        {"path": "/sent", "ip": NL_IP, "user_agent": UA, "location": "US-TX"},
        {"path": "/private", "ip": "192.168.0.3", "user_agent": UA},
        {"path": "/no-ip", "session": "s-1"},
    )
    assert r.status_code == 202, r.content
    assert dict(Hit.objects.values_list("path__path", "location")) == {
        "/ip": "NL",
        "/sent": "US-TX",
        "/private": "",
        "/no-ip": "",
    }
    assert stats(alice) == {"NL": 1, "US": 1, "(unknown)": 2}


# --- the ASGI hot path ---------------------------------------------------------------------------------------------


@pytest.fixture
def hot_path(monkeypatch) -> list[str]:
    """The locations of the hits the ASGI hot path hands to group commit (so not Django's views)."""
    submitted: list[str] = []
    real = asgi_pixel.hits_batcher.submit

    async def submit(item):
        submitted.extend(hit.location for hit in item.hits)
        return await real(item)

    monkeypatch.setattr(asgi_pixel.hits_batcher, "submit", submit)
    return submitted


@pytest.mark.django_db(transaction=True)
def test_the_hot_paths_pixel_stores_the_country_too(site, hot_path):
    answers = test_pixel_asgi.run(
        test_pixel_asgi.call("/count/alice-blog", "p=/nl", ip=NL_IP),
        test_pixel_asgi.call("/count/alice-blog", "p=/private", ip="192.168.1.20"),
    )
    assert [status for status, _, _ in answers] == [200, 200]
    assert sorted(hot_path) == ["", "NL"]
    assert dict(Hit.objects.values_list("path__path", "location")) == {"/nl": "NL", "/private": ""}


@pytest.mark.django_db(transaction=True)
def test_the_hot_paths_count_places_hits_by_ip_unless_they_say_where(alice, site, hot_path):
    hits = [
        {"path": "/ip", "ip": NL_IP, "user_agent": UA},
        {"path": "/sent", "ip": NL_IP, "user_agent": UA, "location": "us-ca"},
    ]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice, 'count')}"}
    status, _, _ = test_count_asgi.run(test_count_asgi.call(orjson.dumps({"hits": hits}), headers, "/api/v0/count"))[0]
    assert status == 202
    assert hot_path == ["NL", "US-CA"]
    assert dict(Hit.objects.values_list("path__path", "location")) == {"/ip": "NL", "/sent": "US-CA"}


# --- GEOIP_DATABASE: a MaxMind file ------------------------------------------------------------------------------


def test_a_maxmind_city_file_gives_the_region(settings, alice, site, city_file):
    settings.GEOIP_DATABASE = city_file
    for ip in ("8.8.8.8", NL_IP, "10.0.0.7", "1.1.1.1"):  # 1.1.1.1: not in this file, though iptocc has it
        assert pixel(ip, f"/{ip}").status_code == 200
    assert locations() == ["US-CA", "NL", "", ""]
    assert stats(alice) == {"US": 1, "NL": 1, "(unknown)": 2}
    r = client_with_key(make_key(alice, "stats")).get("/api/v0/stats/locations/US", HTTP_HOST=HOST)
    assert {row["name"]: row["count"] for row in r.json()["stats"]} == {"US-CA": 1}


@pytest.mark.django_db(transaction=True)
def test_the_hot_path_reads_the_maxmind_file_too(settings, site, city_file, hot_path):
    settings.GEOIP_DATABASE = city_file
    answers = test_pixel_asgi.run(test_pixel_asgi.call("/count/alice-blog", "p=/us", ip="8.8.8.8"))
    assert answers[0][0] == 200
    assert hot_path == ["US-CA"]
    assert locations() == ["US-CA"]


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [("missing.mmdb", None, "no file"), ("broken.mmdb", b"not a database", "is not a MaxMind DB (.mmdb) file")],
)
def test_a_file_that_cant_be_opened_fails_the_check_and_healthz_but_hits_still_count(
    settings, site, tmp_path, name, content, says
):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    settings.GEOIP_DATABASE = str(path)
    with pytest.raises(SystemCheckError, match=rf"analytics.E001.*GEOIP_DATABASE: .*{re.escape(says)}"):
        call_command("check")
    assert pixel(NL_IP).status_code == 200
    assert locations() == [""]
    health = Client().get("/healthz").json()
    assert health["status"] == "degraded"
    assert says in health["geoip"]


def test_the_check_passes_with_a_good_file_or_none(db, settings, city_file):  # db: Django's own checks ask it
    call_command("check")
    settings.GEOIP_DATABASE = city_file
    call_command("check")
    assert geoip.check_database() == []


def test_the_quick_test_for_a_public_address_agrees_with_ipaddress():
    rng = random.Random(12)
    addresses = [
        *PRIVATE_IPS,
        *["0.1.2.3", "100.64.0.1", "100.128.0.1", "172.31.0.1", "172.32.0.1", "192.0.2.1", "198.18.0.1"],
        *["203.0.113.9", "224.0.0.1", "255.255.255.255", "8.8.8.8", NL_IP, NL_IPV6, "2001:db8::1", "2002::1"],
        *["2::1", "fc00::1", "3fff::1", "2a00:1450::1", "64:ff9b::1.2.3.4"],
        *(str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(5000)),
        *(str(ipaddress.IPv6Address(rng.randrange(16) << 124 | rng.getrandbits(124))) for _ in range(5000)),
    ]
    assert [ip for ip in addresses if geoip._public(ip) != ipaddress.ip_address(ip).is_global] == []
