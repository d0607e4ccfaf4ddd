"""Start-up behaviour that can only be seen from a fresh process."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from analytics.tests.conftest import database_url
from conftest import subprocess_environ
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


# The documented production environment (README, "Running in production"); SECRET_KEY is added per run.
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "logs.example.com",
    "SITE_URL": "https://logs.example.com",
    "BEHIND_PROXY": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def test_check_deploy_finds_nothing_to_warn_about_in_production_settings(db):
    clean = subprocess_environ("SECURE_", "DEBUG", "BEHIND_PROXY")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        check=False,
        cwd=ROOT,
        env={**clean, **PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(50), "DATABASE_URL": database_url()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def https_settings(**env: str) -> list[str]:
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"
    )
    result = run_python(script, SECRET_KEY="x", DATABASE_URL="postgres://nobody@127.0.0.1:1/none", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_https_defaults_leave_a_local_run_on_plain_http():
    assert https_settings(DEBUG="true") == ["False", "0", "True", "False"]  # make run
    assert https_settings(DEBUG="false") == ["False", "31536000", "True", "False"]  # HSTS only ever on https
    assert https_settings(DEBUG="false", BEHIND_PROXY="true") == ["True", "31536000", "True", "False"]
    assert https_settings(DEBUG="false", BEHIND_PROXY="true", SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0") == [
        "False",
        "0",
        "True",
        "False",
    ]


def test_behind_a_proxy_plain_http_is_redirected_and_https_gets_hsts(settings, db):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    client = Client()  # a new one: SecurityMiddleware reads the settings when it starts

    r = client.get("/api/1/logs/?limit=1", HTTP_X_FORWARDED_PROTO="http")
    assert r.status_code == 301
    assert r["Location"] == "https://testserver/api/1/logs/?limit=1"
    r = client.get("/api/1/logs/?limit=1", HTTP_X_FORWARDED_PROTO="https")
    assert r.status_code == 200
    assert r["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    r = client.get("/healthz", HTTP_X_FORWARDED_PROTO="http")  # a load balancer's check, not redirected
    assert r.status_code == 200
    assert "Strict-Transport-Security" not in r


def test_a_django_log_line_is_printed_once():
    # make run prints what Django logs ("Not Found: /x") to the terminal: once, not twice
    code = "import django, logging; django.setup(); logging.getLogger('django.request').warning('Not Found: /x')"
    result = run_python(code, DEBUG="true", DATABASE_URL="postgres://x@127.0.0.1:1/x")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Not Found: /x") == 1
