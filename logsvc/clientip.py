"""Who is asking: the client address every per-address limit uses.

One rule for the whole service: `X-Forwarded-For` is believed only as far as our own proxies append to it
(REST_FRAMEWORK["NUM_PROXIES"], set from BEHIND_PROXY and NUM_PROXIES), exactly as DRF's throttles read it.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

# One IPv6 customer gets a /64 (or more): counting each of its 2**64 addresses apart would be no limit at all.
IPV6_PREFIX = 64


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as our proxies (or the socket) report it; None when it is no IP address."""
    ident = BaseThrottle().get_ident(request)  # type: ignore[arg-type]  # DRF reads only META, which both have
    try:
        return str(ipaddress.ip_address((ident or "").strip()))
    except ValueError:
        return None


def client_network(request: HttpRequest) -> str | None:
    """client_ip(), but an IPv6 address stands for its /64: the unit a failed-sign-in limit counts."""
    ip = client_ip(request)
    if ip is None or ":" not in ip:
        return ip
    address = ipaddress.IPv6Address(ip)
    if address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False).network_address)
