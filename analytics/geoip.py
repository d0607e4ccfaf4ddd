"""The visitor's place from the IP at count time, as GoatCounter's Locations panel shows it: "NL", or "US-CA"
where the database knows the region. Only that is stored; the IP is dropped as before.

Two databases: by default the one iptocc ships in its wheel (the five Regional Internet Registries' data,
countries only), or the MaxMind GeoLite2/GeoIP2 file that GEOIP_DATABASE names (Country or City; a City
file adds the region), read by maxminddb-rust, whose get_path decodes only the codes: the whole record of a
City file (names in eight languages) took 15 times as long, more than a tenth of a pixel hit's CPU. Each process
opens its database once, at its first hit.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import iptocc
import maxminddb_rust
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


def open_database(path: str) -> maxminddb_rust.Reader:
    """GEOIP_DATABASE's reader (memory-mapped); ValueError saying what is wrong."""
    try:
        return maxminddb_rust.open_database(path)
    except FileNotFoundError:
        raise ValueError(f"GEOIP_DATABASE: no file {path!r}") from None
    except OSError as error:
        raise ValueError(f"GEOIP_DATABASE: can't read {path!r}: {error.strerror or error}") from None
    except maxminddb_rust.InvalidDatabaseError:
        raise ValueError(f"GEOIP_DATABASE: {path!r} is not a MaxMind DB (.mmdb) file") from None


def _registries(ip: str) -> str:
    # No private, loopback or reserved block is in the registries' data: those come back None.
    return iptocc.country_code(ip) or ""


def _nowhere(ip: str) -> str:
    return ""


# Where a GeoLite2/GeoIP2 record keeps its codes; registered_country is for a network with no country of use.
_COUNTRY = ("country", "iso_code")
_REGISTERED_COUNTRY = ("registered_country", "iso_code")
_REGION = ("subdivisions", 0, "iso_code")


def _maxmind(reader: maxminddb_rust.Reader, ip: str) -> str:
    try:
        country = reader.get_path(ip, _COUNTRY) or reader.get_path(ip, _REGISTERED_COUNTRY)
    except ValueError:  # not an address (an X-Forwarded-For a client made up)
        return ""
    if not isinstance(country, str) or not _public(ip):
        return ""
    region = reader.get_path(ip, _REGION)
    for location in (f"{country}-{region}", country):
        if LOCATION_SHAPE.fullmatch(location):  # what analytics.rollups splits on '-'
            return location
    return ""


# First octets of the IPv4 blocks that aren't public (private, loopback, link-local, shared, documentation,
# benchmarking, reserved): only these take ipaddress's exact and slow (2 to 5 µs) test.
_SPECIAL_V4 = frozenset(["0", "10", "100", "127", "169", "172", "192", "198", "203", *map(str, range(224, 256))])


def _public(ip: str) -> bool:
    """Whether the address is public. MaxMind's own files hold no other, but a file of one's own may map office
    networks: GoatCounter's rule holds all the same, a private address is unknown."""
    if ":" not in ip:
        special = ip.partition(".")[0] in _SPECIAL_V4
    else:  # public IPv6 is in 2000::/3 (a first group of 4 digits, 2... or 3...); its special blocks in 2001:, 2002:
        group = ip.partition(":")[0]
        special = len(group) != 4 or group[0] not in "23" or group in ("2001", "2002")
    return not special or ipaddress.ip_address(ip).is_global


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
