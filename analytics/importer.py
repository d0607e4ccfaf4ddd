"""Importing hits from files: GoatCounter's CSV export and web server logs (manage.py import_hits, and the
dashboard's upload through analytics.tasks.run_import).

The formats are those of `goatcounter import`: `csv` (GoatCounter's export, version 2, gzip'd or not), the NCSA
`combined` and `common` logs (each also `-vhost`), `caddy` (Caddy's JSON log) and `log:<format>` with
GoatCounter's $names. Every line becomes a CleanHit by the same code as a hit of the API (paths, referrers,
campaigns, browsers, bots), and batches go in through services.record_hits (COPY, first visits), each batch in
one transaction with the keys of its lines (ImportedKeys), so importing a file again stores nothing twice.
Batches are stored while the next ones are read: by a writer thread, or, for manage.py import_hits, with the
reading in a forked process of its own (Importer(reader_process=True)), as two threads share one GIL.

A server log's IP is used for the visitor hash of its hit's day (services.visitor_hash) and never stored.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
import gzip
import hashlib
import io
import multiprocessing
import operator
import os
import queue
import re
import signal
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta, timezone
from multiprocessing.connection import Connection
from typing import Any, BinaryIO

import numpy as np
import orjson
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone as tz

from analytics import hitinfo, sites
from analytics.models import BotHit, Hit, ImportedKeys, ImportedRow, ImportedVisits, Site
from analytics.rollups import schedule_roll_up
from analytics.services import CleanHit, record_hits, todays_salt, visitor_hash
from analytics.tasks import CSV_HEADER, FORMULA
from analytics.validation import HitError, Ignored, clean_ip, finish_agent, finish_page
from logsvc import partitions
from logsvc.db import prepared_cursor

LOG_FORMATS = {
    "combined": '$remote_addr $ignore [$datetime] "$method $path $http" $status $size "$referrer" "$user_agent"',
    "common": '$remote_addr $ignore [$datetime] "$method $path $http" $status $size',
}
LOG_FORMATS["combined-vhost"] = "$host " + LOG_FORMATS["combined"]
LOG_FORMATS["common-vhost"] = "$host " + LOG_FORMATS["common"]
FORMATS = ["csv", *LOG_FORMATS, "caddy", "log:<format>"]
CLF_TIME = "02/Jan/2006:15:04:05 -0700"  # Go's layout, as GoatCounter's -datetime takes it

# What a $name of a custom format matches (GoatCounter's); anything else is .+? (lazy).
FIELD_PATTERNS = {
    "ignore": ".*?",
    "host": r"(?:xn--)?[a-zA-Z0-9.-]+(?::\d{1,5})?",
    "remote_addr": r"[0-9a-fA-F:.]+",
    "xff": r"[0-9a-fA-F:. ,]+",
    "method": r"[A-Z]{3,10}",
    "status": r"\d{3}",
    "http": r"HTTP/[\d.]+",
    "path": r"/.*?",
    "url": r"https?://(?:xn--)?[a-zA-Z0-9.-]+(?::\d{1,5})?(?:$|/.*?)",
    "timing_sec": r"[\d.]+",
    "timing_milli": r"\d+",
    "timing_micro": r"\d+",
    "size": r"(?:\d+|-)",
    "referrer": ".*?",
    "user_agent": ".*?",
    "query": ".+?",
    "content_type": ".+?",
    "datetime": ".+?",
    "date": ".+?",
    "time": ".+?",
}
# The lazy fields of the named formats (LOG_FORMATS) as classes that end where the format's next text begins: in
# each, $ignore is followed by " [", $datetime by "]", $path by " ", $referrer and $user_agent by a quote.
FAST_FIELDS = {
    "ignore": r"[^\[]*?",
    "datetime": r"[^\]]+",
    "path": r"/[^ ]*",
    "referrer": r'[^"]*',
    "user_agent": r'[^"]*',
}
EXCLUDE_FIELDS: tuple[str, ...] = ("host", "remote_addr", "method", "status", "http", "path", "query", "referrer")
EXCLUDE_FIELDS += ("user_agent", "content_type")
DEFAULT_EXCLUDES = ["static", "redirect"]
STATIC = [
    r"path:re:.*\.(:?js|css|gif|jpe?g|png|svg|ico|web[mp]|mp[34])$",
    r"content_type:re:^(?:text/(?:css|javascript)|image/(?:png|gif|jpeg|svg\+xml|webp)).*?",
]
SPECIAL_EXCLUDES = {"static": STATIC, "html": [r"content_type:re:^text/html.*?"], "redirect": ["status:glob:30[0123]"]}
BATCH = 2000  # lines per transaction
MAX_ERRORS = 100  # bad lines remembered with their numbers for the summary
MAX_ERROR_LENGTH = 300  # characters of each: a message quotes what it could not read, which may be long
# Entries of each cache of what a file repeats (pages with referrers and user agents, visitors): a log's
# runs of one visitor's lines fit, and memory stays flat at any size.
CACHE_SIZE = 4096
KEY_WINDOW = 1000  # identical lines this close together are told apart by their count (see RowKeys)


class ImportError_(ValueError):
    """The file as a whole cannot be imported (an unknown format, a CSV that is not GoatCounter's v2)."""


class BadLine(ValueError):
    """One line that cannot be read; it is skipped and counted with its number."""


@dataclass
class Summary:
    lines: int = 0
    imported: int = 0
    bots: int = 0  # of imported: stored apart as bots' hits
    duplicates: int = 0  # imported before
    excluded: int = 0  # by --exclude, the site's ignored IPs, or paths GoatCounter ignores
    bad: int = 0
    errors: list[str] = field(default_factory=list)  # "line 12: ..." for the first MAX_ERRORS bad lines
    first: datetime | None = None
    last: datetime | None = None

    def add_error(self, number: int, message: str) -> None:
        self.bad += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(hitinfo.clip(f"line {number}: {message}", MAX_ERROR_LENGTH))

    def text(self) -> str:
        span = ""
        if self.first and self.last:
            span = f", dated {self.first:%Y-%m-%d %H:%M} to {self.last:%Y-%m-%d %H:%M} UTC"
        return (
            f"{self.lines} lines: {self.imported} hits imported ({self.bots} by bots){span}; {self.duplicates} imported before, "
            f"{self.excluded} excluded, {self.bad} bad"
        )


# --- Excludes --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exclude:
    field: str
    search: Callable[[str], re.Match[str] | None]  # a compiled pattern's search or fullmatch: one C call a line
    negate: bool

    def __call__(self, entry: dict[str, str]) -> bool:
        return (self.search(entry.get(self.field, "")) is not None) != self.negate


def excluder(excludes: list[Exclude]) -> Callable[[dict[str, str]], bool]:
    """Whether any of excludes takes an entry, in one call a line (not one per exclude)."""
    checks = [(exclude.field, exclude.search, exclude.negate) for exclude in excludes]

    def excluded(entry: dict[str, str]) -> bool:
        get = entry.get
        for name, search, negate in checks:
            if (search(get(name, "")) is not None) != negate:
                return True
        return False

    return excluded


def parse_excludes(patterns: list[str] | None) -> list[Exclude]:
    """GoatCounter's --exclude: [!]field:pattern, field:glob:pattern, field:re:pattern, or static, html, redirect.
    None: the default (static files and redirects); [""]: nothing."""
    expanded: list[str] = []
    for pattern in DEFAULT_EXCLUDES if patterns is None else patterns:
        expanded += SPECIAL_EXCLUDES.get(pattern, [pattern] if pattern else [])
    excludes = []
    for pattern in expanded:
        negate = pattern.startswith("!")
        name, sep, rest = pattern.removeprefix("!").partition(":")
        if not sep or name not in EXCLUDE_FIELDS:
            raise ImportError_(
                f"--exclude {pattern!r}: use field:pattern with a field of {', '.join(EXCLUDE_FIELDS)}, "
                "or static, html, redirect"
            )
        if rest.startswith("re:"):
            try:
                match = re.compile(rest[3:]).search
            except re.error as error:
                raise ImportError_(f"--exclude {pattern!r}: {error}") from None
            excludes.append(Exclude(name, match, negate))
        elif rest.startswith("glob:"):
            regex = re.compile("|".join(_glob_regex(alt) for alt in _braces(rest[5:])))
            excludes.append(Exclude(name, regex.fullmatch, negate))
        else:  # the text anywhere in the field
            excludes.append(Exclude(name, re.compile(re.escape(rest)).search, negate))
    return excludes


def _braces(pattern: str) -> list[str]:
    """{a,b} alternatives spelled out (one level, as globs mostly use them)."""
    found = re.search(r"\{([^{}]*)\}", pattern)
    if not found:
        return [pattern]
    head, tail = pattern[: found.start()], pattern[found.end() :]
    return [alt for choice in found.group(1).split(",") for alt in _braces(head + choice + tail)]


def _glob_regex(pattern: str) -> str:
    return glob.translate(pattern, recursive=True, include_hidden=True).removeprefix("(?s:").removesuffix(r")\Z")


# --- Reading lines ---------------------------------------------------------------------------------------------------


def open_input(source: BinaryIO) -> tuple[io.TextIOWrapper, BinaryIO]:
    """source as text, gunzipped when it starts with gzip's magic; also the raw stream, whose tell() is progress."""
    buffered: Any = source if hasattr(source, "peek") else io.BufferedReader(source)
    stream: Any = gzip.GzipFile(fileobj=buffered) if buffered.peek(2)[:2] == b"\x1f\x8b" else buffered
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline=""), buffered


