"""Helpers the analytics tests share. The browser fixtures (Debian's Chromium through Playwright) are in the
root conftest.py: one browser for the whole session, whichever app's tests use it."""

from __future__ import annotations


def database_url() -> str:
    """The test database as a URL for a subprocess's DATABASE_URL or psycopg.connect: a server's host and port,
    or the embedded PostgreSQL's socket directory (which settings keep in OPTIONS["host"])."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    user = f"{db['USER']}:{db.get('PASSWORD') or ''}"
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or "127.0.0.1"
    if host.startswith("/"):
        port = f"&port={db['PORT']}" if db.get("PORT") else ""
        return f"postgresql://{user}@/{db['NAME']}?host={host}{port}"
    return f"postgresql://{user}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"
