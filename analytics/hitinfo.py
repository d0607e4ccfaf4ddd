"""Turn a raw hit's fields into what we store, the way GoatCounter does.

Pure functions: no database and no settings, so the /count pixel, the /api/v0/count batch and an import all clean a
hit the same way. They run for every hit (batches of 500), so whatever is keyed on the User-Agent is cached per UA
string and everything else is plain string work. The behaviour follows GoatCounter's hit.go (cleanPath, Ignore),
ref.go (cleanRefURL), refspam.go and zgo.at/isbot; where we differ on purpose a comment says so.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

from crawlerdetect import CrawlerDetect
from ua_parser import BasicResolver, Domain, Resolver, load_builtins

MAX_PATH = 2048
MAX_TITLE = 1024
MAX_REF = 2048
MAX_USER_AGENT = 512
# Not GoatCounter's (it has none): a campaign and its source share one key of the StatDay index, whose rows
# PostgreSQL caps at 2,704 bytes, so the two together stay well under it.
MAX_CAMPAIGN = 256
MAX_BROWSER = MAX_SYSTEM = 100  # Hit.browser and Hit.system


def clip(value: str, limit: int) -> str:
    """At most limit bytes of UTF-8, cut at a character boundary: a long title or referrer is cut, not a reason
    to lose the pageview."""
    if len(value) * 4 <= limit:  # short enough in any encoding: skip the encode (the common case)
        return value
    return value.encode()[:limit].decode(errors="ignore")


# How many distinct User-Agents the parsers remember: a busy site sees a few hundred in an hour.
UA_CACHE_SIZE = 4096
REF_CACHE_SIZE = 4096  # (referrer, query, site hosts): at most MAX_REF + MAX_PATH bytes each

MAX_INT32 = 2**31 - 1


# --- Paths ---------------------------------------------------------------------------------------------------------

_OFFLINE_READER = "/storage/emulated/0/Android/data/jonas.tool.saveForOffline/files/"
_ARCHIVE = re.compile(r"/web/20\d{12}/")  # /web/20200104233523/https://example.com/page
_TRACKING_PARAMS = frozenset({"fbclid", "gclid", "ref", "mc_cid", "mc_eid", "nsukey", "isappinstalled", "continueFlag"})
_TRACKING_PREFIXES = ("utm_", "__cf_chl_", "_x_tr_")  # Google Analytics, Cloudflare challenges, Google Translate
_WECHAT_FROM = ("singlemessage", "groupmessage")


def clean_path(path: str, event: bool) -> str | None:
    """GoatCounter's path clean-up, so /page, /page/ and /page?utm_source=x count as one page.

    Pageviews get a leading '/' and lose trailing ones ('/' stays '/'); tracking query parameters go, the rest of the
    query stays as sent and in order; Internet Archive and offline-reader copies count as the page they wrap.
    Events only lose leading slashes; an empty name becomes '(no event name)'. An empty pageview path stays ''
    (the caller reports it as missing). None: a hit GoatCounter ignores (favicon, kproxy, HTML sent as the path).
    """
    path = path.strip()
    if "<html>" in path or "<HTML>" in path:  # almost certainly broken HTML or a scanner
        return None
    if event:
        return path.lstrip("/") or "(no event name)"
    if not path:
        return ""

    path = "/" + path.strip("/")
    if path.startswith(_OFFLINE_READER):
        # /storage/emulated/0/.../files/Some_title2019-11-09-11-07-58/page.html -> /page.html
        path = path[len(_OFFLINE_READER) :]
        slash = path.find("/")
        path = path[slash:] if slash > -1 else "/" + path
    elif _ARCHIVE.match(path):
        path = _unwrap_archive(path)

    if path == "/favicon.ico" or path.startswith(("/favicon.ico?", "/servlet/redirect.srv/")):
        return None  # kproxy.com redirects don't say which page they were for
    path = path.rstrip("?&")
    if "?" not in path:
        return path
    return "/" + _without_tracking(path).strip("/")


def _unwrap_archive(path: str) -> str:
    # Only a real 14-digit timestamp: GoatCounter also unwraps /web/2021-report, turning it into "/".
    try:
        url = urlsplit(path[20:])
    except ValueError:
        return path
    unwrapped = url.path if url.path.startswith("/") else "/" + url.path
    return unwrapped + "?" + url.query if url.query else unwrapped


def _without_tracking(path: str) -> str:
    """path minus the tracking parameters. Unlike GoatCounter (Go's url.Values.Encode) we don't sort or re-encode
    what's left: /search?q=a+b&page=2 stays as the site wrote it."""
    head, hashmark, fragment = path.partition("#")
    base, _, query = head.partition("?")
    kept = []
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        if key in _TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES):
            continue
        if key == "from" and value in _WECHAT_FROM:  # WeChat share tracking
            continue
        kept.append(pair)
    cleaned = base + "?" + "&".join(kept) if kept else base
    return cleaned + "#" + fragment if hashmark else cleaned