class RowKeys:
    """The dedupe key of each line: 8 bytes of a hash of its text and of how many identical lines came in the
    KEY_WINDOW lines before it. The same file gives the same keys, whatever the batches; two identical lines of
    a log (one visitor loading a page twice in a second) are two hits; memory stays flat at any size."""

    def __init__(self) -> None:
        self.window: deque[bytes] = deque()
        self.counts: dict[bytes, int] = {}  # a plain dict: Counter's missing keys (most lines) go through Python

    def key(self, text: str) -> int:
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        counts, window = self.counts, self.window
        seen = counts.get(digest, 0)
        counts[digest] = seen + 1
        window.append(digest)
        if len(window) > KEY_WINDOW:
            old = window.popleft()
            if left := counts[old] - 1:
                counts[old] = left
            else:
                del counts[old]
        if seen:
            digest = hashlib.blake2b(digest + seen.to_bytes(4), digest_size=8).digest()
        return int.from_bytes(digest, signed=True)


# --- Times -----------------------------------------------------------------------------------------------------------

_MONTHS = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10,
           "Nov": 11, "Dec": 12}  # fmt: skip
_GO_LAYOUT = [
    ("2006", "%Y"),
    ("January", "%B"),
    ("Jan", "%b"),
    ("Monday", "%A"),
    ("Mon", "%a"),
    ("01", "%m"),
    ("02", "%d"),
    ("_2", "%d"),
    ("15", "%H"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("PM", "%p"),
    ("-07:00", "%z"),
    ("-0700", "%z"),
    ("Z07:00", "%z"),
    ("MST", "%Z"),
    (".000000000", ".%f"),
    (".000000", ".%f"),
    (".000", ".%f"),
]
NAMED_TIMES = {
    "rfc3339": "2006-01-02T15:04:05Z07:00",
    "rfc3339nano": "2006-01-02T15:04:05.999999999Z07:00",
    "ansic": "Mon Jan _2 15:04:05 2006",
    "rfc1123z": "Mon, 02 Jan 2006 15:04:05 -0700",
}


@functools.lru_cache(maxsize=1024)  # a busy log has many lines a second: each second is parsed once
def _clf_time(value: str) -> datetime:
    """10/Oct/2000:13:55:36 -0700, without strptime (a tenth of its time): the minute once, then its seconds."""
    seconds = value[18:20]
    try:
        if len(value) != 26 or value[17] != ":" or not seconds.isdigit():
            raise ValueError(value)
        return _clf_minute(value[:17] + value[20:]) + _SECONDS[int(seconds)]
    except (IndexError, KeyError, ValueError):
        raise BadLine(f"time {value!r} is not like 10/Oct/2000:13:55:36 -0700") from None


_SECONDS = [timedelta(seconds=n) for n in range(60)]


@functools.lru_cache(maxsize=64)
def _clf_minute(value: str) -> datetime:
    """10/Oct/2000:13:55 -0700 (raises IndexError, KeyError or ValueError)"""
    offset = timedelta(hours=int(value[19:21]), minutes=int(value[21:23])) * (-1 if value[18] == "-" else 1)
    local = datetime(
        int(value[7:11]), _MONTHS[value[3:6]], int(value[0:2]), int(value[12:14]), int(value[15:17]),
        tzinfo=timezone(offset),
    )  # fmt: skip
    return local.astimezone(UTC)


def time_parser(layout: str) -> Callable[[str], datetime]:
    """A parser of times in GoatCounter's -datetime layout (Go's: 2006-01-02 15:04:05), or rfc3339, unix_sec,
    unix_sec_float, unix_milli, unix_nano; times without a zone are UTC."""
    layout = NAMED_TIMES.get(layout.lower(), layout)
    if layout == CLF_TIME:
        return _clf_time
    divisors = {"unix_sec": 1, "unix_sec_float": 1, "unix_milli": 1e3, "unix_micro": 1e6, "unix_nano": 1e9}
    if layout in divisors:
        divisor = divisors[layout]

        def unix(value: str) -> datetime:
            try:
                return datetime.fromtimestamp(float(value) / divisor, UTC)
            except (ValueError, OverflowError, OSError):
                raise BadLine(f"time {value!r} is not a {layout} number") from None

        return unix
    if layout.startswith("2006-01-02T15:04:05"):
        return _iso_time
    strp = layout.replace("%", "%%")
    for go, python in _GO_LAYOUT:
        strp = strp.replace(go, python)

    @functools.lru_cache(maxsize=4096)
    def parse(value: str) -> datetime:
        try:
            parsed = datetime.strptime(value, strp)
        except ValueError:
            raise BadLine(f"time {value!r} is not like {layout}") from None
        return parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)

    return parse


