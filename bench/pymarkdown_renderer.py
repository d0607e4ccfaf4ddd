"""The renderer social/markdown.py had before markdown-it-py (Python-Markdown), kept for bench/markdown_cost.py to compare.

It is quadratic in nested `[` (18 s for 10,000 of them): never use it to serve requests.


Python-Markdown renders first, with raw HTML switched off (typed `<b>` shows as text) and an inline
processor that links `#tag` and `@username`; nh3 then sanitises the result against a small allowlist.
Inline processors never run inside code spans or code blocks, and are kept out of existing links, so
those are left alone; bare URLs (`http://x.com/#anchor`) are never linkified, and `/#` is no tag start.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from dataclasses import dataclass
from urllib.parse import quote

import markdown
import nh3
from django.contrib.auth import get_user_model
from django.db.models.functions import Lower
from markdown.blockprocessors import HashHeaderProcessor
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.treeprocessors import Treeprocessor

TAG_NAME_MAX_LENGTH = 100  # Tag.name's max_length: longer "#words" stay plain text
USERNAME_MAX_LENGTH = 150  # AbstractUser.username's max_length

# Mastodon's Tag::HASHTAG_RE, simplified: not after a word char, `=`, `/`, `)` or `&` (`&#x61;`,
# `example.com/#anchor`); Unicode word chars plus the separators · ・ ZWNJ inside the name (never at its
# ends); at least one letter, checked in the handler so `#1` stays text.
_TAG_SEPARATORS = "\u00b7\u30fb\u200c"
TAG_RE = rf"(?<![\w=/)&])#(\w(?:[\w{_TAG_SEPARATORS}]*\w)?)"
_LETTER = re.compile(r"[^\W\d_]")

# Not after a word char, `@` or `/` (emails, `medium.com/@belle`); ASCII word chars, with `.` and `-`
# allowed inside (Django usernames may hold them) but stripped from the end (`@belle.` at a sentence's end).
_MENTION = re.compile(r"(?<![\w@/])@([A-Za-z0-9_][A-Za-z0-9_.-]*)", re.ASCII)
MENTION_RE = _MENTION.pattern

EXTERNAL_REL = "nofollow ugc noopener noreferrer"
_SAFE_ABSOLUTE_URL = re.compile(r"(?:https?|mailto):", re.IGNORECASE)


def _drop_colon_relative_hrefs(element: str, attribute: str, value: str) -> str | None:
    """nh3 passes relative URLs through, so also drop any "relative" href whose first segment has a colon
    (RFC 3986 forbids it): `U+FFFD javascript:…` or `java    script:…` resolve harmlessly, but nothing
    legitimate looks like that either."""
    if attribute != "href":
        return value
    url = re.sub(r"[\t\n\r]", "", value).strip("".join(map(chr, range(0x21))))
    if _SAFE_ABSOLUTE_URL.match(url) or ":" not in re.split(r"[/?#]", url, maxsplit=1)[0]:
        return value
    return None


ALLOWED_TAGS = {"p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span"}
ALLOWED_TAGS |= {"h3", "h4", "hr"}

CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    # rel is only ever set by _Collector, on external links; the seed's own /tag/x and /username links have none.
    tag_attribute_values={"a": {"rel": {EXTERNAL_REL}}},
    allowed_classes={"a": {"tag", "content-user"}, "span": {"hash"}},
    url_schemes={"http", "https", "mailto"},
    link_rel=None,
    url_relative="pass_through",  # the seed links /tag/x and /username
    attribute_filter=_drop_colon_relative_hrefs,
    strip_comments=True,
)


@dataclass(frozen=True)
class Rendered:
    html: str  # sanitised HTML
    tags: list[str]  # tag names as written (case kept), first-seen order, unique case-insensitively
    mentions: list[str]  # usernames of existing users (as stored), first-seen order, unique


def render(text: str) -> Rendered:
    """text (Markdown) as sanitised HTML, with the tags and existing users it names.

    Runs at most one query: the usernames that could be mentioned, looked up case-insensitively."""
    state = _State(users=_existing_users(_mention_candidates(text)))
    md = markdown.Markdown(extensions=[_LittlelogsExtension(state), "sane_lists", "fenced_code"], output_format="html")
    html = CLEANER.clean(md.convert(text))
    return Rendered(html=html, tags=state.tags, mentions=state.mentions)


class _State:
    """One render's inputs and findings."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users  # lower-cased username → stored username
        self.linked: dict[int, tuple[etree.Element, str, str]] = {}  # id(<a>) → (<a>, "tag"|"mention", name)
        self.tags: list[str] = []
        self.mentions: list[str] = []


def _mention_match_name(m: re.Match[str], data: str) -> str | None:
    """The username an `@name` match names, or None when it isn't a mention (`@belle@host`, too long)."""
    name = m.group(1).rstrip(".-")
    end = m.start(1) + len(name)
    if end < len(data) and data[end] == "@":
        return None
    return name if len(name) <= USERNAME_MAX_LENGTH else None


