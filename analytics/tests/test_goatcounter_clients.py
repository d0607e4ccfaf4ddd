"""Real GoatCounter clients from PyPI against a live logsvc (gunicorn and the export worker), with nothing changed
but their base URL: GoatPie (goatpie on PyPI, a terminal dashboard) exports the site's hits as CSV through
/api/v0/export, polls the export, downloads it and reads it into its own SQLite tables."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from goatpie import GoatPie

from analytics.models import Site
from analytics.services import CleanHit, record_hits
from analytics.tests.test_export import start_worker
from analytics.tests.test_ratelimit_processes import server_env, start_servers
from conftest import make_key

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def live(request, transactional_db, tmp_path, alice):
    """logsvc served by gunicorn, with a worker for the exports, and alice's site with hits in it."""
    site = Site.objects.create(code="alice-blog", owner=alice)
    visitor = uuid.uuid4()
    hits = [
        CleanHit(path="/", title="Home", browser="Firefox 133", system="Linux", visitor=visitor, created_at=NOW),
        CleanHit(path="/", title="Home", browser="Chrome 131", system="Windows 10", visitor=uuid.uuid4()),
        CleanHit(path="/about", title="About", browser="Firefox 133", system="Linux", visitor=visitor),
        CleanHit(path="/", title="Home", browser="Firefox 133", system="macOS", created_at=NOW - timedelta(days=1)),
    ]
    with transaction.atomic():
        record_hits(site, hits)
    # GoatPie sleeps until the limit's reset when fewer than 2 requests are left: GoatCounter's -ratelimit
    # export:N/3600 and ours are settings of the server, as here.
    env = server_env(EXPORT_DIR=str(tmp_path / "exports"), RATE_LIMIT_GOATCOUNTER_EXPORT="100/3600")
    base_url = start_servers(request, 1, env)[0]
    worker = start_worker(env)
    request.addfinalizer(lambda: (worker.terminate(), worker.wait()))
    return base_url, make_key(alice)


def test_goatpie_exports_the_hits_and_shows_them(live, tmp_path):
    base_url, key = live
    data_dir = tmp_path / "goatpie"
    log = data_dir / "debug.log"
    pie = GoatPie(base_url, key, data_dir=str(data_dir))  # a first run skips its update ("just now")...
    before = log.read_text() if log.exists() else ""
    pie.update(0)  # ... and `goatpie --update` forces it: export, poll, download, load into SQLite
    errors = (log.read_text() if log.exists() else "")[len(before) :]
    assert "Something went wrong" not in errors, errors  # it logs any exception and goes on, so look
    pages = pie.get_pages()
    assert list(zip(pages["Page"], pages["Total"], strict=True)) == [("/", 3), ("/about", 1)]
    browsers = dict(zip(pie.get_browsers()["Browser"], pie.get_browsers()["Total"], strict=True))
    assert browsers == {"Firefox 133": 3, "Chrome 131": 1}
    days = dict(zip(pie.get_pageviews()["Day"], pie.get_pageviews()["Pageviews"], strict=True))
    assert days[str(NOW.date() - timedelta(days=1))] == 1 and sum(days.values()) == 4
    assert (data_dir / ".next_idx").read_text().isdigit()  # the last_hit_id cursor it will start from next time
