"""What the dashboard shows for a raw hit. Cases marked "GC" come from GoatCounter's hit_test.go (TestHitDefaultsPath,
TestHitDefaultsRef) and zgo.at/isbot; the user agents are real ones of current browsers, crawlers and tools."""

from __future__ import annotations

import pytest

from analytics import hitinfo

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:131.0) Gecko/20100101 Firefox/131.0"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
CHROME_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)
EDGE = CHROME_WINDOWS + " Edg/131.0.0.0"
SAMSUNG = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"
)
CHROME_WINDOWS_7 = (
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) "
    "Chrome/116.0.1938.76 Safari/537.36"
)
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
)
BYTESPIDER = (
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
    "(compatible; Bytespider; spider-feedback@bytedance.com)"
)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        # GC TestHitDefaultsPath
        ("/page", "/page"),
        ("//page/", "/page"),
        ("//", "/"),
        ("", ""),
        ("/page?q=a", "/page?q=a"),
        ("/page?fbclid=foo", "/page"),
        ("/page/?fbclid=foo", "/page"),
        ("/page?fbclid=foo&a=b", "/page?a=b"),
        ("/page?", "/page"),
        (
            (
                "/storage/emulated/0/Android/data/jonas.tool.saveForOffline/files/"
                "Curl_to_shell_isn_t_so_bad2019-11-09-11-07-58/curl-to-sh.html"
            ),
            "/curl-to-sh.html",
        ),
        ("/web/20200104233523/https://www.arp242.net/tmux.html", "/tmux.html"),
        ("/web/20190820072242/https://arp242.net", "/"),
        ("/web/20190820072242/https://arp242.net?a=b", "/?a=b"),
        ("/web/20190820072242/https://arp242.net?a=b&c=d", "/?a=b&c=d"),
        ("/web/20200104233523/https://www.arp242.net/many/more/slashes", "/many/more/slashes"),
        ("/web/assets/images/social-github.svg", "/web/assets/images/social-github.svg"),
        # The rest of GoatCounter's tracking list
        ("page", "/page"),
        ("  /page/  ", "/page"),
        ("/p?utm_source=x&utm_medium=y&utm_campaign=z&id=3", "/p?id=3"),
        ("/p?gclid=1&mc_cid=2&mc_eid=3&ref=hn", "/p"),
        ("/p?nsukey=1&isappinstalled=0&from=singlemessage", "/p"),
        ("/p?from=groupmessage&x=1", "/p?x=1"),
        ("/p?from=newsletter", "/p?from=newsletter"),
        ("/p?__cf_chl_jschl_tk__=abc&__cf_chl_captcha_tk__=d", "/p"),
        ("/?continueFlag=4020a77be9019cf14fefc373267aa46e", "/"),
        ("/p?_x_tr_sl=auto&_x_tr_tl=en&_x_tr_hl=nl&_x_tr_pto=wapp", "/p"),
        ("/p?utm%5Fsource=x", "/p"),
        ("/p?page=2&&utm_source=x&", "/p?page=2"),
        # Kept as the site wrote it, in order (GoatCounter sorts and re-encodes)
        ("/search?q=a+b&page=2&a=%20", "/search?q=a+b&page=2&a=%20"),
        ("/p?b=2&a=1", "/p?b=2&a=1"),
        # A year in the path is not an archive copy (GoatCounter turns this into "/")
        ("/web/2021-annual-report", "/web/2021-annual-report"),
    ],
)
def test_it_cleans_pageview_paths(raw, shown):
    assert hitinfo.clean_path(raw, event=False) == shown


