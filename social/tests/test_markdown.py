"""social.markdown: Markdown → sanitised HTML with #tags and @mentions, checked against the seed and an XSS corpus."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model

from social.markdown import EXTERNAL_REL, Rendered, render

SEED_MARKDOWN = (
    "Catching up on some fiddly #admin stuff this morning. Updated and backed up our #HelloCode #bookkeeping docs, "
    "booked #theatre tickets for this weekend, wrote up our company #report for October, replied to some "
    "#customerdevelopment questions about remote working, paid rent, updated #exist resource pages, and requested "
    "a refund for a bad app I bought recently."
)
# The seed's first timeline entry, content and tags verbatim (the seed lists tags sorted, we keep first-seen order).
SEED_CONTENT = (
    '<p>Catching up on some fiddly <a class="tag" href="/tag/admin"><span class="hash">#</span>admin</a> stuff this '
    'morning. Updated and backed up our <a class="tag" href="/tag/HelloCode"><span class="hash">#</span>HelloCode</a> '
    '<a class="tag" href="/tag/bookkeeping"><span class="hash">#</span>bookkeeping</a> docs, booked '
    '<a class="tag" href="/tag/theatre"><span class="hash">#</span>theatre</a> tickets for this weekend, wrote up our '
    'company <a class="tag" href="/tag/report"><span class="hash">#</span>report</a> for October, replied to some '
    '<a class="tag" href="/tag/customerdevelopment"><span class="hash">#</span>customerdevelopment</a> questions about '
    'remote working, paid rent, updated <a class="tag" href="/tag/exist"><span class="hash">#</span>exist</a> resource '
    "pages, and requested a refund for a bad app I bought recently.</p>"
)
SEED_TAGS = ["admin", "bookkeeping", "customerdevelopment", "exist", "HelloCode", "report", "theatre"]


def tag_link(name: str, href: str | None = None) -> str:
    return f'<a class="tag" href="{href or "/tag/" + name}"><span class="hash">#</span>{name}</a>'


def user_link(username: str) -> str:
    return f'<a class="content-user" href="/{username}">@{username}</a>'


def make_user(username: str):
    return get_user_model().objects.create_user(username, email=f"{username.lower()}@example.org", password="pw")


# --- The seed -----------------------------------------------------------------------------------------------------


def test_it_renders_the_seeds_first_log_exactly():
    rendered = render(SEED_MARKDOWN)

    assert rendered == Rendered(
        html=SEED_CONTENT,
        tags=["admin", "HelloCode", "bookkeeping", "theatre", "report", "customerdevelopment", "exist"],
        mentions=[],
    )
    assert sorted(rendered.tags, key=str.lower) == SEED_TAGS


def test_it_renders_paragraphs_and_lists_like_the_seed():
    text = (
        "I completed all of the user login system lessons but it doesn't work properly. \n\n"
        "* After logging in it displays the login page instead of the members page\n"
        "* Logout isn't displayed after logging in \n"
        "* Register is shown to logged in users"
    )

    assert render(text).html == (
        "<p>I completed all of the user login system lessons but it doesn't work properly. </p>\n"
        "<ul>\n<li>After logging in it displays the login page instead of the members page</li>\n"
        "<li>Logout isn't displayed after logging in </li>\n<li>Register is shown to logged in users</li>\n</ul>"
    )
    assert render("Thanks guys :)\n\nI'll check out the book too!").html == (
        "<p>Thanks guys :)</p>\n<p>I'll check out the book too!</p>"
    )
    # The seed's "Notes to self:\n- ..." stays one paragraph: a list needs a blank line before it.
    assert render("Notes to self:\n- spell correctly\n- getUserById").html == (
        "<p>Notes to self:\n- spell correctly\n- getUserById</p>"
    )


def test_it_renders_the_seeds_link_and_mention_log(db):
    make_user("belle")
    text = (
        "Whew! Spent ages collecting our #exist [links post](https://exist.io/blog/weekly-links-102-light/) for "
        "this week. A post @belle writes. #weeklylinks"
    )

    rendered = render(text)

    # As the seed, plus rel on the external link (only there: the seed's own /tag and /user links have none).
    assert rendered.html == (
        f'<p>Whew! Spent ages collecting our {tag_link("exist")} <a href="https://exist.io/blog/weekly-links-102-light/"'
        f' rel="{EXTERNAL_REL}">links post</a> for this week. A post {user_link("belle")} writes. '
        f"{tag_link('weeklylinks')}</p>"
    )
    assert rendered.tags == ["exist", "weeklylinks"]
    assert rendered.mentions == ["belle"]


# --- Tags ---------------------------------------------------------------------------------------------------------


def test_it_keeps_tag_case_and_dedupes_tags_case_insensitively():
    rendered = render("#HelloCode and #hellocode and #HELLOCODE, then #API")

    assert rendered.tags == ["HelloCode", "API"]
    # Every occurrence is linked as written.
    assert rendered.html == (
        f"<p>{tag_link('HelloCode')} and {tag_link('hellocode')} and {tag_link('HELLOCODE')}, then {tag_link('API')}</p>"
    )


def test_it_needs_a_letter_in_a_tag():
    rendered = render("#1 #2020 #_ #1st #a1")

    assert rendered.tags == ["1st", "a1"]
    assert rendered.html.startswith("<p>#1 #2020 #_ <a")


def test_it_does_not_take_url_fragments_or_mid_word_hashes_for_tags():
    rendered = render("See http://x.com/#anchor and http://x.com/page#top, C#sharp, a=#b, (x)#y, &#x61; and issue#12")

    assert rendered.tags == []
    assert 'class="tag"' not in rendered.html


def test_it_links_tags_next_to_punctuation_and_markup():
    rendered = render("(#paren) #comma, *#em* **#strong** #end.")

    assert rendered.tags == ["paren", "comma", "em", "strong", "end"]
    assert f"<em>{tag_link('em')}</em>" in rendered.html
    assert f"<strong>{tag_link('strong')}</strong>" in rendered.html
    assert f"{tag_link('end')}.</p>" in rendered.html


def test_it_keeps_underscores_and_unicode_in_tags_and_percent_encodes_the_href():
    rendered = render("#snake_case_tag #café #日本語 #tag·x")

    assert rendered.tags == ["snake_case_tag", "café", "日本語", "tag·x"]
    assert tag_link("snake_case_tag") in rendered.html
    assert tag_link("café", "/tag/caf%C3%A9") in rendered.html
    assert tag_link("tag·x", "/tag/tag%C2%B7x") in rendered.html


def test_it_leaves_tags_longer_than_a_tag_name_can_be_as_text():
    assert render("#" + "a" * 100).tags == ["a" * 100]
    assert render("#" + "a" * 101).tags == []


def test_it_takes_a_line_starting_with_a_tag_for_a_paragraph_not_a_heading():
    rendered = render("#admin stuff\nmore text\n#second line")

    assert rendered.html == f"<p>{tag_link('admin')} stuff\nmore text\n{tag_link('second')} line</p>"
    assert rendered.tags == ["admin", "second"]


def test_it_demotes_headings_to_h3_and_h4():
    assert render("# One #x\n\n## Two\n\n### Three\n\nSetext\n===").html == (
        f"<h3>One {tag_link('x')}</h3>\n<h3>Two</h3>\n<h4>Three</h4>\n<h3>Setext</h3>"
    )


# --- Mentions -----------------------------------------------------------------------------------------------------


def test_it_links_mentions_of_existing_users_only(alice, charlie):
    rendered = render("@alice and @nobody and @charlie")

    assert rendered.html == f"<p>{user_link('alice')} and @nobody and {user_link('charlie')}</p>"
    assert rendered.mentions == ["alice", "charlie"]


def test_it_orders_mentions_by_first_appearance_and_lists_each_once(alice, charlie):
    assert render("@charlie @alice @charlie @ALICE").mentions == ["charlie", "alice"]


def test_it_matches_mentions_case_insensitively_and_links_the_stored_spelling(db):
    make_user("BelleBeth")

    rendered = render("Thanks @bellebeth!")

    assert rendered.html == f"<p>Thanks {user_link('BelleBeth')}!</p>"
    assert rendered.mentions == ["BelleBeth"]


def test_it_does_not_take_emails_or_url_paths_for_mentions(alice):
    rendered = render("mail bob@alice or x@alice.com, see medium.com/@alice, or @alice@elsewhere.social")

    assert rendered.mentions == []
    assert 'class="content-user"' not in rendered.html


def test_it_ends_a_mention_before_trailing_punctuation(alice, charlie):
    rendered = render("Hi @alice. And @charlie's, (@alice)")

    assert rendered.html == (f"<p>Hi {user_link('alice')}. And {user_link('charlie')}'s, ({user_link('alice')})</p>")


def test_it_looks_up_all_mentioned_users_in_one_query(alice, charlie, django_assert_num_queries):
    with django_assert_num_queries(1):
        rendered = render("@alice @charlie @nobody @other @Alice " * 20)
    assert rendered.mentions == ["alice", "charlie"]


def test_it_runs_no_query_without_an_at_sign(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert render("#tags only, a@b.com").tags == ["tags"]


# --- Code and links are left alone --------------------------------------------------------------------------------


def test_it_leaves_code_spans_alone(alice):
    rendered = render("Run `grep #tag @alice <b>` now")

    assert rendered.html == "<p>Run <code>grep #tag @alice &lt;b&gt;</code> now</p>"
    assert rendered == Rendered(html=rendered.html, tags=[], mentions=[])


def test_it_leaves_code_blocks_alone(alice):
    rendered = render("Before #a\n\n    # not a heading #tag @alice\n    x = 1\n\n```\n#fenced @alice <i>\n```")

    assert rendered.html == (
        f"<p>Before {tag_link('a')}</p>\n<pre><code># not a heading #tag @alice\nx = 1\n</code></pre>\n"
        "<pre><code>#fenced @alice &lt;i&gt;\n</code></pre>"
    )
    assert rendered.tags == ["a"]
    assert rendered.mentions == []


def test_it_leaves_link_text_and_urls_alone(alice):
    rendered = render("[#notatag @alice](https://x.com/#frag) <https://x.com/#a@alice> [me](/tag/x#y)")

    assert rendered.tags == []
    assert rendered.mentions == []
    assert rendered.html == (
        f'<p><a href="https://x.com/#frag" rel="{EXTERNAL_REL}">#notatag @alice</a> '
        f'<a href="https://x.com/#a@alice" rel="{EXTERNAL_REL}">https://x.com/#a@alice</a> '
        '<a href="/tag/x#y">me</a></p>'
    )


def test_it_orders_tags_by_first_appearance_across_nested_blocks(alice, charlie):
    rendered = render("#first @charlie\n\n- #second\n    - #third @alice\n\n> #fourth\n\n#fifth #First")

    assert rendered.tags == ["first", "second", "third", "fourth", "fifth"]
    assert rendered.mentions == ["charlie", "alice"]


# --- Links, raw HTML ----------------------------------------------------------------------------------------------


def test_it_marks_only_external_links_with_rel():
    html = render("[a](https://a.com) [b](HTTP://b.com) [c](//c.com) [d](/d) [e](mailto:e@x.com) #f").html

    assert html == (
        f'<p><a href="https://a.com" rel="{EXTERNAL_REL}">a</a> <a href="HTTP://b.com" rel="{EXTERNAL_REL}">b</a> '
        f'<a href="//c.com" rel="{EXTERNAL_REL}">c</a> <a href="/d">d</a> <a href="mailto:e@x.com">e</a> '
        f"{tag_link('f')}</p>"
    )


def test_it_shows_raw_html_as_text():
    assert render('<b>bold</b> <a href="/x">x</a> & &amp;').html == (
        '<p>&lt;b&gt;bold&lt;/b&gt; &lt;a href="/x"&gt;x&lt;/a&gt; &amp; &amp;</p>'
    )


def test_it_keeps_markdown_formatting_that_is_allowed():
    html = render("**b** *i* `c`\n\n> q\n\n1. one\n2. two\n\n---\n\nline  \nbreak").html

    assert html == (
        "<p><strong>b</strong> <em>i</em> <code>c</code></p>\n<blockquote>\n<p>q</p>\n</blockquote>\n"
        "<ol>\n<li>one</li>\n<li>two</li>\n</ol>\n<hr>\n<p>line<br>\nbreak</p>"
    )


def test_it_renders_empty_text():
    assert render("") == Rendered(html="", tags=[], mentions=[])


# --- XSS corpus ---------------------------------------------------------------------------------------------------

ALLOWED_ATTRIBUTES = {
    "p": set(),
    "br": set(),
    "strong": set(),
    "em": set(),
    "del": set(),
    "code": set(),
    "pre": set(),
    "blockquote": set(),
    "ul": set(),
    "ol": {"start"},
    "li": set(),
    "a": {"href", "title", "class", "rel"},
    "span": {"class"},
    "h3": set(),
    "h4": set(),
    "hr": set(),
}
ALLOWED_CLASSES = {"a": {"tag", "content-user"}, "span": {"hash"}}
SAFE_SCHEMES = {"http", "https", "mailto"}


def url_as_browsers_read_it(url: str) -> str:
    """WHATWG URL parsing: tabs and newlines are removed anywhere, C0 controls and spaces at either end."""
    return re.sub(r"[\t\n\r]", "", url).strip("".join(map(chr, range(0x21)))).lower()


SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
DANGEROUS_IN_MARKUP = re.compile(
    r"<\s*/?\s*(script|iframe|style|svg|math|img|object|embed|form|meta|base|link|input|textarea|button|video|"
    r"audio|source|details|noscript|template|frame|frameset|applet|xml)\b",
    re.IGNORECASE,
)

XSS_PAYLOADS = [
    # Script, plain and disguised.
    "<script>alert(1)</script>",
    "<SCRIPT SRC=http://x.example/x.js></SCRIPT>",
    "<<script>alert(1)//<</script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<script\n>alert(1)</script\n>",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<!--<script>alert(1)</script>-->",
    "<!--><script>alert(1)</script>-->",
    "> <script>alert(1)</script>",
    "- <script>alert(1)</script>",
    "# <script>alert(1)</script>",
    "**<script>alert(1)</script>**",
    # Event handlers.
    "<img src=x onerror=alert(1)>",
    "<img src=x onerror=alert(1)//",
    '<img src="x` `<script>alert(1)</script>"` `>',
    '<a href="http://x.example" onclick="alert(1)">x</a>',
    '<div onmouseover="alert(1)">x</div>',
    "<p onclick=alert(1)>x</p>",
    "<input onfocus=alert(1) autofocus>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<body onload=alert(1)>",
    "<x onclick=alert(1)>click</x>",
    # SVG and MathML.
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math href="javascript:alert(1)">x</math>',
    # Frames, objects, forms, meta, style.
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="data:text/html,<script>alert(1)</script>">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<table><td background="javascript:alert(1)">x</td></table>',
    # Raw links with hostile URLs, plain and entity-encoded.
    '<a href="javascript:alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href=""><img src=x onerror=alert(1)></a>',
    "<a href='x' title='\"><script>alert(1)</script>'>x</a>",
    # Markdown links, images, autolinks and references with hostile URLs.
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x](java\tscript:alert(1))",
    "[x](\x01javascript:alert(1))",
    "[x](java&#9;script:alert(1))",
    "[x](java&#x0A;script:alert(1))",
    "[x](&#0;javascript:alert(1))",
    "[x](&#xFEFF;javascript:alert(1))",
    '[x](http://x.example "<script>alert(1)</script>")',
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;avascript&#x3A;alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](javascript&#58;alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](vbscript&#58;msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](data:text/html,%3Cscript%3Ealert(1)%3C/script%3E)",
    "[x](livescript:alert(1))",
    '[x](http://x.example "t\\" onmouseover=\\"alert(1)")',
    '[x](http://x.example" onmouseover="alert(1))',
    "[<img src=x onerror=alert(1)>](http://x.example)",
    "[x](javascript:alert(1) 'title')",
    "**[x](javascript:alert(1))**",
    "- [x](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](http://x.example/y.png)",
    '![x" onerror="alert(1)](http://x.example/y.png)',
    '![](x" onerror="alert(1))',
    "<javascript:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    '<http://x.example/" onmouseover="alert(1)>',
    '<https://x.example/"><script>alert(1)</script>>',
    "[x][r]\n\n[r]: javascript:alert(1)",
    "[x][r]\n\n[r]: data:text/html,<script>alert(1)</script>",
    '[x][r]\n\n[r]: http://x.example "t" onmouseover="alert(1)"',
    "[r]\n\n[r]: vbscript:msgbox(1)",
    "![x][r]\n\n[r]: javascript:alert(1)",
    # Tags and mentions built from hostile text.
    '#"><script>alert(1)</script>',
    '#tag"onmouseover="alert(1)',
    "#tag'onmouseover='alert(1)",
    "#<img src=x onerror=alert(1)>",
    "#tag<script>alert(1)</script>",
    "#javascript:alert(1)",
    '@alice"><script>alert(1)</script>',
    "@alice' onmouseover='alert(1)",
    "@<script>alert(1)</script>",
    "@alice<img src=x onerror=alert(1)>",
    "[#tag @alice](javascript:alert(1))",
    "`<script>alert(1)</script>`",
    "    <script>alert(1)</script>",
    "```\n</code></pre><script>alert(1)</script>\n```",
]


class _Audit(HTMLParser):
    """Everything in html that is outside the allowlist."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_ATTRIBUTES:
            self.problems.append(f"tag <{tag}>")
            return
        # The tag as written, quoted values blanked: no event handler in it, however the parser reads it.
        markup = re.sub(r'"[^"]*"', '""', self.get_starttag_text() or "")
        if re.search(r"[\s/'\"]on[a-z]+\s*=", markup, re.IGNORECASE):
            self.problems.append(f"event handler in {markup!r}")
        for name, value in attrs:
            if name not in ALLOWED_ATTRIBUTES[tag]:
                self.problems.append(f"attribute {name!r} on <{tag}>")
            elif name == "class" and not set((value or "").split()) <= ALLOWED_CLASSES[tag]:
                self.problems.append(f"class {value!r} on <{tag}>")
            elif name == "rel" and value != EXTERNAL_REL:
                self.problems.append(f"rel {value!r}")
            elif name == "href":
                scheme = SCHEME.match(url_as_browsers_read_it(value or ""))
                if scheme and scheme.group(1) not in SAFE_SCHEMES:
                    self.problems.append(f"href {value!r}")
            for bad in ("javascript:", "vbscript:", "data:", "livescript:"):
                # Anywhere in a URL (a title's value is text, which may mention them).
                if name == "href" and bad in url_as_browsers_read_it(value or ""):
                    self.problems.append(f"{bad} in {name}={value!r}")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag not in ALLOWED_ATTRIBUTES:
            self.problems.append(f"end tag </{tag}>")

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"declaration {data!r}")


