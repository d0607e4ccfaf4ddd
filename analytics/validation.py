"""Checking hits from /api/v0/count and the /count pixel, GoatCounter's fields and limits.

Hand-written rather than a DRF serializer: a batch is 500 hits and a serializer costs more per hit than
storing it does. Each problem is a sentence that says what to send instead.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import exceptions

from analytics import geoip, hitinfo, sites
from analytics.models import Site
from analytics.services import CleanHit, visitor_hash

HIT_FIELDS = frozenset(
    ["path", "title", "event", "ref", "size", "query", "bot", "user_agent", "location", "language", "ip"]
    + ["created_at", "session"]
)
MAX_SESSION = 256
MAX_HITS = 500  # in one POST /api/v0/count
FUTURE_LEEWAY = timedelta(seconds=5)
NO_SESSION = "session or browser/IP not set; use no_sessions if you don't want to track unique visits"


class HitError(ValueError):
    """Why a hit was refused; the others in its batch are stored all the same."""


class Ignored(Exception):
    """A hit that is valid but not counted: a path GoatCounter ignores, or an IP on the site's ignore list."""


class BatchError(ValueError):
    """A /api/v0/count body with no hits or too many, answered as GoatCounter does: {"error": "..."}."""


@dataclass
class CountBatch:
    """A checked /api/v0/count body: its hits cleaned for their site."""

    hits: list[CleanHit]
    errors: dict[str, list[str]]  # the refused hits' problems, by their index
    filtered: list[str]  # the indexes of the hits not counted on purpose (X-Goatcounter-Filter)


def go_json_keys(data: Any, fields: Collection[str]) -> Any:
    """data's keys as GoatCounter's server (Go's encoding/json) matches them to its fields: exactly, else ignoring
    case (`{"Hits": [{"Path": "/"}]}` is taken); of two keys for one field the later counts. A key that matches
    no field is kept as it is, to be refused as unknown. Anything but an object is returned as it is."""
    if not isinstance(data, dict) or all(key in fields for key in data):
        return data
    folded = {name.casefold(): name for name in fields}
    matched: dict[str, Any] = {}
    key: str  # a JSON object's
    for key, value in data.items():
        name = key if key in fields else folded.get(key.casefold(), key)
        matched.pop(name, None)  # as a later key would in Go: it overwrites
        matched[name] = value
    return matched


COUNT_FIELDS = ("no_sessions", "filter", "hits")


def read_count_body(data: Any) -> tuple[list[Any], bool, list[Any]]:
    """(hits, no_sessions, filter) of a /api/v0/count body; ParseError, ValidationError or BatchError when the
    body as a whole is wrong (the hits themselves are checked by clean_count_hits)."""
    if not isinstance(data, dict):
        raise exceptions.ParseError('Send a JSON object such as {"hits": [{"path": "/"}]}.')
    data = go_json_keys(data, COUNT_FIELDS)
    if unknown := sorted(set(data) - set(COUNT_FIELDS)):
        raise exceptions.ParseError(f"unknown parameter: {unknown[0]!r}")
    hits, no_sessions, filters = data.get("hits"), data.get("no_sessions", False), data.get("filter", ["ip"])
    if not isinstance(no_sessions, bool):
        raise exceptions.ValidationError({"no_sessions": ["Must be true or false."]})
    if not isinstance(filters, list) or not all(item == "ip" for item in filters):
        raise exceptions.ValidationError({"filter": ['Must be a list: ["ip"] (the default) or [].']})
    # GoatCounter's {"error": ...} for these, not the {"errors": {"body": [...]}} a ParseError would get
    if not isinstance(hits, list) or not hits:
        raise BatchError("no hits")
    if len(hits) > MAX_HITS:
        raise BatchError(f"maximum amount of pageviews in one batch is {MAX_HITS}")
    return hits, no_sessions, filters


