"""manage.py import_hits: GoatCounter's CSV export and server logs into a site, read back through the stats API."""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from analytics import sites
from analytics.models import BotHit, Domain, Hit, ImportedKeys, Site
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits
from conftest import client_with_key, make_key

FIXTURES = Path(__file__).parent / "imports"
HOST = "blog.example.com"
RANGE = {"start": "2026-10-09", "end": "2026-10-12"}
FIREFOX_IP = "203.0.113.5"


@pytest.fixture(autouse=True)
def _any_host(settings):
    settings.ALLOWED_HOSTS = ["*"]
    sites.forget_pixel_sites()


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain=HOST)
    return site


@pytest.fixture
def client(alice, site):
    return client_with_key(make_key(alice, "stats"))


def run(*args: str, site: str = "alice-blog") -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_hits", *args, "--site", site, "--silent", stdout=out, stderr=err)
    roll_up()
    return out.getvalue(), err.getvalue()


def counts(client, page: str) -> dict[str, int]:
    r = client.get(f"/api/v0/stats/{page}", RANGE, HTTP_HOST=HOST)
    assert r.status_code == 200, r.content
    return {row["name"]: row["count"] for row in r.json()["stats"]}


def stats(client) -> dict:
    """What a GoatCounter client reads of the site: totals, paths and their days, and the panels."""
    total = client.get("/api/v0/stats/total", RANGE, HTTP_HOST=HOST).json()
    hits = client.get("/api/v0/stats/hits", {**RANGE, "limit": 100}, HTTP_HOST=HOST).json()
    return {
        "total": (total["total"], total["total_pageviews"], total["total_events"]),
        "days": [(day["day"], day["daily"], day["daily_pageviews"]) for day in total["stats"]],
        "paths": {
            hit["path"]: (hit["count"], hit["count_pageviews"], [day["daily"] for day in hit["stats"]])
            for hit in hits["hits"]
        },
        **{
            page: counts(client, page) for page in ("browsers", "systems", "toprefs", "campaigns", "sizes", "locations")
        },
    }


# The same nine lines in each format: three pageviews of two people on the 10th, a stylesheet and a redirect
# (excluded by default), Googlebot, a line that is no log line, and one person twice in a second on the 11th.
LOG_STATS = {
    "total": (4, 5, 0),
    "days": [("2026-10-09", 0, 0), ("2026-10-10", 3, 3), ("2026-10-11", 1, 2), ("2026-10-12", 0, 0)],
    "paths": {"/": (3, 4, [0, 2, 1, 0]), "/about": (1, 1, [0, 1, 0, 0])},
    "browsers": {"Firefox": 2, "Chrome": 2},
    "systems": {"Linux": 2, "Windows": 2},
    "toprefs": {"news.example.com/item": 1, "newsletter": 1},
    "campaigns": {"launch": 1},
    "sizes": {"(unknown)": 4},
    "locations": {"(unknown)": 4},
}
# The common format has no user agents: the browsers are unknown and Googlebot is a person.
COMMON_STATS = {
    **LOG_STATS,
    "total": (5, 6, 0),
    "days": [("2026-10-09", 0, 0), ("2026-10-10", 4, 4), ("2026-10-11", 1, 2), ("2026-10-12", 0, 0)],
    "paths": {"/": (4, 5, [0, 3, 1, 0]), "/about": (1, 1, [0, 1, 0, 0])},
    "browsers": {"(unknown)": 5},
    "systems": {"(unknown)": 5},
    "toprefs": {"newsletter": 1},
    "sizes": {"(unknown)": 5},
    "locations": {"(unknown)": 5},
}


