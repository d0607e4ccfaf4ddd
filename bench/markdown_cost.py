#!/usr/bin/env python
"""littlelogs Markdown: render time per pathological shape, old renderer (Python-Markdown) against the new one
(markdown-it-py), in the same run. Not a test: test_markdown_cost.py guards the new renderer with a 1 s bound.

Each shape is CONTENT_MAX_LENGTH (10,000) characters, the most a log or comment may hold; then a fuzz run
of random mixes. Prints a table (ms, best of --rounds for the new renderer, one round for the old, which
takes seconds on some shapes) with old/new, the HTML it renders to (or "refused" past RENDERED_MAX_LENGTH),
and the worst case of each. No database: mentions resolve
against a fixed set of users, as if `alice` existed.

    .venv/bin/python bench/markdown_cost.py              # all shapes, old and new (about two minutes)
    .venv/bin/python bench/markdown_cost.py --new-only   # new renderer only, plus a bigger fuzz run
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# `python bench/markdown_cost.py` puts bench/ first on the path: the project's root goes there instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsvc.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the new renderer per shape (best kept)")
    parser.add_argument("--fuzz", type=int, default=100, help="random mixes to try")
    parser.add_argument("--new-only", action="store_true", help="skip the old renderer")
    args = parser.parse_args()

    import django

    django.setup()

    import bench.pymarkdown_renderer as old_module
    import social.markdown as new_module
    from social.serializers import CONTENT_MAX_LENGTH
    from social.tests.test_markdown_cost import SHAPES, fuzz_cases

    users = {"alice": "alice"}
    module: Any  # patched: each renderer's user lookup
    for module in (old_module, new_module):
        module._existing_users = lambda candidates: {k: v for k, v in users.items() if k in candidates}

    def best(render, text: str, rounds: int) -> float:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            try:
                render(text)
            except new_module.RenderedTooLarge:
                pass  # refused after the same work: the time counts
            times.append(time.perf_counter() - start)
        return min(times) * 1000

    print(f"{CONTENT_MAX_LENGTH:,} characters per shape; ms; new = best of {args.rounds}")
    print(f"{'shape':<20} {'old ms':>10} {'new ms':>9} {'old/new':>9} {'html chars':>11}")
    worst_old = worst_new = ("", 0.0)
    for name, text in SHAPES.items():
        new_ms = best(new_module.render, text, args.rounds)
        old_error = ""
        try:
            old_ms = None if args.new_only else best(old_module.render, text, 1)
        except RecursionError:  # "1. " * 3333: the old renderer's 500
            old_ms, old_error = None, "recursion"
        try:
            size = f"{len(new_module.render(text).html):11,}"
        except new_module.RenderedTooLarge as refused:
            size = f"{f'{refused.length:,} refused':>11}"
        ratio = f"{old_ms / new_ms:9.1f}" if old_ms is not None else f"{'-':>9}"
        old_col = f"{old_ms:10.1f}" if old_ms is not None else f"{old_error or '-':>10}"
        print(f"{name:<20} {old_col} {new_ms:9.1f} {ratio} {size}", flush=True)
        worst_new = max(worst_new, (name, new_ms), key=lambda x: x[1])
        if old_ms is not None:
            worst_old = max(worst_old, (name, old_ms), key=lambda x: x[1])

    fuzz_worst = (0, 0.0)
    for number, text in enumerate(fuzz_cases(args.fuzz, seed=1)):
        fuzz_worst = max(fuzz_worst, (number, best(new_module.render, text, 1)), key=lambda x: x[1])
    print()
    if not args.new_only:
        print(f"worst shape, old renderer: {worst_old[0]!r} {worst_old[1]:,.1f} ms")
    print(f"worst shape, new renderer: {worst_new[0]!r} {worst_new[1]:,.1f} ms")
    print(f"worst of {args.fuzz} random mixes, new renderer: #{fuzz_worst[0]} {fuzz_worst[1]:,.1f} ms")


if __name__ == "__main__":
    main()