def clean_count_hits(hits: list[Any], site: Site, *, no_sessions: bool, filters: list[Any]) -> CountBatch:
    """Each hit of a /api/v0/count body cleaned for its site (clean_api_hit), refused or filtered out."""
    site_id, site_hosts, ignore_ips = site.pk, sites.site_hosts(site), site.ignore_ips
    batch = CountBatch(hits=[], errors={}, filtered=[])
    ignored = frozenset(ignore_ips) if filters else frozenset()
    for index, raw in enumerate(hits):
        try:
            batch.hits.append(
                clean_api_hit(raw, site_id=site_id, site_hosts=site_hosts, no_sessions=no_sessions, ignore_ips=ignored)
            )
        except HitError as error:
            batch.errors[str(index)] = [str(error)]
        except Ignored:
            batch.filtered.append(str(index))
    return batch


def _text(raw: dict[str, Any], name: str, limit: int | None = None) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HitError(f"{name}: must be a string")
    if "\x00" in value:
        raise HitError(f"{name}: must not contain NUL characters")
    if limit is not None and len(value.encode()) > limit:
        raise HitError(f"{name}: may be at most {limit} bytes long")
    return value


def _created_at(raw: dict[str, Any], now: datetime) -> datetime | None:
    value = raw.get("created_at")
    if value is None:
        return None
    try:
        created = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        raise HitError("created_at: use an RFC 3339 time with a zone, such as 2026-11-23T10:15:00Z")
    try:  # in UTC: PostgreSQL takes offsets up to 15:59 only, and -23:14 is valid RFC 3339
        created = created.astimezone(UTC)
    except OverflowError:
        raise HitError("created_at: is before the year 1 in UTC") from None
    if created > now + FUTURE_LEEWAY:
        raise HitError("created_at: is in the future")
    return created


def clean_ip(ip: str) -> str:
    """The IP in its canonical form (so one visitor hashes alike); inet_pton first: ipaddress is slow."""
    if not ip:
        return ""
    try:
        socket.inet_pton(socket.AF_INET, ip)
        return ip
    except OSError:
        pass
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise HitError("ip: must be an IPv4 or IPv6 address") from None