@pytest.mark.parametrize(
    ("fmt", "fixture", "expected", "bots"),
    [
        ("combined", "combined.log", LOG_STATS, 1),
        ("combined-vhost", "combined-vhost.log", LOG_STATS, 1),
        ("common", "common.log", COMMON_STATS, 0),
        ("common-vhost", "common-vhost.log", COMMON_STATS, 0),
        ("caddy", "caddy.json", LOG_STATS, 1),
        ("log:$datetime|$remote_addr|$method|$url|$status|$referrer|$user_agent", "custom.log", LOG_STATS, 1),
    ],
)
def test_it_imports_each_log_format(client, site, fmt, fixture, expected, bots):
    out, err = run(str(FIXTURES / fixture), "--format", fmt)
    assert stats(client) == expected
    assert BotHit.objects.filter(site=site).count() == bots
    assert out == (
        f"Imported into alice-blog: 9 lines: 6 hits imported ({bots} by bots), dated 2026-10-10 11:56 to 2026-10-11 09:00 UTC; "
        f"0 imported before, 2 excluded, 1 bad.\n"
    )
    assert err.startswith(f"{FIXTURES / fixture}: line 7: ")


def test_caddy_logs_give_languages(client, site):
    run(str(FIXTURES / "caddy.json"), "--format", "caddy")
    assert counts(client, "languages") == {"nl": 4}


def test_it_never_stores_an_ip(site):
    run(str(FIXTURES / "combined.log"), "--format", "combined")
    dumped = io.StringIO()
    call_command("dumpdata", "analytics", stdout=dumped)
    assert Hit.objects.filter(site=site).count() == 5
    assert FIREFOX_IP not in dumped.getvalue() and "198.51.100.7" not in dumped.getvalue()


def test_importing_the_same_log_twice_stores_nothing_twice(client, site, tmp_path):
    log = tmp_path / "access.log"
    lines = (FIXTURES / "combined.log").read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:4]))
    run(str(log), "--format", "combined")
    log.write_text("".join(lines))  # the log has grown since
    out, _ = run(str(log), "--format", "combined")
    assert "3 hits imported (1 by bots)" in out and "3 imported before" in out
    out, _ = run(str(log), "--format", "combined")
    assert "0 hits imported" in out and "6 imported before" in out
    assert stats(client) == LOG_STATS
    assert Hit.objects.filter(site=site).count() == 5 and BotHit.objects.filter(site=site).count() == 1


def test_excludes_replace_the_default(client, site):
    out, _ = run(str(FIXTURES / "combined.log"), "--format", "combined", "--exclude", "path:glob:/{about,old}*")
    assert "2 excluded" in out  # /about and /old; the stylesheet is a page now
    assert set(stats(client)["paths"]) == {"/", "/style.css"}


def test_excludes_match_fields_and_negate(client, site):
    out, _ = run(
        str(FIXTURES / "combined.log"), "--format", "combined", "--exclude", "static",
        "--exclude", r"!status:re:^2\d\d$", "--exclude", "user_agent:Firefox",
    )  # fmt: skip
    assert "4 excluded" in out
    assert stats(client)["paths"] == {"/": (2, 3, [0, 1, 1, 0])}


def test_an_empty_exclude_excludes_nothing(client, site):
    out, _ = run(str(FIXTURES / "combined.log"), "--format", "combined", "--exclude", "")
    assert "0 excluded" in out
    assert set(stats(client)["paths"]) == {"/", "/about", "/style.css", "/old"}


def test_the_sites_ignored_ips_are_excluded(client, site):
    site.ignore_ips = [FIREFOX_IP]
    site.save()
    out, _ = run(str(FIXTURES / "combined.log"), "--format", "combined")
    assert "4 excluded" in out
    assert stats(client)["browsers"] == {"Chrome": 2}


