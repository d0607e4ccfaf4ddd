"""Files every host reads: logsvc.storage.DatabaseStorage, the default STORAGES."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.db import connection
from django.http import FileResponse

from logsvc.models import StoredChunk, StoredFile
from logsvc.storage import CHUNK_BYTES, DatabaseStorage

BIG = os.urandom(3 * CHUNK_BYTES + 12345)  # random: no compression hides a lost byte


def test_the_default_storages_are_postgresql(db):
    assert isinstance(default_storage, DatabaseStorage) and default_storage.location == "media"
    assert isinstance(storages["exports"], DatabaseStorage) and storages["exports"].location == "exports"


def test_it_stores_a_file_in_chunks_and_reads_it_back_whole(db):
    name = storages["exports"].save("big.csv.gz", ContentFile(BIG))
    assert name == "big.csv.gz"
    stored = StoredFile.objects.get()
    assert (stored.name, stored.size) == ("exports/big.csv.gz", len(BIG))
    assert [len(data) for data in StoredChunk.objects.order_by("index").values_list("data", flat=True)] == [
        CHUNK_BYTES,
        CHUNK_BYTES,
        CHUNK_BYTES,
        12345,
    ]
    with storages["exports"].open(name) as file:
        assert hashlib.sha256(file.read()).digest() == hashlib.sha256(BIG).digest()
    assert storages["exports"].size(name) == len(BIG)
    assert storages["exports"].listdir("") == ([], ["big.csv.gz"])


def test_a_download_streams_a_chunk_at_a_time_with_its_length(db):
    name = storages["exports"].save("big.csv.gz", ContentFile(BIG))
    response = FileResponse(storages["exports"].open(name), as_attachment=True, filename=name)
    assert response.streaming and response["Content-Length"] == str(len(BIG))
    tracemalloc.start()
    try:
        digest = hashlib.sha256()
        for part in response.streaming_content:
            digest.update(part)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        response.close()
    assert digest.digest() == hashlib.sha256(BIG).digest()
    assert peak < 3 * CHUNK_BYTES  # about a chunk in memory, never the file


def test_a_file_is_there_whole_or_not_at_all(db):
    class Broken(ContentFile):
        def chunks(self, chunk_size=None):
            yield BIG[:CHUNK_BYTES]
            raise OSError("the upload broke off")

    try:
        storages["exports"].save("broken.csv.gz", Broken(b""))
    except OSError:
        pass
    assert not storages["exports"].exists("broken.csv.gz")
    assert not StoredChunk.objects.exists()


def test_avatars_and_exports_are_apart(client, db):
    storages["exports"].save("secret.png", ContentFile(b"an export, not a picture"))
    assert client.get("/media/secret.png").status_code == 404
    assert default_storage.listdir("") == ([], [])


def test_deleting_a_file_deletes_its_chunks(db):
    storages["exports"].save("big.csv.gz", ContentFile(BIG))
    storages["exports"].delete("big.csv.gz")
    assert not storages["exports"].exists("big.csv.gz")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM logsvc_storedchunk")
        assert cursor.fetchone() == (0,)