@functools.lru_cache(maxsize=4096)
def _iso_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadLine(f"time {value!r} is not an RFC 3339 time") from None
    return parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)


# --- Formats ---------------------------------------------------------------------------------------------------------


def _format_regex(template: str, patterns: dict[str, str]) -> tuple[re.Pattern[str], list[str]]:
    """A format's regex, with what each $name matches taken from patterns, and its names in order."""
    names: list[str] = []

    def group(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in FIELD_PATTERNS:
            raise ImportError_(f"unknown format specifier ${name}; the names are {', '.join(FIELD_PATTERNS)}")
        pattern = patterns.get(name, FIELD_PATTERNS[name])
        if name == "ignore":
            return pattern
        if name in names:
            return f"(?P={name})"
        names.append(name)
        return f"(?P<{name}>{pattern})"

    return re.compile("^" + re.sub(r"\\\$([a-z_]+)", group, re.escape(template)) + "$"), names


def log_parser(fmt: str, datetime_layout: str = "") -> Callable[[str], dict[str, str]]:
    """A parser of lines in a GoatCounter format name or log:<format>; each line as a dict of its $names."""
    template = fmt[4:] if fmt.startswith("log:") else LOG_FORMATS.get(fmt)
    if template is None:
        raise ImportError_(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not datetime_layout:
        datetime_layout = CLF_TIME if fmt in LOG_FORMATS else "rfc3339"
    regex, names = _format_regex(template, FIELD_PATTERNS)
    if not {"path", "url"} & set(names):
        raise ImportError_("the format needs $path or $url")
    # A named format's line is tried first with each lazy field as a class that stops where the text after it
    # begins (FAST_FIELDS): a seventh of the time. Where that pattern matches, the lazy one matches alike, as each
    # of its lazy fields ends at the first place that its next text starts and every other field has one possible
    # end; a line that it does not match (a quote inside a user agent) is matched the lazy way.
    fast = _format_regex(template, FAST_FIELDS)[0].match if fmt in LOG_FORMATS else None
    parse_time = time_parser(datetime_layout)
    match = regex.match

    def parse(line: str) -> dict[str, str]:
        found = (fast and fast(line)) or match(line)
        if found is None:
            raise BadLine(f"does not match the format {template!r}")
        entry = found.groupdict()
        if "-" in entry.values():  # GoatCounter's "no value"
            for name, value in entry.items():
                if value == "-":
                    entry[name] = ""  # a value replaced, no key added: the loop goes on over the same items
        if url := entry.pop("url", ""):
            rest = url.split("://", 1)[-1]
            host, slash, path = rest.partition("/")
            entry["host"], entry["path"] = host, slash + path or "/"
        if "datetime" in entry:
            entry["time"] = parse_time(entry.pop("datetime"))
        elif "date" in entry and "time" in entry:
            entry["time"] = _iso_time(f"{entry.pop('date')}T{entry['time']}")
        return entry

    parse.names = {*names, "host", "path"} if "url" in names else set(names)  # type: ignore[attr-defined]
    return parse


def caddy_parser(line: str) -> dict[str, Any]:
    """One line of Caddy's JSON access log (its `log` directive's default format)."""
    try:
        data = orjson.loads(line)
        request = data["request"]
        headers = request.get("headers") or {}
        created = datetime.fromtimestamp(float(data["ts"]), UTC)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError, OSError):
        raise BadLine("is not a Caddy JSON log entry with ts and request") from None

    def header(name: str, where: dict = headers) -> str:
        values = where.get(name) or [""]
        return str(values[0])

    uri = str(request.get("uri", ""))
    path, _, query = uri.partition("?")
    return {
        "host": str(request.get("host", "")),
        "remote_addr": str(request.get("client_ip") or request.get("remote_ip") or request.get("remote_addr", "")),
        "method": str(request.get("method", "")),
        "http": str(request.get("proto", "")),
        "path": path,
        "query": query,
        "status": str(data.get("status", "")),
        "referrer": header("Referer"),
        "user_agent": header("User-Agent"),
        "language": header("Accept-Language"),
        "content_type": header("Content-Type", data.get("resp_headers") or {}),
        "time": created,
    }


# LogHits.hit builds CleanHits by position: a field added or moved must be added there too
assert [item.name for item in fields(CleanHit)] == [
    "path", "title", "event", "ref", "ref_scheme", "campaign", "browser", "system", "size", "location", "language",
    "bot", "user_agent", "visitor", "created_at", "first_visit", "visitor_day",
], "CleanHit's fields changed: update LogHits.hit"  # fmt: skip


class LogHits:
    """Lines of a server log to CleanHits of a site."""

    def __init__(self, site: Site, fmt: str, excludes: list[Exclude], datetime_layout: str = "") -> None:
        self.parse = caddy_parser if fmt == "caddy" else log_parser(fmt, datetime_layout)
        # A pattern on a field the format lacks (content_type in a combined log) never matches: it costs nothing
        known = set(EXCLUDE_FIELDS) if fmt == "caddy" else set(getattr(self.parse, "names", EXCLUDE_FIELDS))
        self.excludes = [exclude for exclude in excludes if exclude.negate or exclude.field in known]
        self.excluded = excluder(self.excludes)
        self.site_id, self.site_hosts = site.pk, sites.site_hosts(site)
        self.ignore_ips = frozenset(site.ignore_ips)
        # A log repeats its pages with their referrers, its user agents and its visitors: each is worked out once
        # (bounded caches; a page's and a user agent's apart, as their pairs are many more)
        self.page = functools.lru_cache(maxsize=CACHE_SIZE)(self._page)
        self.agent = functools.lru_cache(maxsize=CACHE_SIZE)(self._agent)
        self.language = functools.lru_cache(maxsize=256)(hitinfo.parse_language)
        self.visitor = functools.lru_cache(maxsize=CACHE_SIZE)(self._visitor)
        self.today = Today()

    def hit(self, line: str) -> CleanHit:
        """Raises BadLine, or Ignored for a line excluded or not counted."""
        entry = self.parse(line)
        if self.excluded(entry):
            raise Ignored("excluded")
        path = entry.get("path", "")
        if not path.startswith("/"):
            raise BadLine(f"path {path!r} does not start with /")
        if query := entry.get("query", ""):
            path = f"{path}?{query}"
        else:
            query = path.partition("?")[2]
        try:
            ip = clean_ip(entry.get("remote_addr", "") or _xff(entry.get("xff", "")))
        except HitError:
            raise BadLine(f"remote address {entry.get('remote_addr')!r} is not an IP address") from None
        if ip in self.ignore_ips:
            raise Ignored(ip)
        created = entry.get("time")
        if not isinstance(created, datetime):
            raise BadLine("has no time ($datetime, or $date and $time)")
        path, ref, scheme, campaign = self.page(path, entry.get("referrer", ""), query)
        user_agent, browser, system, bot = self.agent(entry.get("user_agent", ""))
        language = self.language(language) if (language := entry.get("language", "")) else ""
        day: date | None = created.date()
        if day == self.today():
            day = None  # today's hash, as the pixel's: VisitorPath finds its first visit
        # CleanHit's fields in order (a fifth of the time of keywords): path, title, event, ref, ref_scheme,
        # campaign, browser, system, size, location, language, bot, user_agent, visitor, created_at, first_visit
        return CleanHit(
            path, "", False, ref, scheme, campaign, browser, system, None, "", language, bot, user_agent,
            self.visitor(ip, user_agent, day), created, None, day,
        )  # fmt: skip

    def _page(self, path: str, referrer: str, query: str) -> tuple[str, str, str, str]:
        """A line's path, referrer, referrer scheme and campaign, as the API's hit finishing has them."""
        return finish_page(
            hitinfo.clip(path, hitinfo.MAX_PATH), False, hitinfo.clip(referrer, hitinfo.MAX_REF), query, self.site_hosts
        )

    @staticmethod
    def _agent(user_agent: str) -> tuple[str, str, str, int]:
        """A line's user agent (clipped as stored), browser, system and bot category."""
        user_agent = hitinfo.clip(user_agent, hitinfo.MAX_USER_AGENT)
        return user_agent, *finish_agent(user_agent), hitinfo.detect_bot(user_agent) if user_agent else 0

    def _visitor(self, ip: str, user_agent: str, day: date | None) -> uuid.UUID:
        return visitor_hash(self.site_id, ip=ip, user_agent=user_agent, day=day)


class Today:
    """Today's date (UTC, the salt's), for a line a microsecond: tz.now() is read again only once the day is over."""

    def __init__(self) -> None:
        self.day, self.until = date.min, 0.0

    def __call__(self) -> date:
        if time.time() >= self.until:
            now = tz.now()
            self.day = now.date()
            self.until = datetime.combine(self.day + timedelta(days=1), datetime.min.time(), UTC).timestamp()
        return self.day


def _xff(value: str) -> str:
    """The last public address of an X-Forwarded-For list, as GoatCounter takes it."""
    for candidate in reversed([part.strip() for part in value.split(",") if part.strip()]):
        if not re.match(r"^(10\.|127\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|::1$|f[cd])", candidate):
            return candidate
    return ""


_FORMULA = re.compile(FORMULA)


def _uncell(value: str) -> str:
    """An export's cell back to its value: the ' the export put before a formula-like cell comes off."""
    return value[1:] if value.startswith("'") and _FORMULA.match(value) else value


class ExportHits:
    """Rows of GoatCounter's CSV export (version 2) to CleanHits: browser, system, referrer, first visit and
    visitor are taken as exported, so an export imported into an empty site gives the same stats."""

    COLUMNS = len(CSV_HEADER.split(","))

    def __init__(self, site: Site) -> None:
        self.site_id = site.pk
        # An export repeats its sizes, locations and visitors: each is read once (bounded caches)
        self.size = functools.lru_cache(maxsize=1024)(hitinfo.parse_size)
        self.location = functools.lru_cache(maxsize=1024)(hitinfo.parse_location)
        self.visitor = functools.lru_cache(maxsize=CACHE_SIZE)(self._visitor)

    def hit(self, row: list[str]) -> CleanHit:
        if len(row) != self.COLUMNS:
            raise BadLine(f"has {len(row)} columns, not {self.COLUMNS}")
        path, title, event, user_agent, browser, system, session, bot, ref, scheme, size, location, first, date = row
        path, title, ref = _uncell(path), _uncell(title), _uncell(ref)
        if not path:
            raise BadLine("has no path")
        if event not in ("0", "1", "true", "false"):
            raise BadLine(f"event {event!r} is not 0 or 1")
        try:
            created = datetime.fromisoformat(date).astimezone(UTC)
        except ValueError:
            raise BadLine(f"date {date!r} is not an RFC 3339 time") from None
        try:
            size_px = self.size(size or None)
            location = self.location(location)
        except ValueError as error:
            raise BadLine(str(error)) from None
        if scheme not in ("", "h", "g", "c", "o"):
            raise BadLine(f"referrer scheme {scheme!r} is not one of h, g, c, o")
        user_agent, browser, system = _uncell(user_agent), _uncell(browser), _uncell(system)
        if user_agent and not browser and not system:
            browser, system = hitinfo.parse_user_agent(user_agent)
        return CleanHit(
            path=hitinfo.clip(path, hitinfo.MAX_PATH),
            title=hitinfo.clip(title, hitinfo.MAX_TITLE),
            event=event in ("1", "true"),
            ref=hitinfo.clip(ref, hitinfo.MAX_REF),
            ref_scheme=scheme,
            browser=browser[:100],
            system=system[:100],
            size=size_px,
            location=location,
            bot=int(bot) if bot.isdigit() and 0 < int(bot) < 256 else 0,
            user_agent=user_agent,
            visitor=self.visitor(session),
            created_at=created,
            first_visit=first in ("1", "true"),
        )

    def _visitor(self, session: str) -> uuid.UUID | None:
        if not session:
            return None
        try:
            return uuid.UUID(hex=session)  # the export's own: the visitor hash, as stored
        except ValueError:
            return visitor_hash(self.site_id, session=session)


# --- Importing -------------------------------------------------------------------------------------------------------


def csv_rows(text: io.TextIOWrapper) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, key text, row) of a CSV export after its header; ImportError_ if it is not GoatCounter's v2."""
    reader = csv.reader(text)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise ImportError_("the file is empty, or not a CSV file") from None
    if ",".join(header) + "\n" != CSV_HEADER:
        version = header[0][:1] if header else ""
        raise ImportError_(
            f"not a GoatCounter CSV export of version 2 (its header starts with {','.join(header)[:40]!r}"
            + (f", version {version}" if version.isdigit() else "")
            + "); export it again from GoatCounter or logsvc"
        )
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield reader.line_num, "", [f"\0{error}"]
            continue
        yield reader.line_num, "\x1f".join(row), row