# --- Referrers -----------------------------------------------------------------------------------------------------

_CAMPAIGN_SOURCES = ("utm_source", "ref", "src", "source")
_CAMPAIGN_NAMES = ("utm_campaign", "campaign")

# GoatCounter's groups (ref.go): hosts and Android app ids shown under one generated name.
_GROUPS = {
    # HN has <meta name="referrer" content="origin">, so only the domain arrives anyway.
    "news.ycombinator.com": "Hacker News",
    "hn.algolia.com": "Hacker News",
    "hckrnews.com": "Hacker News",
    "hn.premii.com": "Hacker News",
    "com.stefandekanski.hackernews.free": "Hacker News",
    "io.github.hidroh.materialistic": "Hacker News",
    "hackerweb.app": "Hacker News",
    "www.daemonology.net/hn-daily": "Hacker News",
    "quiethn.com": "Hacker News",
    "hnews.xyz": "Hacker News",
    "hackernewsmobile.com": "Hacker News",
    "mail.google.com": "Email",
    "com.google.android.gm": "Email",
    "mail.yahoo.com": "Email",
    "org.fox.ttrss": "RSS",
    "www.inoreader.com": "RSS",
    "com.innologica.inoreader": "RSS",
    "usepanda.com": "RSS",
    "feedly.com": "RSS",
    "com.google.android.googlequicksearchbox": "Google",
    "com.google.android.googlequicksearchbox/https/www.google.com": "Google",
    "com.andrewshu.android.reddit": "www.reddit.com",
    "com.laurencedawson.reddit_sync": "www.reddit.com",
    "com.laurencedawson.reddit_sync.dev": "www.reddit.com",
    "com.laurencedawson.reddit_sync.pro": "www.reddit.com",
    "m.facebook.com": "www.facebook.com",
    "l.facebook.com": "www.facebook.com",
    "lm.facebook.com": "www.facebook.com",
    "org.telegram.messenger": "Telegram Messenger",
    "com.slack": "Slack Chat",  # GoatCounter spells it com.Slack; we compare hosts lower-cased
    "baidu.com": "Baidu",
    "c.tieba.baidu.com": "Baidu",
    "m.baidu.com": "Baidu",
    "tieba.baidu.com": "Baidu",
    "www.baidu.com": "Baidu",
}

_HOST_ALIASES = {
    "en.m.wikipedia.org": "en.wikipedia.org",
    "m.facebook.com": "www.facebook.com",
    "m.habr.com": "habr.com",
    "old.reddit.com": "www.reddit.com",
    "i.reddit.com": "www.reddit.com",
    "np.reddit.com": "www.reddit.com",
    "fr.reddit.com": "www.reddit.com",
}

# The best known entries of Matomo's referrer-spam list, which GoatCounter's refspam.go embeds whole (~2,500
# domains). Subdomains match too. localhost is GoatCounter's own addition: never a real visitor's referrer.
_REFSPAM = frozenset(
    {
        "localhost",
        "1-free-share-buttons.com",
        "100dollars-seo.com",
        "4webmasters.org",
        "7makemoneyonline.com",
        "anticrawler.org",
        "autoseo-traffic.com",
        "best-seo-offer.com",
        "bestwebsitesawards.com",
        "biglistofwebsites.com",
        "blackhatworth.com",
        "bot-traffic.xyz",
        "buttons-for-website.com",
        "buttons-for-your-website.com",
        "darodar.com",
        "econom.co",
        "event-tracking.com",
        "free-share-buttons.com",
        "free-social-buttons.com",
        "get-free-traffic-now.com",
        "hulfingtonpost.com",
        "ilovevitaly.com",
        "priceg.com",
        "ranksonic.info",
        "savetubevideo.com",
        "semalt.com",
        "simple-share-buttons.com",
        "social-buttons.com",
        "trafficmonetize.com",
        "your-good-links.com",
        "yourserverisdown.com",
    }
)