@pytest.mark.parametrize(
    "raw",
    ["/favicon.ico", "favicon.ico", "/favicon.ico?v=2", "/servlet/redirect.srv/sruj/smyrwpoii/p1/", "/<html><body>"],
)
def test_it_ignores_what_goatcounter_ignores(raw):
    assert hitinfo.clean_path(raw, event=False) is None


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("click", "click"),
        ("/click", "click"),
        ("//signup/done/", "signup/done/"),
        ("/", "(no event name)"),
        ("", "(no event name)"),
    ],
)
def test_it_names_events(raw, shown):
    assert hitinfo.clean_path(raw, event=True) == shown


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        # GC TestHitDefaultsRef
        ("", ("", "")),
        ("https://arp242.net", ("arp242.net", "h")),
        ("https://arp242.net?a=b", ("arp242.net", "h")),
        ("https://arp242.net?a=b&c=d", ("arp242.net", "h")),
        ("https://t.co/asd", ("twitter.com/search?q=https%3A%2F%2Ft.co%2Fasd", "h")),
        ("https://t.co/asd?amp=1", ("twitter.com/search?q=https%3A%2F%2Ft.co%2Fasd", "h")),
        ("https://arp242.net?utm_source=asd", ("arp242.net", "h")),
        ("https://mail.google.com?a=b&c=d", ("Email", "g")),
        ("android-app://com.laurencedawson.reddit_sync.pro", ("www.reddit.com", "g")),
        ("https://en.m.wikipedia.org/wiki/Foo", ("en.wikipedia.org/wiki/Foo", "h")),
        ("https://en.m.wikipedia.org/wiki/Foo?a=b", ("en.wikipedia.org/wiki/Foo", "h")),
        ("https://www.reddit.com/r/programming/top", ("www.reddit.com/r/programming", "h")),
        ("https://np.reddit.com/r/programming/.compact", ("www.reddit.com/r/programming", "h")),
        ("android-app://com.example.android", ("com.example.android", "o")),
        # Search engines and apps under one name
        ("https://www.google.com/", ("Google", "g")),
        ("https://www.google.co.nz/search?q=goat", ("Google", "g")),
        ("android-app://com.google.android.googlequicksearchbox/https/www.google.com", ("Google", "g")),
        ("https://uk.search.yahoo.com/", ("Yahoo", "g")),
        ("https://news.ycombinator.com/", ("Hacker News", "g")),
        ("https://www.baidu.com/link?url=x", ("Baidu", "g")),
        ("https://duckduckgo.com/", ("duckduckgo.com", "h")),
        ("https://lobste.rs/t/javascript", ("lobste.rs", "h")),
        ("https://lobste.rs/s/tslw6k/why", ("lobste.rs/s/tslw6k/why", "h")),
        ("https://app.getpocket.com/read/2369667792", ("getpocket.com", "h")),
        # Free text is kept as sent
        ("Newsletter", ("Newsletter", "o")),
        ("com.Slack", ("Slack Chat", "g")),
        ("http://Example.COM:8080/a/", ("example.com:8080/a", "h")),
    ],
)
def test_it_shows_referrers(raw, shown):
    assert hitinfo.parse_ref(raw) == (*shown, "")


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("utm_source=newsletter&utm_campaign=spring", ("newsletter", "c", "spring")),
        ("?ref=producthunt", ("producthunt", "c", "")),
        ("src=twitter&campaign=launch", ("twitter", "c", "launch")),
        ("source=mastodon", ("mastodon", "c", "")),
        ("utm_source=news+letter", ("news letter", "c", "")),
        ("utm_source=%20&utm_campaign=spring", ("example.org/post", "h", "spring")),
        ("page=2", ("example.org/post", "h", "")),
    ],
)
def test_it_takes_campaigns_from_the_query(query, shown):
    assert hitinfo.parse_ref("https://example.org/post/", query) == shown


@pytest.mark.parametrize(
    "ref",
    [
        "https://example.com/other-page",
        "https://www.example.com/",
        "https://EXAMPLE.com:8443/x",
        "https://semalt.com/",
        "http://ru.semalt.com/crawler.php?u=x",
        "http://localhost:8000/",
    ],
)
def test_it_drops_internal_and_spam_referrers(ref):
    assert hitinfo.parse_ref(ref, "utm_campaign=spring", ("example.com",)) == ("", "", "spring")


def test_it_keeps_other_subdomains_of_the_site():
    assert hitinfo.parse_ref("https://blog.example.com/", "", ("example.com",)) == ("blog.example.com", "h", "")


@pytest.mark.parametrize(
    ("user_agent", "browser", "system"),
    [
        (CHROME_WINDOWS, "Chrome 131", "Windows 10"),
        (CHROME_WINDOWS_7, "Chrome 109", "Windows 7"),
        (FIREFOX_MAC, "Firefox 131", "macOS 10.15"),
        (FIREFOX_LINUX, "Firefox 133", "Linux"),
        (SAFARI_IPHONE, "Safari 17", "iOS 17.4"),
        (SAFARI_MAC, "Safari 17", "macOS 10.15"),
        (CHROME_IPHONE, "Chrome 131", "iOS 17.4"),
        (CHROME_ANDROID, "Chrome 131", "Android 10"),
        (EDGE, "Edge 131", "Windows 10"),
        (SAMSUNG, "Samsung Internet 26", "Android 14"),
        ("", "", ""),
        ("no idea", "", ""),
    ],
)
def test_it_names_browsers_and_systems(user_agent, browser, system):
    assert hitinfo.parse_user_agent(user_agent) == (browser, system)


