"""/api/v0/me and /api/v0/sites, createsite and createapikey --site, and which site a request is for."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from analytics import sites
from analytics.models import Domain, Hit, Site
from analytics.serializers import rfc3339
from conftest import client_with_key, make_key
from logsvc.models import ApiKey

ME = "/api/v0/me"
SITES = "/api/v0/sites"
HOST = "stats.alice.example"


@pytest.fixture(autouse=True)
def _any_host(settings):
    settings.ALLOWED_HOSTS = ["*"]
    sites.forget_pixel_sites()


def make_site(owner, code: str, *domains: str) -> Site:
    site = Site.objects.create(code=code, owner=owner)
    for domain in domains:
        Domain.objects.create(site=site, domain=domain)
    return site


@pytest.fixture
def blog(alice) -> Site:
    return make_site(alice, "alice-blog", HOST)


@pytest.fixture
def charlies(charlie) -> Site:
    return make_site(charlie, "charlie-site", "charlie.example")


def site_url(site: Site) -> str:
    return f"{SITES}/{site.pk}"


# --- /api/v0/me -------------------------------------------------------------------------------------------------


def test_me_shows_the_user_the_key_and_its_sites(api_client, alice, blog, charlies):
    r = api_client.get(ME)
    assert r.status_code == 200
    assert r.json() == {
        "user": {
            "id": alice.pk,
            "username": "alice",
            "email": "alice@example.org",
            "email_verified": False,
            "totp_enabled": False,
            "access": {"all": "a"},
            "settings": {},
            "site": blog.pk,
            "created_at": rfc3339(alice.date_joined),
        },
        "token": {
            "name": "test",
            "permissions": 2 | 4 | 8 | 16 | 32 | 64,  # GoatCounter's bits: every one of its permissions
            "scopes": sorted(ApiKey.objects.get(user=alice).scopes),
            "sites": [blog.pk],
            "bound_to_sites": False,
        },
    }


def test_me_shows_only_the_sites_a_bound_key_acts_for(alice, blog):
    make_site(alice, "alice-notes")
    raw = make_key(alice, "count")
    ApiKey.objects.get(user=alice).sites.set([blog])
    token = client_with_key(raw).get(ME).json()["token"]
    assert (token["scopes"], token["sites"], token["bound_to_sites"]) == (["count"], [blog.pk], True)
    assert token["permissions"] == 2  # GoatCounter's "count"


def test_me_maps_scopes_without_a_goatcounter_permission_to_its_nothing(alice, blog):
    token = client_with_key(make_key(alice, "logs:read", "stats")).get(ME).json()["token"]
    assert token["permissions"] == 64
    token = client_with_key(make_key(alice, "logs:read")).get(ME).json()["token"]
    assert token["permissions"] == 1


def test_me_shows_charlie_his_own(charlie_client, charlie, blog, charlies):
    r = charlie_client.get(ME)
    assert r.status_code == 200
    assert r.json()["user"]["username"] == "charlie"
    assert r.json()["token"]["sites"] == [charlies.pk]


def test_me_needs_a_key(db):
    r = APIClient().get(ME)
    assert r.status_code == 401
    assert "error" in r.json()


# --- GET/PUT /api/v0/sites --------------------------------------------------------------------------------------


def test_it_lists_the_users_sites(api_client, alice, blog, charlies):
    notes = make_site(alice, "alice-notes")
    r = api_client.get(SITES)
    assert r.status_code == 200
    assert [(s["id"], s["code"], s["domains"]) for s in r.json()["sites"]] == [
        (blog.pk, "alice-blog", [HOST]),
        (notes.pk, "alice-notes", []),
    ]
    assert r.json()["sites"][0]["settings"] == {
        "public": False,
        "timezone": "UTC",
        "ignore_ips": [],
        "data_retention": 0,
    }


def test_it_never_lists_another_users_sites(charlie_client, blog, charlies):
    r = charlie_client.get(SITES)
    assert r.status_code == 200
    assert [s["code"] for s in r.json()["sites"]] == ["charlie-site"]


def test_it_lists_nothing_without_a_key(blog):
    r = APIClient().get(SITES)
    assert r.status_code == 401
    assert "sites" not in r.json()


def test_it_needs_the_sites_scope(alice, blog):
    client = client_with_key(make_key(alice, "count"))
    assert client.get(SITES).status_code == 403
    r = client.put(SITES, {"code": "sneaky"}, format="json")
    assert r.status_code == 403
    assert "error" in r.json()
    assert not Site.objects.filter(code="sneaky").exists()


def test_it_creates_a_site_with_put(api_client, alice):
    r = api_client.put(
        SITES,
        {"code": "alice-shop", "domains": ["Shop.Alice.Example"], "settings": {"timezone": "Europe/Amsterdam"}},
        format="json",
    )
    assert r.status_code == 200
    site = Site.objects.get(code="alice-shop")
    assert (site.owner, site.timezone) == (alice, "Europe/Amsterdam")
    assert list(site.domains.values_list("domain", flat=True)) == ["shop.alice.example"]
    assert r.json()["id"] == site.pk
    assert r.json()["domains"] == ["shop.alice.example"]


def test_it_matches_field_names_in_any_case_as_goatcounters_server_does(api_client, alice):
    r = api_client.put(SITES, {"Code": "alice-shop", "CName": "shop.alice.example"}, format="json")
    assert r.status_code == 200
    site = Site.objects.get(code="alice-shop")
    assert list(site.domains.values_list("domain", flat=True)) == ["shop.alice.example"]
    r = api_client.patch(f"{SITES}/{site.pk}", {"Link_Domain": "alice.example"}, format="json")
    assert (r.status_code, r.json()["link_domain"]) == (200, "alice.example")


def test_a_key_bound_to_a_site_acts_for_the_sites_it_creates_and_keeps_working(alice, blog):
    raw = make_key(alice, "sites", "stats", "count")
    key = ApiKey.objects.get(user=alice)
    key.sites.set([blog])
    client = client_with_key(raw)
    r = client.put(SITES, {"code": "alice-shop", "cname": "Shop.Alice.Example"}, format="json")
    assert r.status_code == 200
    shop = Site.objects.get(code="alice-shop")
    assert shop.created_by_key == key and list(key.sites.all()) == [blog]
    assert [s["code"] for s in client.get(SITES).json()["sites"]] == ["alice-blog", "alice-shop"]
    assert client.get(site_url(shop)).status_code == 200
    # Without a Host of the new site its requests go to its own site, as before (it was a 400 "several sites")
    assert client.get("/api/v0/paths").status_code == 200
    assert count(client, "example.net").status_code == 202
    assert Hit.objects.get().site == blog
    # ... and with the new site's Host (its cname), to the new site
    assert count(client, "shop.alice.example").status_code == 202
    assert sorted(Hit.objects.values_list("site__code", flat=True)) == ["alice-blog", "alice-shop"]


def test_an_unbound_key_keeps_its_only_site_after_creating_another(api_client, alice, blog):
    assert api_client.put(SITES, {"code": "alice-shop"}, format="json").status_code == 200
    r = count(api_client, "example.net")
    assert r.status_code == 202
    assert Hit.objects.get().site == blog


def test_it_refuses_a_taken_code(charlie_client, blog):
    r = charlie_client.put(SITES, {"code": "alice-blog"}, format="json")
    assert r.status_code == 400
    assert r.json() == {"errors": {"code": ["This code is taken; choose another."]}}
    assert Site.objects.count() == 1


def test_it_refuses_a_taken_domain(charlie_client, charlie, blog):
    r = charlie_client.put(SITES, {"code": "charlie-blog", "domains": [HOST.upper()]}, format="json")
    assert r.status_code == 400
    assert r.json() == {"errors": {"domains": [f"{HOST} belongs to another site."]}}
    assert not Site.objects.filter(owner=charlie).exists()
    assert Domain.objects.get(domain=HOST).site == blog


def test_it_refuses_a_bad_code(api_client):
    r = api_client.put(SITES, {"code": "Not A Code"}, format="json")
    assert r.status_code == 400
    assert list(r.json()["errors"]) == ["code"]
    assert not Site.objects.exists()


def test_it_creates_nothing_without_a_key(db):
    assert APIClient().put(SITES, {"code": "anon-site"}, format="json").status_code == 401
    assert not Site.objects.exists()


# --- GET/PATCH /api/v0/sites/<id> -------------------------------------------------------------------------------


def test_it_shows_one_site(api_client, blog):
    r = api_client.get(site_url(blog))
    assert r.status_code == 200
    assert (r.json()["id"], r.json()["code"], r.json()["domains"]) == (blog.pk, "alice-blog", [HOST])


def test_it_hides_another_users_site(charlie_client, blog):
    r = charlie_client.get(site_url(blog))
    assert r.status_code == 404
    assert list(r.json()) == ["error"]
    r = charlie_client.patch(site_url(blog), {"settings": {"timezone": "Asia/Tokyo"}}, format="json")
    assert r.status_code == 404
    blog.refresh_from_db()
    assert blog.timezone == "UTC"


def test_it_shows_no_site_without_a_key(blog):
    assert APIClient().get(site_url(blog)).status_code == 401
    assert APIClient().patch(site_url(blog), {"settings": {"public": True}}, format="json").status_code == 401
    blog.refresh_from_db()
    assert blog.public is False


def test_it_changes_only_the_fields_sent(api_client, blog):
    r = api_client.patch(
        site_url(blog), {"settings": {"timezone": "Europe/Berlin", "ignore_ips": ["192.0.2.1"]}}, format="json"
    )
    assert r.status_code == 200
    assert r.json()["settings"] == {
        "public": False,
        "timezone": "Europe/Berlin",
        "ignore_ips": ["192.0.2.1"],
        "data_retention": 0,
    }
    blog.refresh_from_db()
    assert (blog.code, blog.timezone, blog.ignore_ips, blog.public) == (
        "alice-blog",
        "Europe/Berlin",
        ["192.0.2.1"],
        False,
    )
    assert list(blog.domains.values_list("domain", flat=True)) == [HOST]


def test_it_refuses_an_unknown_timezone(api_client, blog):
    r = api_client.patch(site_url(blog), {"settings": {"timezone": "Mars/Olympus"}}, format="json")
    assert r.status_code == 400
    assert list(r.json()) == ["errors"]
    assert list(r.json()["errors"]) == ["settings.timezone"]  # the seed's {"key": [messages]}, keys dotted
    assert "Mars/Olympus" in r.json()["errors"]["settings.timezone"][0]
    blog.refresh_from_db()
    assert blog.timezone == "UTC"


# --- manage.py createsite, createapikey --site -------------------------------------------------------------------


def test_createsite_creates_a_site_with_its_domains(alice, capsys):
    call_command("createsite", "alice-docs", "--owner", "alice", "--domain", "Docs.Alice.Example", "--timezone", "UTC")
    site = Site.objects.get(code="alice-docs")
    assert site.owner == alice
    assert list(site.domains.values_list("domain", flat=True)) == ["docs.alice.example"]
    assert "Created site alice-docs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new-site", "--owner", "nobody"], "No user 'nobody'"),
        (["Bad Code", "--owner", "alice"], "code:"),
        (["new-site", "--owner", "alice", "--timezone", "Mars/Olympus"], "timezone:"),
        (["alice-blog", "--owner", "alice"], "code:"),
    ],
)
def test_createsite_refuses_bad_input(blog, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("createsite", *args)
    assert list(Site.objects.values_list("code", flat=True)) == ["alice-blog"]


def test_createapikey_binds_the_key_to_a_site(alice, blog, capsys):
    call_command("createapikey", "alice", "--scope", "count", "--site", "alice-blog")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    key = ApiKey.objects.get(user=alice)
    assert list(key.sites.all()) == [blog]
    r = client_with_key(raw).get(ME)
    assert r.json()["token"]["sites"] == [blog.pk]


def test_createapikey_refuses_another_users_site(charlie, blog):
    with pytest.raises(CommandError, match="charlie owns no site alice-blog"):
        call_command("createapikey", "charlie", "--scope", "count", "--site", "alice-blog")
    assert not ApiKey.objects.exists()


# --- Which site a request is for ---------------------------------------------------------------------------------


def count(client: APIClient, host: str):
    return client.post("/api/v0/count", {"no_sessions": True, "hits": [{"path": "/"}]}, format="json", HTTP_HOST=host)


def counted_sites() -> list[str]:
    return list(Hit.objects.order_by("id").values_list("site__code", flat=True))


def test_the_host_picks_one_of_the_users_sites(api_client, alice, blog):
    make_site(alice, "alice-notes", "notes.alice.example")
    assert count(api_client, "notes.alice.example").status_code == 202
    assert count(api_client, HOST).status_code == 202
    assert counted_sites() == ["alice-notes", "alice-blog"]


def test_a_users_only_site_needs_no_host(api_client, blog):
    assert count(api_client, "api.logsvc.example").status_code == 202
    assert counted_sites() == ["alice-blog"]


def test_an_unknown_host_is_ambiguous_with_several_sites(api_client, alice, blog):
    make_site(alice, "alice-notes")
    r = count(api_client, "api.logsvc.example")
    assert r.status_code == 400
    assert list(r.json()["errors"]) == ["site"]
    assert "api.logsvc.example" in r.json()["errors"]["site"][0]
    assert not Hit.objects.exists()


def test_a_user_without_sites_is_told_to_create_one(api_client):
    r = count(api_client, HOST)
    assert r.status_code == 400
    assert "create one" in r.json()["errors"]["site"][0]


def test_a_key_bound_to_one_site_counts_there_whatever_the_host(alice, blog):
    make_site(alice, "alice-notes", "notes.alice.example")
    raw = make_key(alice, "count")
    ApiKey.objects.get(user=alice).sites.set([blog])
    assert count(client_with_key(raw), "notes.alice.example").status_code == 202
    assert counted_sites() == ["alice-blog"]


def test_a_key_bound_to_several_sites_needs_the_host_of_one(alice, blog):
    notes = make_site(alice, "alice-notes", "notes.alice.example")
    make_site(alice, "alice-shop", "shop.alice.example")
    raw = make_key(alice, "count")
    ApiKey.objects.get(user=alice).sites.set([blog, notes])
    client = client_with_key(raw)
    assert count(client, "notes.alice.example").status_code == 202
    r = count(client, "shop.alice.example")  # alice's too, but not one this key is bound to
    assert r.status_code == 400
    assert "several sites" in r.json()["errors"]["site"][0]
    assert counted_sites() == ["alice-notes"]


def test_another_users_host_never_decides_the_site(charlie_client, blog, charlies):
    r = count(charlie_client, HOST)  # alice's domain: charlie's hit goes to his only site, never hers
    assert r.status_code == 202
    assert counted_sites() == ["charlie-site"]


def test_a_user_with_several_sites_is_not_sent_to_anothers_by_the_host(charlie, blog, charlies):
    make_site(charlie, "charlie-notes", "notes.charlie.example")
    r = count(client_with_key(make_key(charlie)), HOST)
    assert r.status_code == 400
    assert "None of your sites has the domain 'stats.alice.example'" in r.json()["errors"]["site"][0]
    assert not Hit.objects.exists()


# The names the service answers on: anyone who claimed one would take every unbound key's requests there, and
# the pixel's hits, from their owners.
SERVICE_HOSTS = ["localhost", "LocalHost", "app.localhost", "127.0.0.1", "10.1.2.3", "logs.example.com", "example.net"]


@pytest.mark.parametrize("domain", SERVICE_HOSTS)
def test_no_user_may_claim_a_name_of_the_service(settings, api_client, blog, domain):
    settings.ALLOWED_HOSTS = ["logs.example.com", ".example.net", "*"]
    r = api_client.put(SITES, {"code": "grab", "domains": [domain]}, format="json")
    assert r.status_code == 400
    assert "is a name of this service itself" in r.json()["errors"]["domains"][0]
    r = api_client.patch(site_url(blog), {"domains": [HOST, domain]}, format="json")
    assert r.status_code == 400
    assert not Site.objects.filter(code="grab").exists()
    assert list(Domain.objects.values_list("domain", flat=True)) == [HOST]


def test_the_site_url_host_is_the_services_too(settings, api_client):
    settings.SITE_URL = "https://stats.example.org"
    r = api_client.put(SITES, {"code": "grab", "domains": ["stats.example.org"]}, format="json")
    assert r.status_code == 400
    assert not Site.objects.exists()


def test_a_subdomain_of_a_wildcard_host_may_be_a_sites(settings, api_client):
    settings.ALLOWED_HOSTS = [".example.net"]
    r = api_client.put(SITES, {"code": "blog", "domains": ["blog.example.net"]}, format="json", HTTP_HOST="example.net")
    assert r.status_code == 200
    assert list(Domain.objects.values_list("domain", flat=True)) == ["blog.example.net"]


def test_it_names_a_bad_domain_and_a_bad_ip_by_their_index(api_client, blog):
    r = api_client.patch(site_url(blog), {"domains": [HOST, "not a host"]}, format="json")
    assert r.status_code == 400
    assert list(r.json()["errors"]) == ["domains.1"]
    r = api_client.patch(site_url(blog), {"settings": {"ignore_ips": ["192.0.2.1", "nope"]}}, format="json")
    assert r.status_code == 400
    assert list(r.json()["errors"]) == ["settings.ignore_ips.1"]
    blog.refresh_from_db()
    assert blog.ignore_ips == []
    assert list(blog.domains.values_list("domain", flat=True)) == [HOST]


def test_a_cname_is_one_more_domain_within_the_twenty(api_client, blog):
    domains = [f"d{n}.alice.example" for n in range(19)]
    r = api_client.patch(site_url(blog), {"domains": domains, "cname": "www.alice.example"}, format="json")
    assert r.status_code == 200
    assert set(blog.domains.values_list("domain", flat=True)) == {*domains, "www.alice.example"}
    r = api_client.patch(site_url(blog), {"cname": "shop.alice.example"}, format="json")
    assert r.status_code == 400
    assert r.json() == {"errors": {"cname": ["A site has at most 20 domains: leave one out of domains for it."]}}
    assert blog.domains.count() == 20
