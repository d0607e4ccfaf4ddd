"""The dashboard's import: an owner uploads a GoatCounter export, the real db_worker imports it, the page shows
its progress and result, and the stats API the pageviews."""

from __future__ import annotations

import gzip
from datetime import timedelta
from html import unescape

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from analytics.importer import Importer
from analytics.models import Hit, Import, Site
from analytics.rollups import roll_up
from analytics.tests.test_export import _worker_keeps_the_test_transaction, run_worker  # noqa: F401
from analytics.tests.test_import_hits import FIXTURES, _any_host, client, site, stats  # noqa: F401

URL = "/sites/alice-blog/import/"
EXPORT = (FIXTURES / "export.csv").read_bytes()


@pytest.fixture
def browser(alice) -> Client:
    browser = Client()
    browser.force_login(alice)
    return browser


def upload(browser: Client, content: bytes = EXPORT, name: str = "goatcounter-export.csv.gz"):
    return browser.post(URL, {"file": SimpleUploadedFile(name, gzip.compress(content))})


def page(browser: Client, url: str) -> str:
    r = browser.get(url)
    assert r.status_code == 200
    return unescape(r.content.decode())


def test_an_owner_uploads_an_export_and_the_worker_imports_it(browser, client, site):  # noqa: F811
    assert 'enctype="multipart/form-data"' in page(browser, URL)
    assert 'href="/sites/alice-blog/import/"' in page(browser, "/sites/alice-blog/")
    r = upload(browser)
    job = Import.objects.get()
    assert r.status_code == 302 and r["Location"] == f"{URL}{job.pk}/"
    assert storages["imports"].exists(job.file)  # where a worker on any host reads it
    waiting = page(browser, r["Location"])
    assert "Waiting for the worker" in waiting and 'http-equiv="refresh"' in waiting
    run_worker()
    done = page(browser, r["Location"])
    assert 'data-state="done"' in done and 'http-equiv="refresh"' not in done
    assert '<dd id="import-imported">6</dd>' in done and '<dd id="import-bad">1</dd>' in done
    assert "line 7: date 'yesterday' is not an RFC 3339 time" in done
    job.refresh_from_db()
    assert (job.lines, job.imported, job.duplicates, job.bytes_read, job.percent) == (7, 6, 0, job.size, 100)
    assert not storages["imports"].exists(job.file)  # the upload is deleted once imported
    roll_up()
    assert stats(client)["total"] == (5, 6, 1)
    assert "goatcounter-export.csv.gz" in page(browser, URL)


def test_the_same_export_uploaded_twice_is_stored_once(browser, client, site):  # noqa: F811
    upload(browser)
    run_worker()
    upload(browser)
    run_worker()
    second = Import.objects.order_by("pk").last()
    assert (second.imported, second.duplicates) == (0, 6)
    assert Hit.objects.filter(site=site).count() == 6


def test_a_file_that_is_no_export_fails_with_the_reason(browser, site):  # noqa: F811
    upload(browser, b'1.2.3.4 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 1\n', name="access.log.gz")
    run_worker()
    job = Import.objects.get()
    body = page(browser, f"{URL}{job.pk}/")
    assert 'data-state="failed"' in body
    assert "access.log.gz: not a GoatCounter CSV export of version 2" in body
    assert not Hit.objects.exists()


def test_an_upload_without_a_file_is_explained(browser, site):  # noqa: F811
    r = browser.post(URL, {})
    assert r.status_code == 400 and "Choose a GoatCounter CSV export" in r.content.decode()
    assert not Import.objects.exists()


def test_an_upload_over_the_limit_is_refused(browser, site, settings):  # noqa: F811
    settings.IMPORT_MAX_BYTES = 10
    r = upload(browser)
    assert r.status_code == 400 and "the most this server takes is" in r.content.decode()
    assert not Import.objects.exists() and not DBTaskResult.objects.exists()


def test_an_import_whose_worker_died_is_run_again_and_stores_nothing_twice(browser, site, tmp_path):  # noqa: F811
    half = EXPORT.split(b"\n")[:4]
    part = tmp_path / "part.csv"
    part.write_bytes(b"\n".join(half) + b"\n")
    with open(part, "rb") as source:  # the dead worker got this far
        Importer(site, "csv").import_file(source)
    name = storages["imports"].save("alice-blog-died.upload", ContentFile(EXPORT))
    job = Import.objects.create(
        site=site, name="export.csv", file=name, size=len(EXPORT), started_at=timezone.now(), attempts=1
    )
    assert "Importing… 0%" in page(browser, f"{URL}{job.pk}/")  # looking at it queues it again
    run_worker()
    job.refresh_from_db()
    assert (job.imported, job.duplicates, job.attempts, job.error) == (3, 3, 2, "")
    assert Hit.objects.filter(site=site).count() == 6


def test_an_import_interrupted_too_often_ends_failed(browser, site, tmp_path):  # noqa: F811
    job = Import.objects.create(
        site=site, name="export.csv", file=str(tmp_path / "x"), started_at=timezone.now() - timedelta(hours=1),
        attempts=3,
    )  # fmt: skip
    assert "interrupted 3 times" in page(browser, f"{URL}{job.pk}/")


def test_only_the_owner_may_import(alice, charlie, site):  # noqa: F811
    site.public = True
    site.save()
    outsider = Client()
    outsider.force_login(charlie)
    assert outsider.get(URL).status_code == 404
    assert outsider.post(URL, {"file": SimpleUploadedFile("x.csv", EXPORT)}).status_code == 404
    job = Import.objects.create(site=site, name="export.csv", file="/nonexistent")
    assert outsider.get(f"{URL}{job.pk}/").status_code == 404
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert not Site.objects.filter(imports__file__contains="x.csv").exists()
    theirs = Site.objects.create(code="charlie-blog", owner=charlie)
    owner = Client()
    owner.force_login(alice)
    other = Import.objects.create(site=theirs, name="theirs.csv", file="/nonexistent")
    assert owner.get(f"{URL}{other.pk}/").status_code == 404  # another site's import under alice's site
