"""The hot reads' SQL is prepared on the server once per connection (logsvc.db.prepared_cursor), unless the
operator turns that off for a pooler that cannot carry prepared statements."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings
from django.db import connection

from social.tests.conftest import post, token_client


def prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_timeline_read_again_and_again_is_planned_once(alice, bob):
    for n in range(3):
        post(bob, f"Day {n} of #gardening with @alice")
    client = token_client(alice)
    answers = [client.get("/api/1/timelines/public/").json() for _ in range(8)]
    assert answers[0] == answers[-1]
    assert [log["id"] for log in answers[-1]["results"]] == sorted(
        (log["id"] for log in answers[-1]["results"]), reverse=True
    )
    assert answers[-1]["results"][0]["tags"] == ["gardening"]
    assert answers[-1]["results"][0]["mentions"] == ["alice"]
    statements = prepared()
    # the page's logs, their tags and users (one statement), and the access token: each prepared, once
    for table in ("FROM social_log l", "FROM social_tag", "oauth2_provider_accesstoken"):
        assert sum(table in sql for sql in statements) == 1, (table, statements)


def test_without_prepared_statements_the_same_pages_prepare_nothing(alice, bob):
    post(bob, "Planted #tomatoes")
    connection.connection.prepare_threshold = None  # what DATABASE_PREPARED_STATEMENTS=false sets at connect
    try:
        client = token_client(alice)
        answers = [client.get("/api/1/timelines/public/").json() for _ in range(8)]
    finally:
        connection.connection.prepare_threshold = 5
    assert answers[-1]["results"][0]["tags"] == ["tomatoes"]
    assert prepared() == []


def test_the_setting_reaches_the_connection():
    """DATABASE_PREPARED_STATEMENTS=false is psycopg's prepare_threshold=None; the default is 5 runs."""
    code = "from django.conf import settings; print(settings.DATABASES['default'].get('OPTIONS', {}))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "logsvc.settings", "SECRET_KEY": "t"}
    if not os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/none"  # only read, never connected to
    off = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**env, "DATABASE_PREPARED_STATEMENTS": "false"},
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    )
    assert "'prepare_threshold': None" in off.stdout
    assert settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"] == 5