def text_lines(text: Iterable[str], first: int = 1) -> Iterator[tuple[int, str, str]]:
    for number, line in enumerate(text, first):
        line = line.rstrip("\r\n")
        yield number, line, line


class Importer:
    """Reads lines into batches and stores them; import_file() for a whole file, feed()/flush() for --follow."""

    def __init__(
        self,
        site: Site,
        fmt: str,
        *,
        excludes: list[str] | None = None,
        datetime_layout: str = "",
        reader_process: bool = False,
    ) -> None:
        """reader_process: import_file() reads and parses a file in a process of its own, forked from this one,
        while this one stores: each has its own GIL (manage.py import_hits; a worker's thread keeps to threads)."""
        if fmt == "csv":
            if excludes:
                raise ImportError_("--exclude is for server logs; a CSV export holds only counted hits")
            self.reader: Any = ExportHits(site)
        else:
            self.reader = LogHits(site, fmt, parse_excludes(excludes), datetime_layout)
        self.site = site
        self.fmt = fmt
        self.keys = RowKeys()
        self.summary = Summary()
        self.batch: list[tuple[int, CleanHit]] = []
        self.writer: Writer | Sender = Writer(site, self.summary)
        self.reader_process = reader_process

    def feed(self, number: int, key_text: str, line: Any) -> None:
        summary = self.summary
        summary.lines += 1
        if isinstance(line, str) and (not line or line.isspace()):
            summary.lines -= 1  # blank lines (a log's last newline) are no lines
            return
        if isinstance(line, list) and len(line) == 1 and line[0].startswith("\0"):
            summary.add_error(number, line[0][1:])
            return
        try:
            hit = self.reader.hit(line)
        except BadLine as error:
            summary.add_error(number, str(error))
            return
        except Ignored:
            summary.excluded += 1
            return
        self.batch.append((self.keys.key(key_text), hit))
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self, wait: bool = False) -> None:
        """Hand the batch to the writer; wait: until everything handed over is stored."""
        if self.batch:
            batch, self.batch = self.batch, []
            summary = self.summary
            if times := [hit.created_at for _, hit in batch if hit.created_at is not None]:
                first, last = min(times), max(times)
                summary.first = first if summary.first is None else min(summary.first, first)
                summary.last = last if summary.last is None else max(summary.last, last)
            self.writer.submit(batch)
        if wait:
            self.writer.drain()

    def import_file(self, source: BinaryIO, progress: Callable[[int, int], None] | None = None) -> Summary:
        """Import a whole file (gzip'd or not); progress(bytes of source read, lines) after each batch."""
        if self.reader_process and not connection.in_atomic_block and _has_fileno(source):
            return self._import_from_reader(source, progress)
        return self._read(source, progress)

    def _read(self, source: BinaryIO, progress: Callable[[int, int], None] | None) -> Summary:
        text, raw = open_input(source)
        rows = csv_rows(text) if self.fmt == "csv" else text_lines(text)
        done = 0
        try:
            for number, key_text, line in rows:
                self.feed(number, key_text, line)
                if progress is not None and self.summary.lines - done >= BATCH:
                    done = self.summary.lines
                    progress(_position(raw), done)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:  # what was read before is stored all the same
            self.flush(wait=True)
            raise ImportError_(f"the file is cut short or damaged after line {self.summary.lines} ({error})") from None
        self.flush(wait=True)
        if progress is not None:
            progress(_position(raw), self.summary.lines)
        return self.summary

    def _import_from_reader(self, source: BinaryIO, progress: Callable[[int, int], None] | None) -> Summary:
        """import_file() with the reading and parsing in a forked process, which sends each batch here to be stored
        (storing here, parsing there: two GILs, where a thread for each shares one and takes turns)."""
        context = multiprocessing.get_context("fork")
        todays_salt()  # the reader hashes visitors under today's salt, which this process has now
        # The reader must not share this process's database connections (their sockets would be both's): they are
        # closed before the fork and opened again here when the first batch comes
        connections.close_all()
        receive, send = context.Pipe(duplex=False)
        reader = context.Process(target=self._read_for, args=(source, send), name="import-reader", daemon=True)
        reader.start()
        send.close()
        failure: ImportError_ | None = None
        try:
            while True:
                try:
                    message = receive.recv()
                except EOFError:
                    failure = ImportError_(
                        f"the reading process stopped after line {self.summary.lines} (killed?); what it had read "
                        "is stored, and importing the file again adds the rest"
                    )
                    break
                if message[0] == "batch":
                    self.writer.store_now(_hits_from(message[1]))  # type: ignore[union-attr]
                elif message[0] == "progress":
                    self.summary.lines = message[2]
                    if progress is not None:
                        progress(message[1], message[2])
                else:  # "done" or "failed", with what the reader counted
                    for name in ("lines", "excluded", "bad", "errors", "first", "last"):
                        setattr(self.summary, name, getattr(message[1], name))
                    if message[0] == "failed":
                        failure = ImportError_(message[2])
                    break
        finally:
            receive.close()
            reader.join(timeout=5)
            if reader.is_alive():  # this process failed to store: the reader is waiting to send
                reader.terminate()
                reader.join()
        if failure is not None:
            raise failure
        return self.summary

    def _read_for(self, source: BinaryIO, send: Connection) -> None:
        """The reader process's work: _read() with each batch sent to the parent, then the summary."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends this process
        self.writer = Sender(send)
        kind, error = "done", ""
        try:
            self._read(source, lambda done, lines: send.send(("progress", done, lines)))
        except ImportError_ as failure:
            kind, error = "failed", str(failure)
        except Exception as failure:  # noqa: BLE001 - said to the parent, which raises it
            kind, error = "failed", f"reading the file failed after line {self.summary.lines}: {failure!r}"
        with contextlib.suppress(OSError):  # the parent may be gone (it failed to store, or was stopped)
            send.send((kind, self.summary, error))
        send.close()


def _has_fileno(source: BinaryIO) -> bool:
    """Whether source is an operating system's file (a forked process reads it from where this one left it)."""
    try:
        source.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


