"""The visitor's place from the IP at count time, as GoatCounter's Locations panel shows it: "NL", or "US-CA"
where the database knows the region. Only that is stored; the IP is dropped as before.

Two databases: by default the one iptocc ships in its wheel (the five Regional Internet Registries' data,
countries only), or the MaxMind GeoLite2/GeoIP2 file that GEOIP_DATABASE names (Country or City; a City
file adds the region). Each process opens it once, at its first hit.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import iptocc
import maxminddb
from django.conf import settings
from django.core import checks
from django.core.signals import setting_changed
from django.dispatch import receiver

from analytics.hitinfo import LOCATION_SHAPE

log = logging.getLogger(__name__)

# Why GEOIP_DATABASE could not be opened in this process ("" when it could, or when unset): /healthz says it.
problem = ""


def locate(ip: str) -> str:
    """'NL', 'US-CA' or '': an address no database places (private, loopback, unallocated), or not an address."""
    if not ip:
        return ""
    if ip[:7] in ("::ffff:", "::FFFF:") and "." in ip:  # an IPv4 client of a dual-stack socket
        ip = ip[7:]
    return _lookup()(ip)


@functools.cache
def _lookup() -> Callable[[str], str]:
    global problem
    if not settings.GEOIP_DATABASE:
        return _registries
    try:
        reader = open_database(settings.GEOIP_DATABASE)
    except ValueError as error:
        # Hits are still counted, without a place: refusing them would lose more than the map.
        problem = str(error)
        log.error("%s; hits are counted without a location until it is fixed and the server restarted", error)
        return _nowhere
    problem = ""
    return functools.partial(_maxmind, reader)


def open_database(path: str) -> maxminddb.Reader:
    """GEOIP_DATABASE's reader (memory-mapped, C extension where built); ValueError saying what is wrong."""
    try:
        return maxminddb.open_database(path)
    except FileNotFoundError:
        raise ValueError(f"GEOIP_DATABASE: no file {path!r}") from None
    except OSError as error:
        raise ValueError(f"GEOIP_DATABASE: can't read {path!r}: {error.strerror or error}") from None
    except maxminddb.InvalidDatabaseError:
        raise ValueError(f"GEOIP_DATABASE: {path!r} is not a MaxMind DB (.mmdb) file") from None


def _registries(ip: str) -> str:
    # No private, loopback or reserved block is in the registries' data: those come back None.
    return iptocc.country_code(ip) or ""


def _nowhere(ip: str) -> str:
    return ""


def _maxmind(reader: maxminddb.Reader, ip: str) -> str:
    try:
        record: Any = reader.get(ip)
    except ValueError:  # not an address (an X-Forwarded-For a client made up)
        return ""
    if not isinstance(record, dict):
        return ""
    # A file of one's own may map office networks too; GoatCounter's rule holds all the same: not public, unknown.
    if not ipaddress.ip_address(ip).is_global:
        return ""
    country = (record.get("country") or record.get("registered_country") or {}).get("iso_code") or ""
    subdivisions = record.get("subdivisions") or [{}]
    region = subdivisions[0].get("iso_code") or ""
    for location in (f"{country}-{region}", country):
        if LOCATION_SHAPE.fullmatch(location):  # what analytics.rollups splits on '-'
            return location
    return ""


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    global problem
    if setting == "GEOIP_DATABASE":
        _lookup.cache_clear()
        problem = ""


@checks.register()
def check_database(**kwargs: Any) -> list[checks.CheckMessage]:
    """`manage.py check` (and `check --deploy`) fail when GEOIP_DATABASE is set and can't be opened."""
    if not settings.GEOIP_DATABASE:
        return []
    try:
        open_database(settings.GEOIP_DATABASE).close()
    except ValueError as error:
        hint = "Point it at a GeoLite2-Country.mmdb or GeoLite2-City.mmdb file, or unset it to use iptocc's data."
        return [checks.Error(str(error), hint=hint, id="analytics.E001")]
    return []


def health_check() -> str:
    """/healthz's word on it: "ok" or why this process places no hit."""
    _lookup()
    return problem or "ok"
