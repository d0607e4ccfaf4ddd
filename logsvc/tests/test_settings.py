"""Start-up behaviour that can only be seen from a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from django.core.management import call_command
from django.utils import timezone

from logsvc.models import IdempotencyRecord, RateLimitCounter

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "logsvc.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_refuses_to_start_in_production_without_a_secret_key():
    result = run_python("import django; django.setup()", DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_it_rejects_a_malformed_boolean():
    result = run_python("import django; django.setup()", DEBUG="maybe", DATABASE_URL="postgres://x@127.0.0.1:1/x")
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_it_starts_and_stops_a_private_postgresql(tmp_path):
    code = (
        "from pathlib import Path; import psycopg\n"
        "from logsvc.embedded import embedded_database_url\n"
        f"url = embedded_database_url(Path({str(tmp_path)!r}))\n"
        "print(psycopg.connect(url).execute('select 40 + 2').fetchone()[0])\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"
    assert (tmp_path / "pgdata" / "PG_VERSION").exists()
    # stopped cleanly when the process exited: the postmaster removes its pid file on a clean stop
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


def test_prune_deletes_only_what_expired(alice, capsys):
    old = IdempotencyRecord.objects.create(
        owner=alice, key="old", path="/api/Log", fingerprint="x", status=200, body=b"{}", content_type="a/b"
    )
    IdempotencyRecord.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=2))
    IdempotencyRecord.objects.create(
        owner=alice, key="new", path="/api/Log", fingerprint="x", status=200, body=b"{}", content_type="a/b"
    )
    RateLimitCounter.objects.create(key="k", window_start=1, count=3, expires=timezone.now() - timedelta(minutes=1))
    RateLimitCounter.objects.create(key="k", window_start=2, count=3, expires=timezone.now() + timedelta(minutes=1))

    call_command("prune")

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert list(RateLimitCounter.objects.values_list("window_start", flat=True)) == [2]
    assert "Deleted 1 expired idempotency records and 1 rate-limit windows." in capsys.readouterr().out