class Sender:
    """The reader process's writer: sends each batch to the parent, as tuples (a fifth of a CleanHit's pickling
    time; the visitor as its number, as UUID objects take ten times as long)."""

    def __init__(self, send: Connection) -> None:
        self.send = send

    def submit(self, batch: list[tuple[int, CleanHit]]) -> None:
        rows = []
        for key, hit in batch:
            values = _HIT_VALUES(hit)
            number = None if hit.visitor is None else hit.visitor.int
            rows.append((key, *values[: VISITOR - 1], number, *values[VISITOR:]))
        self.send.send(("batch", rows))

    def drain(self) -> None:
        pass


_HIT_VALUES = operator.attrgetter(*(item.name for item in fields(CleanHit)))  # a CleanHit's values, in order
VISITOR = 1 + [item.name for item in fields(CleanHit)].index("visitor")  # its place in a Sender's row


def _hits_from(rows: list[tuple[Any, ...]]) -> list[tuple[int, CleanHit]]:
    """A Sender's rows back to (key, CleanHit)."""
    # mypy counts the stars' arguments as more than CleanHit takes; they are its fields, in order (checked above)
    return [(row[0], CleanHit(*row[1:VISITOR], _uuid(row[VISITOR]), *row[VISITOR + 1 :])) for row in rows]  # type: ignore[call-arg]


