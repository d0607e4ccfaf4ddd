"""Markdown → sanitised HTML for logs and comments, linking #tags and @mentions (research notes §4).

markdown-it-py renders first (CommonMark, linear in the input by design: no backtracking over brackets,
backticks or emphasis runs), with raw HTML switched off (typed `<b>` shows as text) and two inline rules
that link `#tag` and `@username`; nh3 then sanitises the result against a small allowlist. Inline rules
never run inside code spans, code blocks or autolinks, and are kept out of link text, so those are left
alone; bare URLs (`http://x.com/#anchor`) are never linkified, and `/#` is no tag start.

A few rules differ from plain CommonMark so the seed's HTML comes out exactly as littlelogs (a
Python-Markdown site) wrote it: a list needs a blank line before it (it never interrupts a paragraph),
a paragraph keeps its trailing spaces (`properly. </p>`), and every link is kept for nh3 to judge (a
hostile URL loses its href and keeps its text). Headings are demoted to h3/h4.

Cost: the input is capped (CONTENT_MAX_LENGTH in serializers) and so is the output (RENDERED_MAX_LENGTH):
`#a ` renders to ~70 characters, so 10,000 characters of tags would otherwise render to 227 KB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

import nh3
from django.contrib.auth import get_user_model
from django.db.models.functions import Lower
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block.list import list_block
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

TAG_NAME_MAX_LENGTH = 100  # Tag.name's max_length: longer "#words" stay plain text
USERNAME_MAX_LENGTH = 150  # AbstractUser.username's max_length
# The most HTML one log or comment may render to, in characters: three times the most Markdown it may
# hold (serializers.CONTENT_MAX_LENGTH). 10,000 characters of prose with links, code or a list of tags
# stay well under it; `#a ` * 3333 (227 KB), `@alice ` * 1428 (70 KB) or one long reference URL used
# 2,000 times (2.3 MB) do not, and render() refuses them (the API answers 400).
RENDERED_MAX_LENGTH = 30_000

# Mastodon's Tag::HASHTAG_RE, simplified: not after a word char, `=`, `/`, `)` or `&` (`&#x61;`,
# `example.com/#anchor`); Unicode word chars plus the separators · ・ ZWNJ inside the name (never at its
# ends); at least one letter, checked in the rule so `#1` stays text.
_TAG_SEPARATORS = "\u00b7\u30fb\u200c"
TAG_RE = rf"(?<![\w=/)&])#(\w(?:[\w{_TAG_SEPARATORS}]*\w)?)"
_TAG = re.compile(TAG_RE)
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
    # rel is only ever set by _collect, on external links; the seed's own /tag/x and /username links have none.
    tag_attribute_values={"a": {"rel": {EXTERNAL_REL}}},
    allowed_classes={"a": {"tag", "content-user"}, "span": {"hash"}},
    url_schemes={"http", "https", "mailto"},
    link_rel=None,
    url_relative="pass_through",  # the seed links /tag/x and /username
    attribute_filter=_drop_colon_relative_hrefs,
    strip_comments=True,
)


# C0 and C1 controls but tab, newline and carriage return: not text (HTML calls them parse errors), and
# six bytes each in JSON (\u0001). They become U+FFFD, as CommonMark does with NUL.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Rendered:
    html: str  # sanitised HTML
    tags: list[str]  # tag names as written (case kept), first-seen order, unique case-insensitively
    mentions: list[str]  # usernames of existing users (as stored), first-seen order, unique


class RenderedTooLarge(ValueError):
    """The Markdown renders to more than RENDERED_MAX_LENGTH characters of HTML."""

    def __init__(self, length: int) -> None:
        self.length = length
        super().__init__(
            f"This renders to {length:,} characters of HTML, more than the {RENDERED_MAX_LENGTH:,} allowed: "
            "use fewer links, tags, mentions or markup characters."
        )


@dataclass
class _Env:
    """One render's inputs (the users that exist) and findings, passed to the rules as markdown-it's env."""

    users: dict[str, str]  # lower-cased username → stored username
    tags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    list_depth: int = 0  # how many lists the block parser is inside


def render(text: str, unlinked: frozenset[str] = frozenset()) -> Rendered:
    """text (Markdown) as sanitised HTML, with the tags and existing users it names; an `@name` whose lower-cased
    name is in unlinked stays plain text (an account being deleted).

    Runs at most one query: the usernames that could be mentioned, looked up case-insensitively.
    Linear in len(text): bench/markdown_cost.py measures it, test_markdown_cost.py guards it.
    Raises RenderedTooLarge past RENDERED_MAX_LENGTH characters of HTML."""
    text = _CONTROL.sub("\ufffd", text)
    env = _Env(users=_existing_users(_mention_candidates(text) - unlinked))
    html = CLEANER.clean(_MD.render(text, {"littlelogs": env})).rstrip("\n")
    if len(html) > RENDERED_MAX_LENGTH:
        raise RenderedTooLarge(len(html))
    return Rendered(html=html, tags=env.tags, mentions=env.mentions)


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


# --- markdown-it rules ----------------------------------------------------------------------------


def _tag(state: StateInline, silent: bool) -> bool:
    """`#name` → a tag link, outside link text; the name is read with one anchored regex match."""
    src, pos = state.src, state.pos
    if src[pos] != "#" or state.linkLevel > 0:
        return False
    m = _TAG.match(src, pos, state.posMax)  # the lookbehind sees the character before pos
    if m is None or not _LETTER.search(m.group(1)) or len(m.group(1)) > TAG_NAME_MAX_LENGTH:
        return False
    if not silent:
        token = state.push("littlelogs_tag", "a", 0)
        token.meta = {"name": m.group(1)}
    state.pos = m.end(0)
    return True


def _mention(state: StateInline, silent: bool) -> bool:
    """`@name` of an existing user → a link to them, outside link text."""
    src, pos = state.src, state.pos
    if src[pos] != "@" or state.linkLevel > 0:
        return False
    m = _MENTION.match(src, pos, state.posMax)
    if m is None:
        return False
    name = m.group(1).rstrip(".-")
    end = m.start(1) + len(name)
    if (end < state.posMax and src[end] == "@") or len(name) > USERNAME_MAX_LENGTH:
        return False  # `@belle@host`, or too long: as _mention_match_name
    username = state.env["littlelogs"].users.get(name.lower())
    if username is None:
        return False
    if not silent:
        token = state.push("littlelogs_mention", "a", 0)
        token.meta = {"name": username}
    state.pos = end
    return True


def _render_tag(self, tokens: list[Token], idx: int, options, env) -> str:
    name = tokens[idx].meta["name"]
    href = "/tag/" + quote(name, safe="")
    return f'<a class="tag" href="{_escape(href)}"><span class="hash">#</span>{_escape(name)}</a>'


def _render_mention(self, tokens: list[Token], idx: int, options, env) -> str:
    name = tokens[idx].meta["name"]
    return f'<a class="content-user" href="/{_escape(quote(name, safe=""))}">@{_escape(name)}</a>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_HEADINGS = {"h1": "h3", "h2": "h3", "h3": "h4", "h5": "h4", "h6": "h4"}


def _collect(state: StateCore) -> None:
    """Records tags and mentions in document order (never from an image's alt text, which nh3 drops with
    the image), demotes headings to h3/h4 (the page around a log owns h1 and h2) and marks external links
    rel="nofollow ugc …"."""
    env: _Env = state.env["littlelogs"]
    seen_tags = {tag.lower() for tag in env.tags}
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = _HEADINGS.get(token.tag, token.tag)
        for child in token.children or ():
            if child.type == "littlelogs_tag":
                name = child.meta["name"]
                if name.lower() not in seen_tags:
                    seen_tags.add(name.lower())
                    env.tags.append(name)
            elif child.type == "littlelogs_mention":
                if child.meta["name"] not in env.mentions:
                    env.mentions.append(child.meta["name"])
            elif child.type == "link_open":
                href = str(child.attrGet("href") or "").strip().lower()
                if href.startswith(("http://", "https://", "//")):
                    child.attrSet("rel", EXTERNAL_REL)


def _list(state: StateBlock, startLine: int, endLine: int, silent: bool) -> bool:
    """markdown-it's list rule, but outside a list a list needs a blank line before it: it never interrupts
    a paragraph ("Notes to self:\n- a\n- b" stays one paragraph, as in the seed). Inside a list item, the
    next item, or a list nested in it, still does."""
    env: _Env = state.env["littlelogs"]
    if silent and state.parentType == "paragraph" and not env.list_depth:
        return False
    if silent:
        return list_block(state, startLine, endLine, silent)
    env.list_depth += 1
    try:
        return list_block(state, startLine, endLine, silent)
    finally:
        env.list_depth -= 1


def _paragraph(state: StateBlock, startLine: int, endLine: int, silent: bool) -> bool:
    """markdown-it's paragraph rule, but the text keeps its trailing spaces, as the seed's HTML does."""
    nextLine = startLine + 1
    terminatorRules = state.md.block.ruler.getRules("paragraph")
    endLine = state.lineMax
    oldParentType = state.parentType
    state.parentType = "paragraph"
    while nextLine < endLine:
        if state.isEmpty(nextLine):
            break
        if state.sCount[nextLine] - state.blkIndent > 3 or state.sCount[nextLine] < 0:
            nextLine += 1
            continue
        if any(rule(state, nextLine, endLine, True) for rule in terminatorRules):
            break
        nextLine += 1
    content = state.getLines(startLine, nextLine, state.blkIndent, False).lstrip()
    state.line = nextLine
    token = state.push("paragraph_open", "p", 1)
    token.map = [startLine, state.line]
    token = state.push("inline", "", 0)
    token.content = content
    token.map = [startLine, state.line]
    token.children = []
    state.push("paragraph_close", "p", -1)
    state.parentType = oldParentType
    return True


_INVALID_REFERENCE = re.compile(r"&#(?:[0-9]{1,7}|[xX][0-9a-fA-F]{1,6});")  # the valid ones are decoded already


def _markdown_it() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    # Every link is kept, whatever its URL: nh3 and _drop_colon_relative_hrefs drop a hostile href and
    # keep the text, as before (markdown-it would otherwise show `[x](javascript:…)` as typed).
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    # A numeric character reference to an invalid code point (`&#0;`) is U+FFFD (CommonMark §2.5), which
    # markdown-it applies in text but leaves as typed in a link's URL.
    normalize_link = md.normalizeLink
    md.normalizeLink = lambda url: normalize_link(_INVALID_REFERENCE.sub("\ufffd", url))  # type: ignore[method-assign]
    # A list needs a blank line before it: "Notes to self:\n- a\n- b" stays one paragraph (the seed).
    md.block.ruler.at("list", _list, {"alt": ["paragraph", "reference", "blockquote"]})
    md.block.ruler.at("paragraph", _paragraph)
    # Before `emphasis` and `entity`: `#snake_case_name` stays whole; an entity's `&#` is no tag (lookbehind).
    md.inline.ruler.before("emphasis", "littlelogs_tag", _tag)
    md.inline.ruler.before("emphasis", "littlelogs_mention", _mention)
    md.core.ruler.after("inline", "littlelogs_collect", _collect)
    md.add_render_rule("littlelogs_tag", _render_tag)
    md.add_render_rule("littlelogs_mention", _render_mention)
    return md


_MD = _markdown_it()