def _mention_candidates(text: str) -> set[str]:
    """Every lower-cased name that might be a mention: a superset (code spans and links included)."""
    return {name.lower() for m in _MENTION.finditer(text) if (name := _mention_match_name(m, text))}


def _existing_users(candidates: set[str]) -> dict[str, str]:
    if not candidates:
        return {}
    users: dict[str, str] = {}
    # usernames are unique case-sensitively: should "Belle" and "belle" both exist, the oldest wins.
    rows = (
        get_user_model()
        .objects.annotate(username_lower=Lower("username"))
        .filter(username_lower__in=candidates)
        .order_by("-pk")
        .values_list("username_lower", "username")
    )
    for lower, username in rows:
        users[lower] = username
    return users


class _TagProcessor(InlineProcessor):
    ANCESTOR_EXCLUDES = ("a",)

    def __init__(self, state: _State, md: markdown.Markdown) -> None:
        super().__init__(TAG_RE, md)
        self.state = state

    def handleMatch(self, m: re.Match[str], data: str):
        name = m.group(1)
        if not _LETTER.search(name) or len(name) > TAG_NAME_MAX_LENGTH:
            return None, None, None
        link = etree.Element("a", {"class": "tag", "href": "/tag/" + quote(name, safe="")})
        span = etree.SubElement(link, "span", {"class": "hash"})
        span.text = "#"
        span.tail = markdown.util.AtomicString(name)
        self.state.linked[id(link)] = (link, "tag", name)
        return link, m.start(0), m.end(0)


class _MentionProcessor(InlineProcessor):
    ANCESTOR_EXCLUDES = ("a",)

    def __init__(self, state: _State, md: markdown.Markdown) -> None:
        super().__init__(MENTION_RE, md)
        self.compiled_re = _MENTION  # ASCII-only \w, like the pre-scan
        self.state = state

    def handleMatch(self, m: re.Match[str], data: str):
        name = _mention_match_name(m, data)
        if not name or (username := self.state.users.get(name.lower())) is None:
            return None, None, None
        link = etree.Element("a", {"class": "content-user", "href": "/" + quote(username, safe="")})
        link.text = markdown.util.AtomicString("@" + username)
        self.state.linked[id(link)] = (link, "mention", username)
        return link, m.start(0), m.start(1) + len(name)


class _SpacedHashHeaderProcessor(HashHeaderProcessor):
    """`# Heading` needs the space (as in CommonMark), so a paragraph starting `#admin` stays a paragraph."""

    RE = re.compile(r"(?:^|\n)(?P<level>#{1,6})(?=[ \t]|\n|$)(?P<header>(?:\\.|[^\\#]|#+(?=[^#\n]))*?)#*(?:\n|$)")


class _HeadingDemoter(Treeprocessor):
    """Headings inside a log are h3 (for # and ##) or h4 (the rest): the page around it owns h1 and h2."""

    LEVELS = {"h1": "h3", "h2": "h3", "h3": "h4", "h5": "h4", "h6": "h4"}

    def run(self, root: etree.Element) -> None:
        for el in root.iter():
            el.tag = self.LEVELS.get(el.tag, el.tag)


class _Collector(Treeprocessor):
    """Records tags and mentions in document order (the inline pass visits nested blocks out of order)
    and marks external links rel="nofollow ugc …"."""

    def __init__(self, state: _State, md: markdown.Markdown) -> None:
        super().__init__(md)
        self.state = state

    def run(self, root: etree.Element) -> None:
        seen_tags: set[str] = set()
        for el in root.iter("a"):
            found = self.state.linked.get(id(el))
            if found is not None and found[0] is el:
                _, kind, name = found
                if kind == "tag" and name.lower() not in seen_tags:
                    seen_tags.add(name.lower())
                    self.state.tags.append(name)
                elif kind == "mention" and name not in self.state.mentions:
                    self.state.mentions.append(name)
                continue
            href = (el.get("href") or "").strip().lower()
            if href.startswith(("http://", "https://", "//")):
                el.set("rel", EXTERNAL_REL)


class _LittlelogsExtension(Extension):
    def __init__(self, state: _State) -> None:
        super().__init__()
        self.state = state

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # Raw HTML is text: `<script>` renders as `&lt;script&gt;` (nh3 would drop it anyway).
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.parser.blockprocessors.register(_SpacedHashHeaderProcessor(md.parser), "hashheader", 70)
        # After `entity` (80: `&#x61;` is stashed first), before emphasis (60: `#snake_case_name` stays whole).
        md.inlinePatterns.register(_TagProcessor(self.state, md), "littlelogs_tag", 76)
        md.inlinePatterns.register(_MentionProcessor(self.state, md), "littlelogs_mention", 75)
        md.treeprocessors.register(_HeadingDemoter(md), "littlelogs_headings", 15)
        md.treeprocessors.register(_Collector(self.state, md), "littlelogs_collect", 5)