def _uuid(number: int | None) -> uuid.UUID | None:
    """UUID(int=number) at a seventh of the time: what UUID's unpickling does, without the checks of its __init__
    (the number is one that a UUID gave)."""
    if number is None:
        return None
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", number)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def _position(raw: BinaryIO) -> int:
    try:
        return raw.tell()
    except (OSError, ValueError):
        return 0


class Writer:
    """Stores batches (store()) while the next ones are read: in a thread of its own with its own database
    connection, so parsing and PostgreSQL work at once. In the caller's thread instead when the caller is inside a
    transaction (a test's, or a caller that wants the import to be part of its own), which another connection
    could not see."""

    def __init__(self, site: Site, summary: Summary) -> None:
        self.site, self.summary = site, summary
        self.seen = Seen(site.pk)
        self.queue: queue.Queue[list[tuple[int, CleanHit]] | None] = queue.Queue(maxsize=2)
        self.thread: threading.Thread | None = None
        self.failure: Exception | None = None

    def submit(self, batch: list[tuple[int, CleanHit]]) -> None:
        self._check()
        if connection.in_atomic_block:
            self.store_now(batch)
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
            self.thread.start()
        self.queue.put(batch)

    def drain(self) -> None:
        """Wait until every batch submitted is stored; raises what the writer raised."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
        self._check()

    def _check(self) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure

    def _run(self) -> None:
        try:
            while (batch := self.queue.get()) is not None:
                if self.failure is None:  # after a failure, batches are taken off the queue but not stored
                    try:
                        self.store_now(batch)
                    except Exception as error:  # noqa: BLE001 - the reading thread raises it
                        self.failure = error
        finally:
            close_old_connections()
            connection.close()

    def store_now(self, batch: list[tuple[int, CleanHit]]) -> None:
        """Store the batch in the caller's thread (also the batches of a reader process)."""
        imported, bots = store(self.site, batch, self.seen)
        self.summary.imported += imported
        self.summary.bots += bots
        self.summary.duplicates += len(batch) - imported


