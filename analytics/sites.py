"""Which site a request is for: the API key's site, else the site whose domain is the request's Host."""

from __future__ import annotations

import time

from django.db.models import Prefetch
from rest_framework import exceptions
from rest_framework.request import Request

from analytics.models import Domain, Site
from logsvc.models import ApiKey


def request_host(request) -> str:
    """The Host without its port, lower-cased (Django has checked it against ALLOWED_HOSTS)."""
    host = request.get_host().lower()
    if host.startswith("["):  # [::1]:8000
        return host.partition("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def with_domains(queryset):
    return queryset.prefetch_related(Prefetch("domains", queryset=Domain.objects.order_by("domain")))


def sites_of_key(key: ApiKey) -> list[Site]:
    """The sites a key may act for: those it is bound to, else all of its user's."""
    bound = list(with_domains(key.sites.all()))
    return bound or list(with_domains(Site.objects.filter(owner_id=key.user_id)))


def site_for_request(request: Request) -> Site:
    """The site an /api/v0 request is about; a clear 400 or 403 when that can't be told."""
    key = request.auth
    assert isinstance(key, ApiKey)
    bound = list(with_domains(key.sites.all()))
    host = request_host(request)
    if len(bound) == 1:
        return bound[0]
    if bound:
        matches = [site for site in bound if host in site_hosts(site)]
        if len(matches) == 1:
            return matches[0]
        codes = ", ".join(site.code for site in bound)
        raise exceptions.ValidationError(
            {"site": [f"This key acts for several sites ({codes}); send the request to the domain of one of them."]}
        )
    site = with_domains(Site.objects.filter(domains__domain=host)).first()
    if site is not None:
        if site.owner_id != key.user_id:
            raise exceptions.PermissionDenied("this token does not have access to this site")
        return site
    owned = list(with_domains(Site.objects.filter(owner_id=key.user_id)))
    if len(owned) == 1:
        return owned[0]
    if not owned:
        raise exceptions.ValidationError(
            {"site": ["You have no site yet: create one (PUT /api/v0/sites, or manage.py createsite)."]}
        )
    why = (
        f"No site has the domain {host!r} and you have {len(owned)} sites: send the request to a site's "
        "domain, or use a key bound to one site (manage.py createapikey ... --site CODE)."
    )
    raise exceptions.ValidationError({"site": [why]})


def site_hosts(site: Site) -> tuple[str, ...]:
    return tuple(domain.domain for domain in site.domains.all())


# host or code -> (when read, the site with its domains, or None); the pixel asks on every request
_recent: dict[str, tuple[float, Site | None]] = {}
RECENT_SECONDS = 10


def site_for_pixel(*, host: str = "", code: str = "") -> Site | None:
    """The site a /count request is for, by its code in the path or else by Host; remembered for seconds."""
    lookup = f"code:{code}" if code else f"host:{host}"
    seen = _recent.get(lookup)
    now = time.monotonic()
    if seen is not None and now - seen[0] < RECENT_SECONDS:
        return seen[1]
    sites = with_domains(Site.objects.all())
    site = (sites.filter(code=code) if code else sites.filter(domains__domain=host)).first()
    if len(_recent) > 1000:
        _recent.clear()
    _recent[lookup] = (now, site)
    return site


def forget_pixel_sites(**kwargs) -> None:
    """A site or domain changed here: the next pixel hit reads it again (other processes: within seconds)."""
    _recent.clear()