def test_it_imports_a_goatcounter_export(client, site):
    out, err = run(str(FIXTURES / "export.csv"))
    assert out == (
        "Imported into alice-blog: 7 lines: 6 hits imported (0 by bots), dated 2026-10-10 13:55 to 2026-10-11 09:00 UTC; "
        "0 imported before, 0 excluded, 1 bad.\n"
    )
    assert err == f"{FIXTURES / 'export.csv'}: line 7: date 'yesterday' is not an RFC 3339 time\n"
    assert stats(client) == {
        "total": (5, 6, 1),  # the event's visitor and pageview are in the totals too
        "days": [("2026-10-09", 0, 0), ("2026-10-10", 4, 5), ("2026-10-11", 1, 1), ("2026-10-12", 0, 0)],
        "paths": {"/": (3, 4, [0, 2, 1, 0]), "/about": (1, 1, [0, 1, 0, 0]), "signup": (1, 1, [0, 1, 0, 0])},
        "browsers": {"Firefox": 2, "Chrome": 2, "Safari": 1},
        "systems": {"Linux": 2, "Windows": 2, "iOS": 1},
        "toprefs": {"news.example.com/item": 1, "newsletter": 1, "Google": 1},
        "campaigns": {},
        "sizes": {"Computer monitors": 2, "Phones": 2, "(unknown)": 1},
        "locations": {"NL": 2, "US": 2, "(unknown)": 1},
    }
    signup = Hit.objects.select_related("path").get(site=site, path__event=True)
    assert (signup.path.path, signup.path.title) == ("signup", "=Sign up")  # the export's formula guard is undone


def test_a_gzipped_export_from_stdin_imports_once(client, site, tmp_path, monkeypatch):
    packed = gzip.compress((FIXTURES / "export.csv").read_bytes())
    for _ in range(2):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(packed)))
        out, _ = run("-")
    assert "0 hits imported" in out and "6 imported before" in out
    assert stats(client)["total"] == (5, 6, 1)
    assert sorted(len(row.keys) // 8 for row in ImportedKeys.objects.filter(site=site)) == [1, 2, 3]  # a row an hour


def import_a_cut_short_export_then_the_whole(site: Site, tmp_path: Path) -> None:
    """A gzip'd export cut in the middle: what was read is stored and the error says so; the whole file then adds
    the rest, and nothing twice (also test_import_process)."""
    rows = [
        f"/page-{n},Page {n},0,,Firefox 133,Linux,,0,,,,,1,2026-10-10T10:{n // 60:02}:{n % 60:02}Z\n"
        for n in range(3000)
    ]
    whole = gzip.compress(((FIXTURES / "export.csv").read_text().splitlines(keepends=True)[0] + "".join(rows)).encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CommandError, match=r"cut.csv.gz: the file is cut short or damaged after line \d+"):
        run(str(cut))
    stored = Hit.objects.filter(site=site).count()
    assert 0 < stored < 3000  # what it read is stored
    cut.write_bytes(whole)  # downloaded again, whole
    out, _ = run(str(cut))
    assert f"{3000 - stored} hits imported" in out and f"{stored} imported before" in out
    assert Hit.objects.filter(site=site).count() == 3000


def test_a_cut_short_gzip_stores_what_it_had_and_says_so(client, site, tmp_path):
    import_a_cut_short_export_then_the_whole(site, tmp_path)


def test_only_the_first_bad_lines_are_named_each_cut_short(site, tmp_path):
    log = tmp_path / "noise.log"
    log.write_text("".join(f"{n} {'x' * 5000}\n" for n in range(150)))
    out, err = run(str(log), "--format", "combined")
    assert "150 lines: 0 hits imported (0 by bots); 0 imported before, 0 excluded, 150 bad" in out
    named = err.splitlines()
    assert len(named) == 101 and named[-1] == f"{log}: ... and 50 more bad lines"
    assert named[0].startswith(f"{log}: line 1: does not match the format") and len(named[0]) < 300 + len(str(log)) + 2


def test_an_export_of_another_version_is_refused(site, tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("1Path,Title,Event,Bot,Session,FirstVisit,Referrer,Referrer scheme,Browser,Screen size,Date\n")
    with pytest.raises(CommandError, match="not a GoatCounter CSV export of version 2.*version 1"):
        run(str(old))
    assert not Hit.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "apache"], "unknown format 'apache'"),
        (["--format", "log:$remote_addr $nonsense $path"], r"unknown format specifier \$nonsense"),
        (["--format", "combined", "--exclude", "colour:red"], "use field:pattern"),
        (["--exclude", "static"], "--exclude is for server logs"),
        (["--follow"], "--follow reads a server log from a file, not a CSV export"),
    ],
)
def test_bad_options_are_explained(site, args, message):
    with pytest.raises(CommandError, match=message):
        run(str(FIXTURES / "combined.log"), *args)


