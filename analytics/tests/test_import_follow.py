"""manage.py import_hits --follow: a real process following a log that a real writer appends to and rotates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from analytics.models import BotHit, Hit
from analytics.rollups import roll_up
from analytics.tests.conftest import database_url
from analytics.tests.test_import_hits import FIXTURES, LOG_STATS, _any_host, client, site, stats  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # the importer is another process: it sees committed rows

LINES = (FIXTURES / "combined.log").read_text().splitlines(keepends=True)


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start_follower(log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url(), "SECRET_KEY": "test-only-secret", "REDIS_URL": ""}
    return subprocess.Popen(
        [sys.executable, "manage.py", "import_hits", "--site", "alice-blog", "--format", "combined", "--follow",
         "--poll", "0.05", str(log)],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def stored() -> int:
    return Hit.objects.count() + BotHit.objects.count()


def test_it_follows_a_log_as_it_is_written_and_rotated(client, site, tmp_path):  # noqa: F811
    log = tmp_path / "access.log"
    writer = open(log, "a", buffering=1)  # noqa: SIM115 - a web server keeps its log open
    writer.write(LINES[0])  # there before the importer starts: imported too
    follower = start_follower(log)
    try:
        wait_for(lambda: stored() == 1)
        for line in LINES[1:4]:  # the stylesheet (excluded), /about, Chrome's /
            writer.write(line)
            time.sleep(0.02)
        wait_for(lambda: stored() == 3)
        writer.write(LINES[4][:30])  # half a line: not read until it is whole
        time.sleep(0.3)
        writer.write(LINES[4][30:])  # the redirect, excluded
        os.rename(log, tmp_path / "access.log.1")  # logrotate moves the log ...
        writer.write(LINES[5])  # ... the server writes on to the old file until it reopens (Googlebot) ...
        writer.close()
        writer = open(log, "a", buffering=1)  # noqa: SIM115 - ... then to a new file at the same path
        for line in LINES[6:]:  # the bad line, and the 11th's two
            writer.write(line)
        wait_for(lambda: stored() == 6)
        time.sleep(0.3)  # and no more
        assert stored() == 6
    finally:
        writer.close()
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert out == "Imported into alice-blog: 9 lines: 6 hits imported (1 by bots), dated 2026-10-10 11:56 to " \
        "2026-10-11 09:00 UTC; 0 imported before, 2 excluded, 1 bad.\n"  # fmt: skip
    assert f"{log}: line 1: does not match the format" in err  # the new file's first line
    roll_up()
    assert stats(client) == LOG_STATS


def test_a_truncated_log_is_read_from_its_start(site, tmp_path):  # noqa: F811
    log = tmp_path / "access.log"
    log.write_text("".join(LINES[:4]))
    follower = start_follower(log)
    try:
        wait_for(lambda: stored() == 3)
        with open(log, "r+") as truncate:  # logrotate's copytruncate
            truncate.truncate(0)
        time.sleep(0.3)
        with open(log, "a") as writer:
            writer.write(LINES[7])
        wait_for(lambda: stored() == 4)
    finally:
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "4 hits imported" in out
