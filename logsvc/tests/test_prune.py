"""manage.py prune: logsvc's own cleanup, then whatever the installed apps registered (logsvc.cleanup)."""

from __future__ import annotations

import ast
import io
from pathlib import Path

from django.core.management import call_command

from logsvc import cleanup

APPS = {"analytics", "events", "social"}


def test_it_runs_what_each_app_registered(db, monkeypatch):
    monkeypatch.setattr(cleanup, "CLEANUPS", {"first": lambda: "Deleted 3 old things.", "second": lambda: "Kept all."})
    out = io.StringIO()
    call_command("prune", stdout=out)
    assert out.getvalue().splitlines() == [
        "Deleted 0 expired idempotency records and 0 rate-limit windows.",
        "Deleted 3 old things.",
        "Kept all.",
        "Retention deleted 0 events, 0 finished tasks, 0 hits and 0 log messages.",
        "0 interrupted deletions queued again.",
    ]


def test_the_installed_apps_register_their_cleanup(db):
    assert set(cleanup.CLEANUPS) == {"analytics"}


def test_the_command_imports_no_app():
    source = Path(__file__).parents[1] / "management" / "commands" / "prune.py"
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not imported & APPS
