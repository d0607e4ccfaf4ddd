"""The named log formats are read by a quicker pattern first (analytics.importer.FAST_FIELDS): every line must come
out as GoatCounter's lazy pattern reads it, the same format given as log:<format>, which has no quicker pattern."""

from __future__ import annotations

import random

import pytest

from analytics.importer import CLF_TIME, LOG_FORMATS, BadLine, log_parser

# Values that look right, and characters that trip a pattern: spaces, quotes and brackets inside a field
VALID = {
    "host": ["blog.example.com", "blog.example.com:8080"],
    "remote_addr": ["203.0.113.5", "2001:db8::1"],
    "ignore": ["- -", "- alice", "-"],
    "datetime": ["10/Oct/2026:13:55:36 +0000", "10/Oct/2026:13:55:36 -0700"],
    "method": ["GET", "POST"],
    "path": ["/", "/blog/post-1?utm_source=x", "/a b", '/q"uote', "/x]"],
    "http": ["HTTP/1.1", "HTTP/2.0"],
    "status": ["200", "301", "404"],
    "size": ["512", "-"],
    "referrer": ["-", "https://www.google.com/", 'https://example.org/?q="x"', '" "'],
    "user_agent": [
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        'Mozilla "quoted" 1.0',
        "-",
    ],
}
# Pieces of other fields, put inside a field: a pattern that ends a field at the wrong place reads another line
TRICKY = [" ", '"', "[", "]", "-", "/", "a", "1", " [", '] "', '" "', " HTTP/1.1", '" 200 512 "', "/x HTTP/1.0"]


def reading(parse, line: str) -> dict | str:
    try:
        return parse(line)
    except BadLine as error:
        return f"BadLine: {error}"


@pytest.mark.parametrize("fmt", sorted(LOG_FORMATS))
def test_a_named_format_reads_every_line_as_its_lazy_pattern_does(fmt):
    named = log_parser(fmt)
    lazy = log_parser("log:" + LOG_FORMATS[fmt], CLF_TIME)  # a custom format: the lazy pattern only
    rng = random.Random(fmt)
    template = LOG_FORMATS[fmt]
    read = bad = quoted_agents = 0
    for _ in range(20_000):
        line = template
        for name in sorted(VALID, key=len, reverse=True):  # $remote_addr before $host...
            if rng.random() < 0.85:
                value = rng.choice(VALID[name])
            else:
                value = "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 4)))
            line = line.replace(f"${name}", value)
        expected = reading(lazy, line)
        assert reading(named, line) == expected, line
        if isinstance(expected, dict):
            read += 1
            quoted_agents += '"' in expected.get("user_agent", "")
        else:
            bad += 1
    # Both kinds of lines were tried, and lines only the lazy pattern can read (a quote in a user agent)
    assert read > 2_000 and bad > 2_000
    if "user_agent" in template:
        assert quoted_agents > 100