IMPORT_LOCK_NAMESPACE = 0x6973  # "is": advisory locks (namespace, site id) are a site's import batches being stored
KEY = np.dtype("<i8")  # ImportedKeys.keys, 8 bytes a key
VISIT = np.dtype("<u8")  # ImportedVisits.visits, 8 bytes a (visitor, path)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Seen:
    """What an import knows of what its site already has, kept from batch to batch: whether the site has keys of
    ImportedRow (of imports before ImportedKeys), and the visits of the days it is at (PastVisits)."""

    def __init__(self, site_id: int) -> None:
        self.legacy: bool | None = None
        self.visits = PastVisits(site_id)


def store(site: Site, batch: list[tuple[int, CleanHit]], seen: Seen | None = None) -> tuple[int, int]:
    """Store the batch's hits not imported before, in one transaction with their keys; returns how many, and how
    many of them are bots'.

    Under the site's import lock: another import of the site (the same file again, a worker's retry) stores its
    batch before or after this one, never beside it, so neither misses the other's keys or visits. The pixel and
    the API never take it.
    """
    seen = seen or Seen(site.pk)
    # An import brings hits of any time, years old: their months get partitions first, so they are not left to
    # the hit table's default partition (logsvc.partitions).
    times: tuple[list[datetime | None], list[datetime | None]] = ([], [])  # people's, bots'
    for _, hit in batch:
        times[hit.bot > 0].append(hit.created_at)
    partitions.ensure_covering(Hit._meta.db_table, times[0])
    partitions.ensure_covering(BotHit._meta.db_table, times[1])
    with transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [IMPORT_LOCK_NAMESPACE, site.pk])
        old = _imported_before(cursor, site.pk, batch, seen)
        hits = []
        for key, hit in batch:
            if key not in old:
                old.add(key)  # a key twice in a batch (a hash's collision) is one hit, as it would be in two
                hits.append(hit)
        caught_up = None
        if past := [hit for hit in hits if hit.visitor_day is not None and hit.first_visit is None and not hit.bot]:
            caught_up = seen.visits.find(cursor, past)
        if hits:
            record_hits(site, hits)
            transaction.on_commit(schedule_roll_up)
    if caught_up is not None:
        caught_up()
    return len(hits), sum(1 for hit in hits if hit.bot)


def _imported_before(cursor: Any, site_id: int, batch: list[tuple[int, CleanHit]], seen: Seen) -> set[int]:
    """The batch's keys imported before; the others are added to ImportedKeys, a row for each hour of their hits.

    A key is looked for in the rows whose span holds its hit's time; a row's span is under an hour, so those
    rows start after that time less an hour, and the index on (site, first_at) reads no more than them.
    """
    count = len(batch)
    keys = np.fromiter((key for key, _ in batch), KEY, count)
    hours: dict[int, list[Any]] = {}  # hour (UTC) -> [first, last, the batch's lines of it]
    for line, (_, hit) in enumerate(batch):
        created = hit.created_at or EPOCH  # each format's lines have a time, or are bad lines
        if created.tzinfo is not UTC:
            created = created.astimezone(UTC)
        hour = created.toordinal() * 24 + created.hour
        if (span := hours.get(hour)) is None:
            hours[hour] = [created, created, [line]]
        else:
            if created < span[0]:
                span[0] = created
            elif created > span[1]:
                span[1] = created
            span[2].append(line)
    spans = list(hours.values())
    table = ImportedKeys._meta.db_table
    cursor.execute(
        f"SELECT i.id, i.keys FROM unnest(%s::timestamptz[], %s::timestamptz[]) AS s(first_at, last_at) "
        f"JOIN {table} i ON i.site_id = %s AND i.first_at <= s.last_at "
        "AND i.first_at > s.first_at - interval '1 hour' AND i.last_at >= s.first_at",
        [[first for first, _, _ in spans], [last for _, last, _ in spans], site_id],
    )
    rows = dict(cursor.fetchall())  # id -> keys: a row in the spans of two hours comes once
    known = [np.frombuffer(stored, KEY) for stored in rows.values()]
    if seen.legacy is None:
        seen.legacy = ImportedRow.objects.filter(site_id=site_id).exists()  # never written now: checked once
    if seen.legacy:
        cursor.execute(
            f"SELECT key FROM {ImportedRow._meta.db_table} WHERE site_id = %s AND key = ANY(%s::bigint[])",
            [site_id, keys.tolist()],
        )
        known.append(np.array([key for (key,) in cursor.fetchall()], KEY))
    old = np.isin(keys, np.concatenate(known)) if known else np.zeros(count, bool)
    added = []
    for first, last, lines in spans:
        if len(new := np.unique(keys[lines][~old[lines]])):
            added.append((first, last, new.tobytes()))
    if added:
        cursor.execute(
            f"INSERT INTO {table} (site_id, first_at, last_at, keys) "
            "SELECT %s, * FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::bytea[])",
            [site_id, *map(list, zip(*added, strict=True))],
        )
    return set(keys[old].tolist())


@functools.lru_cache(maxsize=CACHE_SIZE)
def _page_hash(path: str, event: bool) -> int:
    return int.from_bytes(hashlib.blake2b((b"e" if event else b"p") + path.encode(), digest_size=8).digest())


