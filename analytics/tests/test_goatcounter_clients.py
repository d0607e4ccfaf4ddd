"""Real GoatCounter clients from PyPI against a live logsvc (gunicorn and the export worker), with nothing changed
but their base URL: GoatPie (goatpie on PyPI, a terminal dashboard) exports the site's hits as CSV through
/api/v0/export, polls the export, downloads it and reads it into its own SQLite tables; the API client of
goatcounter-mcp-server (an MCP server for GoatCounter) reads the user, the sites, the paths (with GoatCounter's
Go names, `Limit`) and the stats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from goatcounter_mcp_server.server import GoatcounterApiClient
from goatpie import GoatPie

from analytics.models import Path as HitPath
from analytics.models import Site
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits
from analytics.tests.test_export import start_worker
from analytics.tests.test_ratelimit_processes import server_env, start_servers
from conftest import make_key, run_coroutine

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
    roll_up()
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


def test_the_mcp_servers_client_reads_the_user_sites_paths_and_stats(live, alice):
    base_url, key = live
    # the two days of the hits, named: the default end is today, which is another day once midnight has passed
    day, today = str(NOW.date() - timedelta(days=1)), str(NOW.date())
    first_path = HitPath.objects.order_by("id").first().pk

    async def ask() -> dict:
        client = GoatcounterApiClient("alice-blog", key, base_url_template=base_url)
        try:
            return {
                "me": await client.get_me(),
                "sites": await client.list_sites(),
                "paths": await client.list_paths(limit=1),  # sends Limit=1, as GoatCounter's Go name
                "next": await client.list_paths(limit=1, after=first_path),
                "total": await client.get_stats_total(start=day, end=today),
                "hits": await client.get_stats_hits(start=day, end=today, daily=True),
                "browsers": await client.get_stats_browsers(start=day, end=today),
                "systems": await client.get_stats_systems(start=day, end=today),
                "refs": await client.get_stats_refs(start=day, end=today),
            }
        finally:
            await client.close()

    answers = run_coroutine(ask())
    assert answers["me"]["user"]["email"] == "alice@example.org" and answers["me"]["token"]["permissions"] == 126
    assert [site["code"] for site in answers["sites"]["sites"]] == ["alice-blog"]
    assert [p["path"] for p in answers["paths"]["paths"]] == ["/"] and answers["paths"]["more"] is True
    assert [p["path"] for p in answers["next"]["paths"]] == ["/about"]
    assert answers["total"]["total"] == 4 and [day["daily"] for day in answers["total"]["stats"]] == [1, 3]
    assert {hit["path"]: hit["count"] for hit in answers["hits"]["hits"]} == {"/": 3, "/about": 1}
    assert {row["name"]: row["count"] for row in answers["browsers"]["stats"]} == {"Firefox": 3, "Chrome": 1}
    assert answers["systems"]["stats"] and answers["refs"]["more"] is False