def test_an_unknown_site_or_file_is_explained(site, tmp_path):
    with pytest.raises(CommandError, match="No site 'nope'"):
        run(str(FIXTURES / "combined.log"), site="nope")
    with pytest.raises(CommandError, match="Cannot read .*missing.log: No such file"):
        run(str(tmp_path / "missing.log"), "--format", "combined")
    with pytest.raises(CommandError, match="Cannot read .*missing.log: it is not there"):
        run(str(tmp_path / "missing.log"), "--format", "combined", "--follow")


def test_an_export_imported_into_an_empty_site_gives_the_same_stats(alice, client, site, tmp_path, settings):
    """The round trip: a site's hits exported by the real export code, imported into a new site."""
    from django.core.files.storage import storages

    from analytics.models import Export
    from analytics.tasks import run_export

    with transaction.atomic():
        record_hits(site, variety())
    roll_up()
    before = stats(client)
    export = Export.objects.create(site=site)
    run_export.call(export.pk)
    copy = Site.objects.create(code="alice-copy", owner=alice)
    Domain.objects.create(site=copy, domain="copy.example.com")
    export.refresh_from_db()
    downloaded = tmp_path / export.file  # the file as its owner downloads it
    with storages["exports"].open(export.file) as stored:
        downloaded.write_bytes(stored.read())
    out, err = run(str(downloaded), site="alice-copy")
    assert "8 hits imported" in out and err == ""
    site.domains.update(domain="old.example.com")
    Domain.objects.filter(site=copy).update(domain=HOST)
    sites.forget_pixel_sites()
    assert stats(client) == before


def variety() -> list[CleanHit]:
    import uuid
    from datetime import UTC, datetime, timedelta

    one, two = uuid.uuid4(), uuid.uuid4()
    day = datetime(2026, 10, 10, 12, tzinfo=UTC)
    return [
        CleanHit(path="/", title="Home", visitor=one, browser="Firefox 133", system="Linux", size=1920,
                 location="NL", ref="news.example.com/item", ref_scheme="h", created_at=day),
        CleanHit(path="/", title="Home", visitor=one, browser="Firefox 133", system="Linux", size=1920,
                 location="NL", created_at=day + timedelta(minutes=1)),
        CleanHit(path="/a,b", title='Commas, "quotes"', visitor=two, browser="Chrome 131", system="Windows 11",
                 size=390, location="US-CA", ref="Google", ref_scheme="g", created_at=day),
        CleanHit(path="/=formula", title="-1", visitor=two, ref="@someone", ref_scheme="o", created_at=day),
        CleanHit(path="click", event=True, title="Click", visitor=two, created_at=day + timedelta(hours=3)),
        CleanHit(path="/", title="Home", visitor=None, created_at=day + timedelta(days=1)),
        CleanHit(path="/", title="Home", visitor=None, created_at=day + timedelta(days=1)),
        CleanHit(path="/", title="Home", visitor=two, ref="newsletter", ref_scheme="c", created_at=day - timedelta(days=1)),
    ]  # fmt: skip


def test_a_copy_of_a_fixture_is_the_same_file(site, tmp_path):
    """The dedupe key is the line, not the file's name or place."""
    copy = tmp_path / "renamed.log"
    shutil.copy(FIXTURES / "combined.log", copy)
    run(str(FIXTURES / "combined.log"), "--format", "combined")
    out, _ = run(str(copy), "--format", "combined")
    assert "0 hits imported" in out