class PastVisits:
    """First visits of an import's hits of days other than today (CleanHit.visitor_day), found in memory.

    Their visitor hashes carry their day, so no pixel or API hit shares them: only this import and the site's
    other imports of today (under today's salt) can meet a visitor of such a day again, and those leave what they
    saw in ImportedVisits. For each day of its recent batches an import keeps a sorted array of the hashes of
    (visitor, path) seen that day (8 bytes each); a batch catches up with the rows other imports added since,
    under the site's import lock (store()), marks its hits, and adds a row a day of the ones it saw first.
    Memory is the visits of the days of the last KEEP_BATCHES batches, not of the file.
    """

    KEEP_BATCHES = 4

    def __init__(self, site_id: int) -> None:
        self.site_id = site_id
        self.days: dict[date, tuple[np.ndarray, int, int]] = {}  # day -> (seen, last row id read, batch number)
        self.batches = 0

    def find(self, cursor: Any, hits: list[CleanHit]) -> Callable[[], None]:
        """Set each hit's first_visit and add the batch's first visits to ImportedVisits; returns what brings the
        memory up to the database, to call once the transaction has committed."""
        self.batches += 1
        by_day: dict[date, list[CleanHit]] = {}
        for hit in hits:
            if hit.visitor is None:
                hit.first_visit = True  # as record_hits: a hit without a visitor is a visit of its own
            else:
                by_day.setdefault(hit.visitor_day, []).append(hit)  # type: ignore[arg-type]
        if not by_day:
            return lambda: None
        table = ImportedVisits._meta.db_table
        days = list(by_day)
        last = {day: self.days[day][1] if day in self.days else 0 for day in days}
        cursor.execute(
            f"SELECT v.day, v.id, v.visits FROM unnest(%s::date[], %s::bigint[]) AS d(day, after) "
            f"JOIN {table} v ON v.site_id = %s AND v.day = d.day AND v.id > d.after AND v.created_at >= %s",
            [days, [last[day] for day in days], self.site_id, _salt_start()],
        )
        read: dict[date, list[np.ndarray]] = {}
        for day, row_id, visits in cursor.fetchall():
            read.setdefault(day, []).append(np.frombuffer(visits, VISIT))
            last[day] = max(last[day], row_id)
        known: dict[date, np.ndarray] = {}
        added: dict[date, np.ndarray] = {}
        for day, day_hits in by_day.items():
            seen = self.days[day][0] if day in self.days else np.empty(0, VISIT)
            if day in read:
                seen = np.unique(np.concatenate([seen, *read[day]]))
            known[day] = seen
            visits = np.fromiter((hit.visitor.int >> 64 for hit in day_hits), VISIT, len(day_hits))  # type: ignore[union-attr]
            visits ^= np.fromiter((_page_hash(hit.path, hit.event) for hit in day_hits), VISIT, len(day_hits))
            first = np.zeros(len(visits), bool)
            first[np.unique(visits, return_index=True)[1]] = True  # a visit twice in the batch: its first hit
            if len(seen):
                first &= seen[np.minimum(np.searchsorted(seen, visits), len(seen) - 1)] != visits
            for hit, is_first in zip(day_hits, first.tolist(), strict=True):
                hit.first_visit = is_first
            added[day] = np.sort(visits[first])
        if new := [day for day in days if len(added[day])]:
            cursor.execute(
                f"INSERT INTO {table} (site_id, day, visits, created_at) "
                "SELECT %s, * , %s FROM unnest(%s::date[], %s::bytea[]) RETURNING day, id",
                [self.site_id, tz.now(), new, [added[day].astype(VISIT).tobytes() for day in new]],
            )
            for day, row_id in cursor.fetchall():
                last[day] = max(last[day], row_id)
        batch = self.batches

        def caught_up() -> None:
            for day, seen in known.items():
                merged = np.insert(seen, np.searchsorted(seen, added[day]), added[day])
                self.days[day] = (merged, last[day], batch)
            for day in [day for day, (_, _, used) in self.days.items() if used <= batch - self.KEEP_BATCHES]:
                del self.days[day]

        return caught_up


def _salt_start() -> datetime:
    """When today's salt began: rows of ImportedVisits added before hold hashes under another salt."""
    return datetime.combine(tz.now().date(), datetime.min.time(), tzinfo=UTC)


def follow(
    importer: Importer,
    path: str,
    *,
    poll: float = 0.5,
    keep_going: Callable[[], bool] = lambda: True,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Import the log at path, then keep importing the lines written to it, until keep_going() is false (or
    KeyboardInterrupt). A rotated log (renamed, a new file at path) is read to its end and the new file from its
    start; a truncated one (copytruncate) from its start. Lines are stored within a poll of being written."""
    handle = open(path, "rb")  # noqa: SIM115 - reopened on rotation
    number, pending = 0, b""
    try:
        while keep_going():
            chunk = handle.read(1 << 16)
            if chunk:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    number += 1
                    text = line.decode("utf-8", errors="replace").rstrip("\r")
                    importer.feed(number, text, text)
                continue
            importer.flush(wait=True)  # idle: what came is stored now, not when a batch fills
            if progress is not None:
                progress(importer.summary.lines)
            try:
                current = os.stat(path)
            except FileNotFoundError:  # between the rename and the new file
                time.sleep(poll)
                continue
            here = os.fstat(handle.fileno())
            if (current.st_ino, current.st_dev) != (here.st_ino, here.st_dev):
                rest = pending + handle.read()  # what the writer added before it moved on to the new file
                for line in rest.split(b"\n"):
                    number += 1
                    text = line.decode("utf-8", errors="replace").rstrip("\r")
                    importer.feed(number, text, text)
                handle.close()
                handle = open(path, "rb")  # noqa: SIM115
                pending, number = b"", 0
                continue
            if current.st_size < handle.tell():
                handle.seek(0)
                pending, number = b"", 0
                continue
            time.sleep(poll)
    except KeyboardInterrupt:
        pass
    finally:
        handle.close()
        importer.flush(wait=True)
    return importer.summary
