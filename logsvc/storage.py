"""Files every host reads: a Django storage kept in PostgreSQL, the default (STORAGES in settings).

Exports and avatars are written by one host (a worker, a web process) and read by any other, so they cannot live
on a host's disk. By default they live in the database every host already shares: a file is a `StoredFile` row
and its bytes `StoredChunk` rows of CHUNK_BYTES each, written in one transaction (a file is there whole or not
at all) and read a chunk at a time (a download of a 1 GB export holds one chunk in memory, not the file).
Every read and write goes to the primary ("default"): a file is read by its name, which is cheap, and a
replica that has not yet replayed a file would answer a download with 404.

With FILE_STORAGE=s3, django-storages' S3Storage takes its place (see settings and README "Files").
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import Storage
from django.db import transaction
from django.utils.deconstruct import deconstructible
from django.utils.encoding import filepath_to_uri

CHUNK_BYTES = 1 << 20  # 1 MiB: big enough that a chunk's row costs little, small enough to hold one in memory


class ChunkReader(io.RawIOBase):
    """A stored file's bytes, read from its chunks as they are needed; seekable, so FileResponse sends a
    Content-Length."""

    def __init__(self, file_id: int, size: int, using: str) -> None:
        super().__init__()
        self.file_id, self.size, self.using = file_id, size, using
        self.position = 0
        self.chunk_index = -1
        self.chunk = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.size:
            return 0
        index, offset = divmod(self.position, CHUNK_BYTES)
        if index != self.chunk_index:
            self.chunk = self._chunk(index)
            self.chunk_index = index
        data = memoryview(self.chunk)[offset : offset + len(buffer)]
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def _chunk(self, index: int) -> bytes:
        from logsvc.models import StoredChunk

        data = StoredChunk.objects.using(self.using).filter(file_id=self.file_id, index=index).values_list("data")
        row = data.first()
        if row is None:  # deleted while it was read
            raise FileNotFoundError(f"stored file {self.file_id} lost its chunk {index}")
        return bytes(row[0])


def _blocks(content: File) -> Iterator[bytes]:
    """content's bytes in blocks of CHUNK_BYTES (the last one shorter), reading at most a block ahead."""
    pending = bytearray()
    for piece in content.chunks(CHUNK_BYTES):  # from the start: File.chunks() seeks to 0 when it can
        pending += piece
        while len(pending) >= CHUNK_BYTES:
            yield bytes(pending[:CHUNK_BYTES])
            del pending[:CHUNK_BYTES]
    if pending:
        yield bytes(pending)


@deconstructible
class DatabaseStorage(Storage):
    """Files in PostgreSQL (logsvc.models.StoredFile); location names the storage (avatars and exports are two,
    so /media/ can never serve an export), base_url is where its url() points (MEDIA_URL by default)."""

    def __init__(self, location: str = "media", base_url: str | None = None, using: str = "default") -> None:
        self.location = location.strip("/")
        self._base_url = base_url
        self.using = using

    @property
    def base_url(self) -> str:
        url = self._base_url if self._base_url is not None else settings.MEDIA_URL
        return url if url.endswith("/") else f"{url}/"

    def _key(self, name: str) -> str:
        return f"{self.location}/{name}"

    def _files(self) -> Any:
        from logsvc.models import StoredFile

        return StoredFile.objects.using(self.using)

    def _open(self, name: str, mode: str = "rb") -> File:
        if set(mode) - set("rb"):
            raise ValueError("A stored file is written with save(), not opened for writing.")
        row = self._files().filter(name=self._key(name)).values_list("pk", "size").first()
        if row is None:
            raise FileNotFoundError(f"No stored file named {name!r}.")
        reader = io.BufferedReader(ChunkReader(row[0], row[1], self.using), buffer_size=64 * 1024)
        return File(reader, name=name)

    def _save(self, name: str, content: File) -> str:
        from logsvc.models import StoredChunk

        with transaction.atomic(using=self.using):
            stored = self._files().create(name=self._key(name), size=0)
            size = 0
            for index, block in enumerate(_blocks(content)):
                StoredChunk.objects.using(self.using).create(file=stored, index=index, data=block)
                size += len(block)
            self._files().filter(pk=stored.pk).update(size=size)
        return name

    def delete(self, name: str) -> None:
        self._files().filter(name=self._key(name)).delete()  # its chunks go with it (ON DELETE CASCADE, in PostgreSQL)

    def exists(self, name: str) -> bool:
        return self._files().filter(name=self._key(name)).exists()

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        prefix = self._key(path.strip("/") + "/" if path.strip("/") else "")
        directories: set[str] = set()
        files: list[str] = []
        for name in self._files().filter(name__startswith=prefix).values_list("name", flat=True):
            head, _, tail = name[len(prefix) :].partition("/")
            if tail:
                directories.add(head)
            else:
                files.append(head)
        return sorted(directories), sorted(files)

    def size(self, name: str) -> int:
        row = self._files().filter(name=self._key(name)).values_list("size", flat=True).first()
        if row is None:
            raise FileNotFoundError(f"No stored file named {name!r}.")
        return row

    def url(self, name: str | None) -> str:
        return urljoin(self.base_url, filepath_to_uri(name or "").lstrip("/"))

    def get_created_time(self, name: str) -> datetime:
        created = self._files().filter(name=self._key(name)).values_list("created_at", flat=True).first()
        if created is None:
            raise FileNotFoundError(f"No stored file named {name!r}.")
        return created

    get_modified_time = get_created_time

    def path(self, name: str) -> str:
        raise NotImplementedError("A stored file has no path on this host's disk: open() it.")
