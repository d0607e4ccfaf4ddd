"""Every render stays cheap and small for any input up to the body cap.

Cost: the class of CPU denials of service through Markdown (nested brackets, `![`, backticks, emphasis
runs, deep lists and quotes, long lines, entity floods, and random mixes of them), each at
CONTENT_MAX_LENGTH characters. bench/markdown_cost.py times the same shapes against the old Python-Markdown
renderer. Size: no input renders to more than RENDERED_MAX_LENGTH characters of HTML (the amplifiers,
tags, mentions, references to a long URL, are refused with 400 and store nothing)."""

from __future__ import annotations

import random
import time

import pytest

from social.markdown import RENDERED_MAX_LENGTH, RenderedTooLarge, render
from social.models import Comment, Log
from social.serializers import CONTENT_MAX_LENGTH
from social.tests.conftest import post
from social.tests.test_markdown import SEED_MARKDOWN

# Generous: ~0.2 s is the worst seen on a 2-core shared machine; Python-Markdown took 18 s on "[" * 10,000.
RENDER_BOUND_SECONDS = 1.0


def fill(unit: str, length: int = CONTENT_MAX_LENGTH) -> str:
    """unit repeated to exactly length characters."""
    return (unit * (length // len(unit) + 1))[:length]


def nested(open_: str, close: str, inner: str = "x", length: int = CONTENT_MAX_LENGTH) -> str:
    depth = (length - len(inner)) // (len(open_) + len(close))
    return open_ * depth + fill(inner, length - depth * (len(open_) + len(close))) + close * depth


def lines(make, length: int = CONTENT_MAX_LENGTH) -> str:
    out: list[str] = []
    i = 0
    while sum(map(len, out)) < length:
        out.append(make(i))
        i += 1
    return "".join(out)[:length]


# name → text of CONTENT_MAX_LENGTH characters
SHAPES: dict[str, str] = {
    # Links and images: the brackets Python-Markdown scanned to the end from every `[`.
    "[": fill("["),
    "![": fill("!["),
    "[x": fill("[x"),
    "[<": fill("[<"),
    "[](": fill("[]("),
    "[a](": fill("[a]("),
    "](": fill("]("),
    "[a][": fill("[a]["),
    "![[": fill("![["),
    "[![": fill("[!["),
    "[`": fill("[`"),
    "*[": fill("*["),
    "[(": fill("[("),
    "[a](<": fill("[a](<"),
    '[a](/ "': fill('[a](/ "'),
    "nested [[[x]]]": nested("[", "]"),
    "nested [x](": nested("[", "](/)"),
    "nested ![": nested("![", "](/)"),
    "nested (": "[a](" + nested("(", ")")[4:],
    "[a]: refs": lines(lambda i: f"[a{i}]: /u{i}\n[a{i}]\n"),
    "ref to long URL": "[r]: /" + "u" * 1000 + "\n\n" + fill("[r] ", CONTENT_MAX_LENGTH - 1008),
    # Code spans, autolinks, raw HTML (shown as text).
    "`": fill("`"),
    "`a": fill("`a"),
    "``a": fill("``a"),
    "` ``": fill("` ``"),
    "<": fill("<"),
    "<a": fill("<a"),
    "<http://": fill("<http://"),
    "<a@": fill("<a@"),
    "<!--": fill("<!--"),
    # Emphasis runs.
    "*": fill("*"),
    "*a": fill("*a"),
    "**a": fill("**a"),
    "_a": fill("_a"),
    "a_": fill("a_"),
    "*a_": fill("*a_"),
    "_a*": fill("_a* "),
    "***a": fill("***a"),
    "nested *_": nested("*_", "_*"),
    "~": fill("~"),
    # Blocks: deep lists and quotes, headings, fences, tables that are not tables.
    "> ": fill("> "),
    ">": fill(">"),
    "- ": fill("- "),
    "1. ": fill("1. "),
    "- > ": fill("- > "),
    "deep list": lines(lambda i: "  " * i + "- x\n"),
    "deep list 4": lines(lambda i: "    " * (i % 200) + "- x\n"),
    "deep quote": lines(lambda i: "> " * i + "x\n"),
    "list items": fill("- x\n"),
    "# heading": fill("# a\n"),
    "setext": fill("a\n=\n"),
    "```": fill("```\n"),
    "~~~ ": fill("~~~ "),
    "indented code": fill("    x\n"),
    "|": fill("|"),
    "blank lines": fill("\n"),
    "hard breaks": fill("a  \n"),
    "\\": fill("\\"),
    "\\[": fill("\\["),
    # Tags, mentions, entities, long lines.
    "#a ": fill("#a "),
    "#": fill("#"),
    "long #tag": fill("#" + "a" * 99 + " "),
    "one huge #tag": "#" + fill("a", CONTENT_MAX_LENGTH - 1),
    "one huge @name": "@" + fill("a", CONTENT_MAX_LENGTH - 1),
    "#_": fill("#_"),
    "#a·": fill("#a·"),
    "@alice ": fill("@alice "),
    "@": fill("@"),
    "@a.": fill("@a."),
    "&amp;": fill("&amp;"),
    "&#": fill("&#"),
    "&#x": fill("&#x"),
    "&#1234567;": fill("&#1234567;"),
    "&": fill("&"),
    "long line": fill("a"),
    "long word with _": fill("a_"),
    "URLs": fill("http://x.com/a_b#c "),
    "emoji": fill("😀"),
    "CJK": fill("日本語 "),
}

ATOMS = list(
    dict.fromkeys(
        [
            "[",
            "]",
            "(",
            ")",
            "!",
            "<",
            ">",
            "`",
            "*",
            "_",
            "~",
            "#",
            "@",
            "&",
            ";",
            "\\",
            "\n",
            "-",
            ".",
            ":",
            "/",
            "x",
            "é",
        ]
        + [
            " ",
            "\n\n",
            "  ",
            "> ",
            "- ",
            "1. ",
            "    ",
            "```",
            "#a",
            "@alice",
            "&amp;",
            "&#",
            "](",
            "![",
            "http://",
            "[a]: /u\n",
        ]
    )
)


def fuzz_cases(count: int, seed: int = 20261204) -> list[str]:
    """Random mixes of the shapes' atoms, each CONTENT_MAX_LENGTH characters: runs of one atom and mixes."""
    rnd = random.Random(seed)
    cases = []
    for _ in range(count):
        parts: list[str] = []
        while sum(map(len, parts)) < CONTENT_MAX_LENGTH:
            if rnd.random() < 0.5:
                parts.append(rnd.choice(ATOMS) * rnd.randint(1, 2000))
            else:
                parts.append("".join(rnd.choice(ATOMS) for _ in range(rnd.randint(1, 200))))
        cases.append("".join(parts)[:CONTENT_MAX_LENGTH])
    return cases


FUZZ_CASES = fuzz_cases(40)


def timed_render(text: str) -> float:
    """The render's CPU seconds: its own cost, not how busy the machine is (a loaded 2-core CI host made wall
    time of a 0.2 s render cross the bound)."""
    start = time.process_time()
    try:
        render(text)
    except RenderedTooLarge:
        pass  # refused, after the same work
    return time.process_time() - start


def rendered_length(text: str) -> int | None:
    """How long text's HTML is, or None when render() refuses it."""
    try:
        return len(render(text).html)
    except RenderedTooLarge:
        return None


def test_every_shape_is_as_long_as_the_body_cap_allows():
    assert all(len(text) == CONTENT_MAX_LENGTH for text in SHAPES.values()), [
        (name, len(text)) for name, text in SHAPES.items() if len(text) != CONTENT_MAX_LENGTH
    ]


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_pathological_shape_renders_quickly(name, alice):
    assert timed_render(SHAPES[name]) < RENDER_BOUND_SECONDS


@pytest.mark.parametrize("number", range(40))
def test_a_random_mix_renders_quickly(number, alice):
    assert timed_render(FUZZ_CASES[number]) < RENDER_BOUND_SECONDS


def test_render_time_grows_linearly_with_the_input(alice):
    """The largest input costs about ten times a tenth of it (quadratic would be a hundred times)."""
    for unit in ("[", "![", "[x", "`a", "*a", "> ", "&#"):
        small = min(timed_render(fill(unit, CONTENT_MAX_LENGTH // 10)) for _ in range(3))
        large = min(timed_render(fill(unit, CONTENT_MAX_LENGTH)) for _ in range(3))
        assert large < max(30 * small, 0.05), (unit, small, large)


# --- Size ---------------------------------------------------------------------------------------------------------

AMPLIFIERS = ["#a ", "@alice ", "ref to long URL"]
PLAIN = ["long line", "emoji", "CJK", "URLs", "indented code", "blank lines", "list items", "deep list"]


@pytest.mark.parametrize("name", AMPLIFIERS)
def test_the_amplifying_shapes_are_refused(name, alice):
    with pytest.raises(RenderedTooLarge) as refused:
        render(SHAPES[name])
    assert refused.value.length > RENDERED_MAX_LENGTH


def test_no_input_renders_past_the_bound(alice):
    lengths = {name: rendered_length(text) for name, text in [*SHAPES.items(), *enumerate(FUZZ_CASES)]}

    assert all(length is None or length <= RENDERED_MAX_LENGTH for length in lengths.values())
    assert all(lengths[name] is not None for name in PLAIN)


def test_prose_code_and_tags_at_the_body_cap_stay_within_the_bound(alice):
    """What people write, at the most they may write, is never refused: the seed's tag density, code, links."""
    code = '```\nif (a < b && c > d) { return "<div class=\\"x\\">"; }\n```\n\n'
    link = "See [the notes](https://example.org/notes/42) and <https://example.org/a> with @alice.\n\n"
    tags = "- #tagxxxxxxxxxx and a few words about it\n"
    for text in (fill(SEED_MARKDOWN + "\n\n"), fill(code), fill(link), fill(tags)):
        assert rendered_length(text) is not None, text[:80]


@pytest.mark.parametrize("path", ["/api/1/logs/create/", "/api/1/logs/preview/", "comment"])
@pytest.mark.parametrize("name", AMPLIFIERS)
def test_the_api_refuses_what_renders_too_large_and_stores_nothing(path, name, alice, alice_session):
    log = post(alice)
    url = f"/api/1/logs/{log.pk}/comment/" if path == "comment" else path

    r = alice_session.post(url, {"content": SHAPES[name]}, format="json")

    assert r.status_code == 400
    assert list(r.json()) == ["content"]
    assert f"more than the {RENDERED_MAX_LENGTH:,} allowed" in r.json()["content"][0]
    assert Log.objects.count() == 1 and Comment.objects.count() == 0
