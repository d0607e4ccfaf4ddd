"""manage.py import_hits reads and parses a file in a forked process while the command's own process stores
(Importer(reader_process=True)): what it stores and says is what the importer in one process stores and says."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from analytics.importer import BATCH, Importer
from analytics.models import BotHit, Hit, ImportedKeys, Site
from analytics.tests.test_import_hits import (  # noqa: F401
    FIXTURES,
    LOG_STATS,
    _any_host,
    client,
    import_a_cut_short_export_then_the_whole,
    run,
    site,
    stats,
)
from analytics.tests.test_import_keys import DAY, line

pytestmark = pytest.mark.django_db(transaction=True)  # the command's own process stores: no test transaction


@pytest.fixture
def forks(monkeypatch) -> list[int]:
    """How many imports went through a reader process (each such import appends one)."""
    calls: list[int] = []
    original = Importer._import_from_reader

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Importer, "_import_from_reader", counted)
    return calls


def hits(target: Site) -> tuple[int, list[tuple]]:
    """The site's hits as its stats see them (the visitor's hash has the site's id in it: how many each has)."""
    rows = Hit.objects.filter(site=target).values_list(
        "path__path", "created_at", "first_visit", "ref", "ref_scheme", "campaign", "browser", "system"
    )
    visitors = Hit.objects.filter(site=target).values("visitor").distinct().count()
    return visitors, sorted(rows)


def test_a_log_read_in_its_own_process_gives_the_stats_and_summary_of_one_process(client, site, forks):  # noqa: F811
    out, err = run(str(FIXTURES / "combined.log"), "--format", "combined")
    assert forks == [1]
    assert stats(client) == LOG_STATS
    assert BotHit.objects.filter(site=site).count() == 1
    assert out == (
        "Imported into alice-blog: 9 lines: 6 hits imported (1 by bots), dated 2026-10-10 11:56 to 2026-10-11 09:00 "
        "UTC; 0 imported before, 2 excluded, 1 bad.\n"
    )
    assert err.startswith(f"{FIXTURES / 'combined.log'}: line 7: ")


def test_many_batches_store_what_one_process_stores(site, alice, tmp_path, forks):  # noqa: F811
    lines = 3 * BATCH + 17
    text = "".join(
        line(DAY + timedelta(seconds=n * 13), f"/p{n % 40}?utm_campaign=c{n % 3}", ip=f"198.51.100.{n % 90}")
        for n in range(lines)
    )
    log = tmp_path / "access.log"
    log.write_text(text + "not a line of a log\n")
    out, err = run(str(log), "--format", "combined")
    assert forks == [1]
    assert f"{lines + 1} lines: {lines} hits imported (0 by bots)" in out and "1 bad" in out
    assert err.startswith(f"{log}: line {lines + 1}: does not match the format")
    alone = Site.objects.create(code="alice-alone", owner=alice)
    summary = Importer(alone, "combined").import_file(io.BytesIO(text.encode()))  # one process, a writer thread
    assert summary.imported == lines
    assert hits(site) == hits(alone) and len(hits(site)[1]) == lines
    again, _ = run(str(log), "--format", "combined")  # its keys were stored with its hits
    assert "0 hits imported (0 by bots), dated" in again and f"{lines} imported before" in again
    assert ImportedKeys.objects.filter(site=site).exists()


def test_a_cut_short_gzip_read_in_its_own_process_stores_what_it_had(client, site, tmp_path, forks):  # noqa: F811
    import_a_cut_short_export_then_the_whole(site, tmp_path)
    assert len(forks) == 2