def _bot_hint(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise HitError("bot: must be a whole number from 0 to 255")
    return value


def clean_api_hit(
    raw: Any, *, site_id: int, site_hosts: tuple[str, ...], no_sessions: bool, ignore_ips: frozenset[str]
) -> CleanHit:
    """One hit of a POST /api/v0/count batch; raises HitError (refused) or Ignored (skipped)."""
    if not isinstance(raw, dict):
        raise HitError('must be an object such as {"path": "/page"}')
    raw = go_json_keys(raw, HIT_FIELDS)
    if unknown := sorted(set(raw) - HIT_FIELDS):
        raise HitError(f"unknown field {unknown[0]!r}; the fields are {', '.join(sorted(HIT_FIELDS))}")
    now = timezone.now()
    path = _text(raw, "path", hitinfo.MAX_PATH)
    if not path:
        raise HitError("path: must be set")
    event = raw.get("event", False)
    if not isinstance(event, bool):
        raise HitError("event: must be true or false")
    title = _text(raw, "title", hitinfo.MAX_TITLE)
    ref = _text(raw, "ref", hitinfo.MAX_REF)
    query = _text(raw, "query", hitinfo.MAX_REF)
    user_agent = _text(raw, "user_agent", hitinfo.MAX_USER_AGENT)
    session = _text(raw, "session", MAX_SESSION)
    ip = clean_ip(_text(raw, "ip", 45))
    try:
        size = hitinfo.parse_size(raw.get("size"))
    except ValueError as error:
        raise HitError(f"size: {error}") from None
    try:
        location = hitinfo.parse_location(_text(raw, "location", 10))
    except ValueError as error:
        raise HitError(f"location: {error}") from None
    if not location and ip:  # a backend's own location wins; else the IP's, as for the pixel
        location = geoip.locate(ip)
    language = hitinfo.parse_language(_text(raw, "language", 100))
    hint = _bot_hint(raw.get("bot"))
    created_at = _created_at(raw, now)
    if session:
        visitor = visitor_hash(site_id, session=session)
    elif user_agent and ip:
        visitor = visitor_hash(site_id, ip=ip, user_agent=user_agent)
    elif no_sessions:
        visitor = None
    else:
        raise HitError(NO_SESSION)
    if ip and ip in ignore_ips:
        raise Ignored(ip)
    # A backend that sends no user agent is not a bot for lack of one; only a UA it does send is judged.
    bot = hitinfo.detect_bot(user_agent, hint) if user_agent else (hint if hint > 1 else 0)
    return finish_hit(
        path=path,
        event=event,
        title=title,
        ref=ref,
        query=query,
        site_hosts=site_hosts,
        user_agent=user_agent,
        bot=bot,
        size=size,
        location=location,
        language=language,
        visitor=visitor,
        created_at=created_at,
    )


def finish_page(path: str, event: bool, ref: str, query: str, site_hosts: tuple[str, ...]) -> tuple[str, str, str, str]:
    """finish_hit's part from the page: the path cleaned (Ignored when GoatCounter drops it), the referrer, its
    scheme and the campaign (from pageviews' query strings only, as in GoatCounter)."""
    cleaned = hitinfo.clean_path(path, event)
    if cleaned is None:
        raise Ignored(path)
    return (cleaned, *hitinfo.parse_ref(ref, "" if event else query, site_hosts))


def finish_agent(user_agent: str) -> tuple[str, str]:
    """finish_hit's part from the user agent: browser and system."""
    return hitinfo.parse_user_agent(user_agent) if user_agent else ("", "")


def finish_hit(
    *, path: str, event: bool, ref: str, query: str, site_hosts: tuple[str, ...], user_agent: str, **fields: Any
) -> CleanHit:
    """What both doors do alike: the path cleaned (Ignored when GoatCounter drops it), the referrer and the
    campaign (from pageviews' query strings only, as in GoatCounter), browser and system from the user agent."""
    cleaned, referrer, scheme, campaign = finish_page(path, event, ref, query, site_hosts)
    browser, system = finish_agent(user_agent)
    return CleanHit(
        path=cleaned,
        event=event,
        ref=referrer,
        ref_scheme=scheme,
        campaign=campaign,
        browser=browser,
        system=system,
        user_agent=user_agent,
        **fields,
    )


TRUE_WORDS = {"true", "1", "on", "yes", "t"}
FALSE_WORDS = {"false", "0", "off", "no", "f", ""}


def clean_pixel_hit(
    params: dict[str, str], *, site_id: int, site_hosts: tuple[str, ...], ip: str, user_agent: str, language: str
) -> CleanHit:
    """A hit from the browser pixel's query string (p t r e s q b ns); raises HitError or Ignored."""
    path = params.get("p", "")
    if not path:
        raise HitError("no path (p) given")
    if len(path.encode()) > hitinfo.MAX_PATH:
        raise HitError(f"path (p) is longer than {hitinfo.MAX_PATH} bytes")
    if any("\x00" in value for value in params.values()):
        raise HitError("parameters must not contain NUL characters")
    event_word = params.get("e", "").lower()
    if event_word not in TRUE_WORDS | FALSE_WORDS:
        raise HitError(f"e: {params['e']!r} is not a boolean (true or false)")
    event = event_word in TRUE_WORDS
    hint = 0
    if params.get("b"):
        try:
            hint = int(params["b"])
        except ValueError:
            hint = -1
        if hint != 0 and not 150 <= hint <= 255:  # GoatCounter's own count.js sends b=0 for a person
            raise HitError("b: must be a number from 150 (set by count.js for headless browsers)")
    try:
        size = hitinfo.parse_size(params.get("s") or None)
    except ValueError as error:
        raise HitError(f"s: {error}") from None
    no_session = params.get("ns", "").lower() in TRUE_WORDS
    return finish_hit(
        path=path,
        event=event,
        title=hitinfo.clip(params.get("t", ""), hitinfo.MAX_TITLE),
        ref=hitinfo.clip(params.get("r", ""), hitinfo.MAX_REF),
        query=params.get("q", ""),
        site_hosts=site_hosts,
        user_agent=hitinfo.clip(user_agent, hitinfo.MAX_USER_AGENT),
        size=size,
        location=geoip.locate(ip),  # the IP itself is stored nowhere
        language=hitinfo.parse_language(language),
        bot=hitinfo.detect_bot(user_agent, hint),
        visitor=None if no_session else visitor_hash(site_id, ip=ip, user_agent=user_agent),
    )