@functools.lru_cache(maxsize=REF_CACHE_SIZE)  # a site's referrers repeat (an import's lines above all)
def parse_ref(ref: str, query: str = "", site_hosts: tuple[str, ...] = ()) -> tuple[str, str, str]:
    """(referrer, ref_scheme, campaign) as the dashboard's referrer and campaign lists show them.

    ref_scheme: 'h' an http(s) URL, stored as host + path (no scheme, query, fragment or trailing '/'); 'g' a
    generated name ('Google', 'Email', 'Hacker News' ...); 'c' a campaign source from utm_source/ref/src/source in
    query, which replaces the referrer; 'o' anything else (free text, an android-app:// id); '' no referrer.
    campaign comes from utm_campaign/campaign in query. Internal navigation (a host in site_hosts, 'www.' or not)
    and referrer spam give no referrer. query is the page's own query string: pass '' for events, as GoatCounter
    takes campaigns from pageviews only.
    """
    campaign = ""
    if query:
        params = _first_values(query)
        campaign = clip(next((v for name in _CAMPAIGN_NAMES if (v := params.get(name, "").strip())), ""), MAX_CAMPAIGN)
        for name in _CAMPAIGN_SOURCES:
            if source := params.get(name, "").strip():
                return clip(source, MAX_REF), "c", campaign

    ref = ref.strip()
    if not ref:
        return "", "", campaign
    try:
        url = urlsplit(ref)
        hostname = url.hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket: not a URL we can read, so keep the text
        return clip(ref.rstrip("/"), MAX_REF), "o", campaign
    if not url.netloc:
        # Free text ("Newsletter") or an app id; GoatCounter looks these up in its groups too.
        text = ref.rstrip("/")
        if group := _GROUPS.get(text.lower()):
            return group, "g", campaign
        return clip(text, MAX_REF), "o", campaign
    if _is_internal(hostname, site_hosts) or _is_refspam(hostname):
        return "", "", campaign

    scheme = "h" if url.scheme in ("http", "https") else "o"
    host = url.netloc.rpartition("@")[2].lower()  # keeps a port, as GoatCounter does
    path = url.path
    if host == "link.oreilly.com":  # GoatCounter: "there are *a lot* of them"; the path is noise
        return host, scheme, campaign
    host = _HOST_ALIASES.get(host, host)
    if host.startswith(("www.google.", "google.")):
        return "Google", "g", campaign
    if "search.yahoo.com" in host:
        return "Yahoo", "g", campaign
    if group := _GROUPS.get(host) or _GROUPS.get(host + path.rstrip("/")):
        return group, "g", campaign
    if host in ("lobste.rs", "gambe.ro") and not path.startswith("/s/"):
        return "lobste.rs", scheme, campaign  # only /s/<story> says anything; listing pages don't
    if host in ("getpocket.com", "app.getpocket.com"):
        return "getpocket.com", scheme, campaign
    if host == "www.reddit.com":
        for suffix in ("/top", "/new", "/search", ".compact"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
    if host == "t.co" and len(path) > 1:
        # t.co/abc only links back to this page; a search for it finds the tweet.
        return clip("twitter.com/search?q=https%3A%2F%2Ft.co" + quote(path, safe=""), MAX_REF), scheme, campaign

    cleaned = (host + path).rstrip("/").strip()
    if not cleaned:
        return "", "", campaign
    return clip(cleaned, MAX_REF), scheme, campaign


def _first_values(query: str) -> dict[str, str]:
    """The first value of each parameter, decoded: what Go's url.Values.Get returns."""
    values: dict[str, str] = {}
    for pair in query.lstrip("?").split("&"):
        if pair:
            key, _, value = pair.partition("=")
            values.setdefault(unquote_plus(key), unquote_plus(value))
    return values


def _is_internal(hostname: str, site_hosts: tuple[str, ...]) -> bool:
    bare = hostname.removeprefix("www.")
    return any(bare == site_host.lower().partition(":")[0].removeprefix("www.") for site_host in site_hosts)


def _is_refspam(hostname: str) -> bool:
    while True:
        if hostname in _REFSPAM:
            return True
        dot = hostname.find(".")
        if dot == -1:
            return False
        hostname = hostname[dot + 1 :]


# --- Bots ----------------------------------------------------------------------------------------------------------

# zgo.at/isbot's constants, stored in the bot column ("DO NOT change the values").
BOT_PREFETCH = 2
BOT_LINK = 3
BOT_CLIENT_LIBRARY = 4
BOT_KNOWN_BOT = 5
BOT_BOTY = 6
BOT_SHORT = 7

# isbot's lists (user_agent.go), matched as plain substrings in this order.
_KNOWN_BROWSERS = ("CUBOT_", "CUBOT ", "StudoBrowser/")  # phones and apps whose UA would otherwise look boty
_CLIENT_LIBRARIES = (
    "Go-http-client/",
    "HttpClient/",
    "HTTPClient/",
    "Java/",
    "PycURL/",
    "Python-urllib/",
    "Robosourcer/",
    "Ruby",
    "Wget/",
    "WinHttp.WinHttpRequest.5",
    "curl/",
    "python-requests/",
    "libwww-perl/",
)
_KNOWN_BOTS = (
    "ADmantX",
    "AlexaToolbar/",
    "BingPreview/",
    "Chrome-Lighthouse",
    "DumpRenderTree/",
    "Faraday v",
    "GigablastOpenSource/",
    "Google Web Preview",
    "Google favicon",
    "Google-Ad",
    "Google-Site-Verification",
    "GoogleSecurityScanner",
    "Google_Analytics_Snippet_Validator",
    "HeadlessChrome/",
    "Netcraft Web Server Survey",
    "NetcraftSurveyAgent/",
    "Owler/",
    "PageAnalyzer/",
    "ScopeContentAG-HTTP-Client",
    "Survey/",
    "Synapse",
    "Wappalyzer",
    "WhatWeb/",
    "WinInet",
    "WordPress.com",
    "burpcollaborator.net/",
    "okhttp/",
    "panscient.com",
    "tracemyfile/",
    "wsr-agent/",
    "RuxitRecorder/",
    "RuxitSynthetic/",
    "TrendsmapResolver/",
    "ubermetrics-technologies.com",
    "zgrab/",
)

_crawler_detect = CrawlerDetect()


def detect_bot(user_agent: str, hint: int = 0) -> int:
    """0 for a person, else the isbot category the hit is stored under (bots are never counted).

    3 URL in the UA, 4 a client library, 5 a known crawler (isbot's list, then CrawlerDetect's), 6 a 'boty' UA,
    7 short or odd: under 10 characters, or no space or no '/'. As in isbot that check comes first, so bare
    'curl/8.5.0' or 'python-requests/2.32.3' is 7 and 'Wget/1.21 (linux-gnu)' is 4. Prefetch (2) depends on
    headers, not decided here. hint, the client's own report (count.js sends 150-153 for a headless browser), is
    kept when the UA looks human; 0 and 1 mean "not a bot" in isbot, so they give 0.
    """
    bot = _bot_from_user_agent(user_agent)
    if bot:
        return bot
    return hint if hint > 1 else 0


@functools.lru_cache(maxsize=UA_CACHE_SIZE)
def _bot_from_user_agent(user_agent: str) -> int:
    if len(user_agent) < 10 or " " not in user_agent or "/" not in user_agent:
        return BOT_SHORT
    if any(browser in user_agent for browser in _KNOWN_BROWSERS):
        return 0
    if "://" in user_agent:  # "+http://www.google.com/bot.html": people's browsers don't carry links
        return BOT_LINK
    if any(library in user_agent for library in _CLIENT_LIBRARIES):
        return BOT_CLIENT_LIBRARY
    if any(bot in user_agent for bot in _KNOWN_BOTS) or _crawler_detect.is_crawler(user_agent):
        return BOT_KNOWN_BOT
    lower = user_agent.lower()
    if "bot" in lower or "crawler" in lower or "spider" in lower:
        return BOT_BOTY
    return 0


# --- Browser and system --------------------------------------------------------------------------------------------

# ua-parser's family names -> the names GoatCounter's dashboard shows (one "Chrome" for desktop and mobile).
_BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari WebView",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
_SYSTEM_NAMES = {"Mac OS X": "macOS"}


@functools.cache
def _ua_resolver() -> Resolver:
    # The pure-Python resolver over eagerly compiled regexes: the lazy loader recompiles per miss (~10-30 ms
    # each), and the faster resolvers need ua-parser-rs or google-re2, which we don't install. Compiling the
    # ~1,000 regexes takes ~0.1 s, so it happens at the first hit rather than at import.
    return BasicResolver(load_builtins())


@functools.lru_cache(maxsize=UA_CACHE_SIZE)
def parse_user_agent(user_agent: str) -> tuple[str, str]:
    """(browser, system) as GoatCounter shows them: ('Chrome 131', 'Windows 10'), ('Safari 17', 'iOS 17.4').

    Browsers get their major version only, systems major.minor where the UA has one. Both are only what the UA
    claims: Windows 11 says 'Windows NT 10.0' and every Mac says 10.15, so they show as Windows 10 and macOS 10.15.
    '' for a part ua-parser doesn't know.
    """
    result = _ua_resolver()(user_agent, Domain.USER_AGENT | Domain.OS)
    browser = system = ""
    if (agent := result.user_agent) and agent.family != "Other":
        name = _BROWSER_NAMES.get(agent.family, agent.family)
        browser = f"{name} {agent.major}" if agent.major else name
    if (platform := result.os) and platform.family != "Other":
        name = _SYSTEM_NAMES.get(platform.family, platform.family)
        version = f"{platform.major}.{platform.minor}" if platform.major and platform.minor else platform.major or ""
        system = f"{name} {version}" if version else name
    return clip(browser, MAX_BROWSER), clip(system, MAX_SYSTEM)


# --- Screen size, location, language -------------------------------------------------------------------------------


def parse_size(value: Any) -> int | None:
    """Screen width in pixels from 1920, '1920', [1920, 1080, 2] (legacy; only the width is kept) or the pixel's
    '1920,1080,2'. None when absent; ValueError saying what's wrong when malformed, negative or over 2**31-1."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        parts: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    numbers = [_size_number(part, value) for part in parts]
    if any(number < 0 for number in numbers):  # each of them, as the OpenAPI document says (SIZE_SCHEMA)
        raise ValueError(f"screen size {value!r} is negative")
    if any(number > MAX_INT32 for number in numbers):
        raise ValueError(f"screen size {value!r} is larger than {MAX_INT32}")
    return int(numbers[0])


def _size_number(part: Any, value: Any) -> float:
    if isinstance(part, bool):  # JSON true is not a width, though Python's bool is an int
        # ValueError, not TypeError: the caller reports every bad size the same way, as the hit's field error.
        raise ValueError(f"screen size {value!r} must be a number such as 1920 or [1920, 1080, 2]")  # noqa: TRY004
    if isinstance(part, str):
        try:
            part = float(part.strip())
        except ValueError:
            raise ValueError(f"screen size {value!r} must be a number such as 1920 or '1920,1080,2'") from None
    if not isinstance(part, (int, float)) or not math.isfinite(part):
        raise ValueError(f"screen size {value!r} must be a number such as 1920 or [1920, 1080, 2]")
    return part


LOCATION_SHAPE = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")


def parse_location(value: str) -> str:
    """'US' or 'US-TX' (an ISO 3166-1 alpha-2 country, optionally an ISO 3166-2 region), upper-cased; '' for empty.
    ValueError when it has another shape. Whether the country exists isn't checked."""
    location = value.strip().upper()
    if not location:
        return ""
    if not location.isascii() or not LOCATION_SHAPE.fullmatch(location):
        raise ValueError(f"{value!r} is not a country code such as 'US' or a region such as 'US-TX'")
    return location


def parse_language(value: str) -> str:
    """The primary language subtag, lower-cased: 'en' from 'en-US', 'en_GB' or 'en-US,en;q=0.9'. '' when absent or
    unreadable ('*', 'i-klingon'): GoatCounter ignores a language it can't parse rather than refusing the hit."""
    tag = value.partition(",")[0].partition(";")[0].strip()
    primary = tag.replace("_", "-").partition("-")[0].lower()
    if 2 <= len(primary) <= 3 and primary.isascii() and primary.isalpha():
        return primary
    return ""
