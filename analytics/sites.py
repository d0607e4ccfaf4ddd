"""Which site a request is for: the API key's site, else the one of the caller's sites whose domain is the Host."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Final, Literal, TypedDict
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import BooleanField, Exists, OuterRef, Prefetch, Q
from django.db.models.expressions import RawSQL
from rest_framework import exceptions
from rest_framework.request import Request

from analytics.models import Domain, Site
from logsvc.models import ApiKey, Deletion

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from logsvc.asgi import AsgiRequest

    class KeySiteAnnotations(TypedDict):
        bound: bool  # the key is bound to the site (else it created it)

    KeySite = WithAnnotations[Site, KeySiteAnnotations]


def request_host(request) -> str:
    """The Host without its port, lower-cased (Django has checked it against ALLOWED_HOSTS)."""
    host = request.get_host().lower()
    if host.startswith("["):  # [::1]:8000
        return host.partition("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def live(queryset):
    """The sites of queryset that are not being deleted (logsvc.deletion), alone or with their owner's account: such a
    site counts nothing and answers nothing from the moment its deletion is asked for. Raw SQL in the same query: two
    Exists() with OuterRef doubled the ORM's cost of building key_sites() on every /api/v0 request; this adds a tenth."""
    return queryset.filter(_LIVE)


_LIVE = RawSQL(
    f"NOT EXISTS (SELECT FROM {Deletion._meta.db_table} d WHERE d.kind = '{Deletion.Kind.SITE}' "
    f"AND d.target = {Site._meta.db_table}.id OR d.kind = '{Deletion.Kind.ACCOUNT}' "
    f"AND d.target = {Site._meta.db_table}.owner_id)",
    (),
    output_field=BooleanField(),
)


def with_domains(queryset):
    return queryset.prefetch_related(Prefetch("domains", queryset=Domain.objects.order_by("domain")))


def key_sites(key: ApiKey) -> list[KeySite]:
    """The sites a key is bound to and those it created (PUT /api/v0/sites), in one query; each site's `bound`
    says which it is. A key bound to no site acts for all of its user's."""
    bound = Site.api_keys.through.objects.filter(site_id=OuterRef("pk"), apikey_id=key.pk)
    return list(
        with_domains(
            live(Site.objects.filter(Q(api_keys=key) | Q(created_by_key=key))).distinct().annotate(bound=Exists(bound))
        )
    )


def sites_of_key(key: ApiKey) -> Sequence[Site]:
    """The sites a key may act for: those it is bound to (and created), else all of its user's."""
    own = key_sites(key)
    if any(site.bound for site in own):
        return own
    return list(with_domains(live(Site.objects.filter(owner_id=key.user_id))))


def site_for_request(request: Request | AsgiRequest) -> Site:
    """The site an /api/v0 request is about, always one its caller may use: the one whose domain is the Host among
    those the key acts for, else the key's site (the one it is bound to, or the caller's only site; sites the key
    created itself do not count here, so creating one leaves the key working as before). Another user's domain
    never decides it. A clear 400 when that can't be told."""
    key = request.auth
    assert isinstance(key, ApiKey)
    own = key_sites(key)
    bound = [site for site in own if site.bound]
    candidates = own if bound else list(with_domains(live(Site.objects.filter(owner_id=key.user_id))))
    host = request_host(request)
    matches = [site for site in candidates if host in site_hosts(site)]
    if len(matches) == 1:
        return matches[0]
    home = bound or [site for site in candidates if site.created_by_key_id != key.pk]
    if len(home) == 1:
        return home[0]
    if bound:
        codes = ", ".join(site.code for site in bound)
        raise exceptions.ValidationError(
            {"site": [f"This key acts for several sites ({codes}); send the request to the domain of one of them."]}
        )
    if not candidates:
        raise exceptions.ValidationError(
            {"site": ["You have no site yet: create one (PUT /api/v0/sites, or manage.py createsite)."]}
        )
    why = (
        f"None of your sites has the domain {host!r} and you have {len(candidates)} sites: send the request to a "
        "site's domain, or use a key bound to one site (manage.py createapikey ... --site CODE)."
    )
    raise exceptions.ValidationError({"site": [why]})


def service_host(domain: str) -> bool:
    """Whether domain is a name the service itself answers on, which no user may claim for a site: localhost, an
    IP address, a host of ALLOWED_HOSTS (the apex of a '.example.com' wildcard) or of SITE_URL."""
    domain = domain.lower().rstrip(".")
    if domain == "localhost" or domain.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(domain.strip("[]"))
        return True
    except ValueError:
        pass
    own = {host.lower().lstrip(".") for host in settings.ALLOWED_HOSTS if host != "*"}
    if settings.SITE_URL:
        own.add((urlsplit(settings.SITE_URL).hostname or "").lower())
    return domain in own


def site_hosts(site: Site) -> tuple[str, ...]:
    """The site's domains; for a site the pixel remembers (site_for_pixel), read once with it."""
    if (hosts := getattr(site, "pixel_hosts", None)) is not None:
        return hosts
    return tuple(domain.domain for domain in site.domains.all())


# host or code -> (when read, the site with its domains, or None); the pixel asks on every request
_recent: dict[str, tuple[float, Site | None]] = {}
RECENT_SECONDS = 10


class _NotSeen(Enum):
    NOT_SEEN = "not seen"


NOT_SEEN: Final = _NotSeen.NOT_SEEN


def recent_pixel_site(*, host: str = "", code: str = "") -> Site | None | Literal[_NotSeen.NOT_SEEN]:
    """site_for_pixel() from memory only, without a query: NOT_SEEN when it must be read (the async pixel)."""
    seen = _recent.get(f"code:{code}" if code else f"host:{host}")
    if seen is not None and time.monotonic() - seen[0] < RECENT_SECONDS:
        return seen[1]
    return NOT_SEEN


def site_for_pixel(*, host: str = "", code: str = "") -> Site | None:
    """The site a /count request is for, by its code in the path or else by Host; remembered for seconds."""
    site = recent_pixel_site(host=host, code=code)
    if site is not NOT_SEEN:
        return site
    lookup = f"code:{code}" if code else f"host:{host}"
    now = time.monotonic()
    sites = with_domains(live(Site.objects.all()))
    site = (sites.filter(code=code) if code else sites.filter(domains__domain=host)).first()
    if site is not None:
        site.pixel_hosts = site_hosts(site)  # not again at each hit: building the related manager costs
    if len(_recent) > 1000:
        _recent.clear()
    _recent[lookup] = (now, site)
    return site


PathKey = tuple[int, str, bool]  # site id, path, event
# Paths this process's pixel batches read lately (so committed: not those a batch inserted, which may yet roll
# back), with the title each last had here: a batch whose paths are all here, titles unchanged, reads none (a round
# trip less a batch, most batches: analytics.pixel._path_ids). Emptied when it grows past KNOWN_PATHS, and with
# the sites: a site deleted in another process is found when the database refuses its hit.
known_paths: dict[PathKey, tuple[int, str]] = {}
KNOWN_PATHS = 50_000


def forget_pixel_sites(**kwargs) -> None:
    """A site or domain changed here, or its deletion started: the next pixel hit reads it (and its paths) again
    (other processes: within seconds)."""
    _recent.clear()
    known_paths.clear()