@pytest.mark.parametrize(
    ("user_agent", "bot"),
    [
        (CHROME_WINDOWS, 0),
        (FIREFOX_MAC, 0),
        (SAFARI_IPHONE, 0),
        (EDGE, 0),
        (SAMSUNG, 0),
        (CHROME_ANDROID, 0),
        # isbot's order: short/odd first, then a URL, client libraries, known bots, boty words
        ("", hitinfo.BOT_SHORT),
        ("curl/7.8", hitinfo.BOT_SHORT),
        ("curl/8.5.0", hitinfo.BOT_SHORT),
        ("python-requests/2.32.3", hitinfo.BOT_SHORT),
        ("Go-http-client/1.1", hitinfo.BOT_SHORT),
        (GOOGLEBOT, hitinfo.BOT_LINK),
        (BINGBOT, hitinfo.BOT_LINK),
        ("Wget/1.13.4 (linux-gnu)", hitinfo.BOT_CLIENT_LIBRARY),
        ("curl/8.5.0 (x86_64-pc-linux-gnu) libcurl/8.5.0", hitinfo.BOT_CLIENT_LIBRARY),
        ("Apache-HttpClient/4.5.14 (Java/17.0.9)", hitinfo.BOT_CLIENT_LIBRARY),
        (HEADLESS_CHROME, hitinfo.BOT_KNOWN_BOT),
        (BYTESPIDER, hitinfo.BOT_KNOWN_BOT),
        ("Mozilla/5.0 (compatible; Chrome-Lighthouse) Version/1", hitinfo.BOT_KNOWN_BOT),
        # CrawlerDetect's generic bot/crawler/spider patterns catch these before isbot's "boty" words (6) would
        ("Mozilla/5.0 (compatible; Zorbot 1.0) Foo/1", hitinfo.BOT_KNOWN_BOT),
        ("Mozilla/5.0 (Linux; Android 9; CUBOT_X19) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", 0),
    ],
)
def test_it_tells_bots_from_people(user_agent, bot):
    assert hitinfo.detect_bot(user_agent) == bot


@pytest.mark.parametrize(
    ("user_agent", "hint", "bot"),
    [
        (CHROME_WINDOWS, 153, 153),  # count.js saw navigator.webdriver
        (CHROME_WINDOWS, 150, 150),
        (CHROME_WINDOWS, 1, 0),  # isbot's NoBotNoMatch is not a bot
        (HEADLESS_CHROME, 153, hitinfo.BOT_KNOWN_BOT),  # what the UA says wins
    ],
)
def test_it_keeps_the_clients_bot_hint_for_human_looking_agents(user_agent, hint, bot):
    assert hitinfo.detect_bot(user_agent, hint) == bot


@pytest.mark.parametrize(
    ("raw", "width"),
    [
        (None, None),
        ("", None),
        ([], None),
        (1920, 1920),
        (1920.0, 1920),
        ("1920", 1920),
        ([1920, 1080, 2], 1920),
        ([390.5, 844, 3], 390),
        ("1920,1080,2", 1920),
        ("1920, 1080, 1.5", 1920),
        (0, 0),
        (2**31 - 1, 2**31 - 1),
    ],
)
def test_it_reads_screen_widths(raw, width):
    assert hitinfo.parse_size(raw) == width


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("wide", "must be a number"),
        ("1920,x,2", "must be a number"),
        ([True], "must be a number"),
        ({"w": 1}, "must be a number"),
        ([float("nan")], "must be a number"),
        (-1, "negative"),
        ("-1920", "negative"),
        (2**31, "larger than 2147483647"),
    ],
)
def test_it_refuses_bad_screen_sizes(raw, message):
    with pytest.raises(ValueError, match=message):
        hitinfo.parse_size(raw)


@pytest.mark.parametrize(
    ("raw", "location"),
    [("", ""), ("US", "US"), ("nl", "NL"), ("us-tx", "US-TX"), ("GB-ENG", "GB-ENG"), ("FR-75", "FR-75")],
)
def test_it_reads_locations(raw, location):
    assert hitinfo.parse_location(raw) == location


@pytest.mark.parametrize("raw", ["USA", "U", "US-", "US-TEXAS", "1A", "ÜS", "US_TX"])
def test_it_refuses_bad_locations(raw):
    with pytest.raises(ValueError, match="is not a country code such as 'US'"):
        hitinfo.parse_location(raw)


@pytest.mark.parametrize(
    ("raw", "language"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("en-US,en;q=0.9,nl;q=0.8", "en"),
        ("pt_BR", "pt"),
        ("zh-Hant-TW", "zh"),
        ("FIL", "fil"),
        ("", ""),
        ("*", ""),
        ("i-klingon", ""),
        ("english", ""),
        ("e1", ""),
    ],
)
def test_it_reads_languages(raw, language):
    assert hitinfo.parse_language(raw) == language