def audit(html: str) -> list[str]:
    parser = _Audit()
    parser.feed(html)
    parser.close()
    return parser.problems


def test_it_has_a_big_enough_xss_corpus():
    assert len(XSS_PAYLOADS) >= 40
    assert len(set(XSS_PAYLOADS)) == len(XSS_PAYLOADS)


def test_it_finds_problems_when_there_are_some():
    # The audit itself must not pass everything.
    assert audit('<p onclick="x">a</p>')
    assert audit('<a href="java\tscript:alert(1)">x</a>')
    assert audit('<a href=" \x01java&#10;script:alert(1)">x</a>')
    assert audit('<a title="x" onclick="alert(1)">x</a>')
    assert audit('<a class="evil">x</a>')
    assert audit("<img src=x>")
    assert audit("<!-- x -->")
    assert not audit(f'<p><a class="tag" href="/tag/a"><span class="hash">#</span>a</a> {user_link("alice")}</p>')


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_it_renders_no_live_html_from_hostile_input(payload, alice):
    rendered = render(payload)

    assert audit(rendered.html) == []
    assert DANGEROUS_IN_MARKUP.search(rendered.html) is None
    # Whatever got in is shown as text, or dropped; tags and mentions never carry markup characters.
    assert all(re.fullmatch(r"\w[\w·・\u200c]*", tag) for tag in rendered.tags)
    assert rendered.mentions in ([], ["alice"])


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_it_renders_hostile_input_the_same_inside_other_markdown(payload, alice):
    for text in (f"Intro #x @alice\n\n{payload}\n\nOutro", f"> {payload}", f"* {payload}\n* #y", f"*{payload}*"):
        html = render(text).html
        assert audit(html) == []
        assert DANGEROUS_IN_MARKUP.search(html) is None


def test_it_drops_hostile_link_urls_but_keeps_the_link_text():
    assert render("[click](javascript:alert(1))").html == "<p><a>click</a></p>"
    assert render("[x][r]\n\n[r]: vbscript:msgbox(1)").html == "<p><a>x</a></p>"


def test_it_drops_relative_hrefs_that_look_like_a_scheme():
    # Harmless to a browser (no scheme, so a relative URL) but never legitimate.
    assert render("[x](&#0;javascript:alert(1))").html == "<p><a>x</a></p>"
    # CommonMark ends a link's URL at whitespace, so this is no link at all, only text.
    assert render("[x](java\tscript:alert(1))").html == "<p>[x](java\tscript:alert(1))</p>"
    # A colon after the first segment is fine.
    assert render("[x](/a:b) [y](a/b:c) [z](?q=a:b)").html == (
        '<p><a href="/a:b">x</a> <a href="a/b:c">y</a> <a href="?q=a:b">z</a></p>'
    )


def test_it_shows_typed_tags_as_text():
    assert render("<script>alert(1)</script>").html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert render('#tag"onmouseover="x').html == f'<p>{tag_link("tag")}"onmouseover="x</p>'
