"""FILE_STORAGE=s3: exports and avatars in S3-compatible object storage, through django-storages, against a real
S3 server over HTTP (moto's server, started here on a free port)."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages

from analytics.models import Export, Site
from analytics.tests.test_export import (  # noqa: F401 - the worker's fixture
    _worker_keeps_the_test_transaction,
    add_hits,
    download,
    export_now,
    parse_csv,
    run_worker,
    sample_hits,
)
from conftest import client_with_key, make_key
from logsvc.models import StoredFile

BUCKET = "logsvc-test"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.1)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture
def bucket(s3_server, settings):
    client = boto3.client(
        "s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    client.create_bucket(Bucket=BUCKET)
    options = {
        "bucket_name": BUCKET,
        "endpoint_url": s3_server,
        "region_name": "us-east-1",
        "access_key": "test",
        "secret_key": "test",
        "file_overwrite": False,
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**options, "location": "media"}},
        "exports": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**options, "location": "exports"}},
    }
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_an_export_the_worker_writes_goes_to_the_bucket_and_downloads_from_it(bucket, alice):
    site = Site.objects.create(code="alice-blog", owner=alice)
    add_hits(site, sample_hits())
    client = client_with_key(make_key(alice, "export"))
    export_id = export_now(client)["id"]
    run_worker()

    export = Export.objects.get(pk=export_id)
    assert keys(bucket) == [f"exports/{export.file}"]
    assert not StoredFile.objects.exists()  # nothing of it in PostgreSQL
    r, body = download(client, export_id)
    assert r.status_code == 200 and r["Content-Type"] == "application/gzip"
    rows = parse_csv(body)
    assert len(rows) == 1 + len(sample_hits())
    stored = bucket.get_object(Bucket=BUCKET, Key=f"exports/{export.file}")["Body"].read()
    assert gzip.decompress(stored) == gzip.decompress(body)


def test_an_avatar_goes_to_the_bucket_and_its_old_file_goes_when_replaced(
    bucket, alice, django_capture_on_commit_callbacks
):
    from logsvc.tests.test_delete_account import png

    with django_capture_on_commit_callbacks(execute=True):
        alice.avatar.save("me.png", ContentFile(png()))
    first = alice.avatar.name
    assert keys(bucket) == [f"media/{first}"] and default_storage.exists(first)
    with django_capture_on_commit_callbacks(execute=True):  # the old file is deleted once the new one commits
        alice.avatar.save("again.png", ContentFile(png()))
    assert alice.avatar.name != first and keys(bucket) == [f"media/{alice.avatar.name}"]
    assert storages["exports"].listdir("") == ([], [])


def test_file_storage_s3_in_the_environment_gives_s3_storages():
    env = {
        **os.environ,
        "FILE_STORAGE": "s3",
        "S3_BUCKET": "b",
        "S3_ENDPOINT_URL": "http://s3.internal:9000",
        "SECRET_KEY": "t",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",  # only read: never the embedded server's start
    }
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps({k: [v['BACKEND'], v.get('OPTIONS', {}).get('location'), "
        "v.get('OPTIONS', {}).get('endpoint_url')] for k, v in settings.STORAGES.items() if k != 'staticfiles'}))"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "default": ["storages.backends.s3.S3Storage", "media", "http://s3.internal:9000"],
        "exports": ["storages.backends.s3.S3Storage", "exports", "http://s3.internal:9000"],
        "imports": ["storages.backends.s3.S3Storage", "imports", "http://s3.internal:9000"],
    }
    refused = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**env, "S3_BUCKET": ""}, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "FILE_STORAGE=s3 needs S3_BUCKET" in refused.stderr
