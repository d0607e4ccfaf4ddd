"""Background jobs on the durable PostgreSQL queue (`manage.py db_worker`): CSV and JSON exports, and imports.

An export is written by PostgreSQL's COPY ... TO STDOUT in CSV, read in chunks and gzip'd to a temporary file,
so the worker's memory stays flat whatever the number of hits, then saved to the "exports" storage (PostgreSQL by
default, see logsvc.storage), where every web host reads it. While it runs, the worker holds a session-level
advisory lock on the export (its connection is direct, never through a pooler in transaction mode): if the
worker dies, PostgreSQL drops the lock with its connection, and reap_stale_exports() (run when anyone looks at
the export, and by `manage.py prune`) sees a started export nobody holds and runs it again, or marks it failed
after EXPORT_MAX_ATTEMPTS; and an export never started whose job a dead worker took is queued again.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, BinaryIO, cast

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Q
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from analytics.models import BotHit, Export, Hit, Import, ImportedVisits, Path, Salt, VisitorPath
from logsvc import partitions, replica

logger = logging.getLogger(__name__)

# GoatCounter's CSV version 2: the version digit glued to the first column's name.
CSV_HEADER = (
    "2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,"
    "FirstVisit,Date\n"
)
LOCK_NAMESPACE = 0x6578  # "ex": advisory locks (namespace, export id) are exports being written


# A cell a spreadsheet would run as a formula (OWASP's CSV injection advice) starts with = + - @, a tab or a
# carriage return, after any quotes. It gets one more ' in front, so a spreadsheet shows it as text, and an
# importer gets the value back by taking one ' off a cell that starts with ' and matches FORMULA.
FORMULA = r"^'*[=+@\t\r-]"


def _cell(column: str) -> str:
    """column as an export's cell: NULL for '' (PostgreSQL's CSV quotes an empty string, Go's writer and
    GoatCounter's files leave it bare), and a formula made inert."""
    pattern = FORMULA.replace("'", "''")
    return f"CASE WHEN {column} ~ '{pattern}' THEN '''' || {column} ELSE NULLIF({column}, '') END"


def _export_sql() -> str:
    hit, path = Hit._meta.db_table, Path._meta.db_table
    return f"""
        COPY (
            SELECT {_cell("p.path")}, {_cell("p.title")}, CASE WHEN p.event THEN 1 ELSE 0 END, NULL,
                   {_cell("h.browser")}, {_cell("h.system")}, replace(h.visitor::text, '-', ''), 0,
                   {_cell("h.ref")}, NULLIF(h.ref_scheme, ''),
                   CASE WHEN h.size IS NULL THEN NULL ELSE h.size || ',0,1' END, NULLIF(h.location, ''),
                   CASE WHEN h.first_visit THEN 1 ELSE 0 END,
                   to_char(h.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM {hit} h JOIN {path} p ON p.id = h.path_id
            WHERE h.site_id = %s AND h.id > %s AND h.id <= %s AND h.created_at >= %s
            ORDER BY h.id
        ) TO STDOUT WITH (FORMAT csv)
    """


def _export_json_sql() -> str:
    """The same rows as the CSV, one JSON object each (no formula guard: JSON is no spreadsheet)."""
    hit, path = Hit._meta.db_table, Path._meta.db_table
    return f"""
        SELECT json_build_object(
            'path', p.path, 'title', p.title, 'event', p.event, 'user_agent', NULL,
            'browser', h.browser, 'system', h.system, 'session', replace(h.visitor::text, '-', ''), 'bot', 0,
            'ref', h.ref, 'ref_scheme', NULLIF(h.ref_scheme, ''),
            'size', CASE WHEN h.size IS NULL THEN NULL ELSE h.size || ',0,1' END, 'location', NULLIF(h.location, ''),
            'first_visit', h.first_visit,
            'created_at', to_char(h.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        )::text
        FROM {hit} h JOIN {path} p ON p.id = h.path_id
        WHERE h.site_id = %s AND h.id > %s AND h.id <= %s AND h.created_at >= %s
        ORDER BY h.id
    """


def export_name(export: Export) -> str:
    """The export's name in the "exports" storage (and the download's file name)."""
    stamp = export.created_at.strftime("%Y%m%dT%H%M%SZ")
    return f"goatcounter-export-{export.site.code}-{stamp}-{export.pk}.{export.format}.gz"


def last_committed_hit_id(site_id: int | None, start: int) -> int:
    """The highest hit id below which every hit has committed, so `last_hit_id` is a cursor that skips nothing.

    Ids are handed out when a hit is inserted, not when it commits: a hit with a lower id can still be on
    its way. A SHARE lock waits for the inserts in flight (milliseconds) and keeps new ones out while the
    maximum is read; any insert after it gets a higher id.
    """
    table = Hit._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
        if site_id is None:  # all sites' (the rollups)
            cursor.execute(f"SELECT max(id) FROM {table} WHERE id > %s", [start])
        else:
            cursor.execute(f"SELECT max(id) FROM {table} WHERE site_id = %s AND id > %s", [site_id, start])
        return cursor.fetchone()[0] or start


@contextlib.contextmanager
def advisory_lock(namespace: int, key: int) -> Iterator[bool]:
    """Take the session advisory lock (namespace, key) if nobody holds it; yields whether we did, and frees it.

    A session lock outlives transactions and dies with the connection: a worker killed while holding one
    lets the next one in at once.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])


def try_transaction_lock(namespace: int, key: int) -> bool:
    """Take the advisory lock (namespace, key) until the transaction ends, if nobody holds it (a worker's session
    lock included). For the web's side of the locks: a web process may reach PostgreSQL through a pooler in
    transaction mode, where a session lock could be taken on one server connection and "freed" on another,
    and stay held for ever. Call it inside transaction.atomic()."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [namespace, key])
        return cursor.fetchone()[0]


@task()
def run_export(export_id: int) -> None:
    with advisory_lock(LOCK_NAMESPACE, export_id) as held:
        if not held:
            return  # another worker has it
        try:
            # Read under the lock: a worker that finished it a moment ago has released the lock by now.
            export = Export.objects.select_related("site").filter(pk=export_id, finished_at=None).first()
            if export is None:
                return  # finished (or failed) meanwhile, or deleted with its site
            _write_export(export)
        except Exception as error:
            logger.exception("Export %s failed", export_id)
            Export.objects.filter(pk=export_id).update(
                error=f"The export failed ({type(error).__name__}); start a new one.", finished_at=timezone.now()
            )


def _write_export(export: Export) -> None:
    Export.objects.filter(pk=export.pk).update(started_at=timezone.now(), attempts=export.attempts + 1)
    start = export.start_from_hit_id or 0
    last = last_committed_hit_id(export.site_id, start)
    # The hits are read from the replica once it has every hit up to last (committed before now), else the primary.
    reads = replica.alias_with_commits_before(replica.stamp_heartbeat()) if replica.configured() else "default"
    write = _write_json if export.format == "json" else _write_csv
    # This host's temporary file (gone with the process should it die), then the shared storage.
    with tempfile.TemporaryFile(prefix="goatcounter-export-") as partial:
        try:
            rows = write(export, partial, start, last, reads)
        except DatabaseError:
            if reads == "default":
                raise
            logger.warning("Export %s: the replica failed under it, read again from the primary", export.pk)
            partial.seek(0)
            partial.truncate()
            rows = write(export, partial, start, last, "default")
        size = partial.tell()
        digest = hashlib.sha256()
        partial.seek(0)
        while block := partial.read(1 << 20):
            digest.update(block)
        # One transaction with PostgreSQL's storage: the file is there if and only if the export says finished.
        with transaction.atomic():
            name = storages["exports"].save(export_name(export), File(partial))
            Export.objects.filter(pk=export.pk).update(
                file=name,
                last_hit_id=last if last > start else export.start_from_hit_id,
                num_rows=rows,
                size=f"{max(size / 1_000_000, 0.1):.1f}",
                hash=f"sha256-{digest.hexdigest()}",
                finished_at=timezone.now(),
            )


def _write_csv(export: Export, partial: IO[bytes], start: int, last: int, using: str) -> int:
    """COPY the hits to partial, gzip'd; returns how many rows."""
    with gzip.GzipFile(fileobj=partial, mode="wb", compresslevel=6) as out:
        out.write(CSV_HEADER.encode())
        with connections[using].cursor() as cursor:
            with cursor.cursor.copy(_export_sql(), _export_params(export, start, last)) as copy:
                # COPY hands over a row at a time: gzip gets them 64 KiB at a time, which is several times faster
                pending: list = []
                pending_bytes = 0
                for chunk in copy:
                    pending.append(chunk)
                    pending_bytes += len(chunk)
                    if pending_bytes >= 1 << 16:
                        out.write(b"".join(pending))
                        pending.clear()
                        pending_bytes = 0
                out.write(b"".join(pending))
            return cursor.cursor.rowcount


def _export_params(export: Export, start: int, last: int) -> list:
    return [export.site_id, start, last, export.start_from_day or datetime.min.replace(tzinfo=UTC)]


def _write_json(export: Export, partial: IO[bytes], start: int, last: int, using: str) -> int:
    """The hits to partial as a gzip'd JSON array, read from a server-side cursor (flat memory); returns how many."""
    rows = 0
    with (
        gzip.GzipFile(fileobj=partial, mode="wb", compresslevel=6) as out,
        transaction.atomic(using=using),  # a named cursor lives in a transaction
        connections[using].chunked_cursor() as cursor,
    ):
        cursor.execute(_export_json_sql(), _export_params(export, start, last))
        out.write(b"[")
        while batch := cursor.fetchmany(2000):
            out.write(((",\n" if rows else "\n") + ",\n".join(row[0] for row in batch)).encode())
            rows += len(batch)
        out.write(b"\n]\n")
    return rows


def _queued(export_id: int) -> bool:
    """Whether a job for the export waits in the queue (not yet taken by a worker)."""
    return DBTaskResult.objects.filter(
        status=TaskResultStatus.READY, task_path=run_export.module_path, args_kwargs__args=[export_id]
    ).exists()


def reap_stale_exports(site_id: int | None = None) -> int:
    """Exports whose worker died: run them again, or fail them after EXPORT_MAX_ATTEMPTS. Returns how many.

    Also an export not started whose job is no longer queued: a worker took the job and died (or lost the
    database) before it marked the export started; nothing else would ever run it.
    """
    unfinished = Export.objects.filter(finished_at=None)
    if site_id is not None:
        unfinished = unfinished.filter(site_id=site_id)
    reaped = 0
    for export in unfinished:
        with transaction.atomic():
            if not try_transaction_lock(LOCK_NAMESPACE, export.pk):
                continue  # a worker is writing it
            current = Export.objects.select_for_update().get(pk=export.pk)
            if current.finished_at is not None:
                continue
            if current.started_at is None:
                if not _queued(current.pk):
                    run_export.enqueue(current.pk)
                    reaped += 1
                continue
            if current.attempts >= settings.EXPORT_MAX_ATTEMPTS:
                current.error = (
                    f"The export was interrupted {current.attempts} times; start a new one, and if it "
                    "happens again tell the server's operator (the worker may run out of memory or time)."
                )
                current.finished_at = timezone.now()
                current.save(update_fields=["error", "finished_at"])
            else:
                current.started_at = None
                current.save(update_fields=["started_at"])
                run_export.enqueue(current.pk)
            reaped += 1
    return reaped


def delete_expired_exports() -> int:
    """Delete the files of exports past EXPORT_TTL_SECONDS (their rows stay, and answer 410). Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.EXPORT_TTL_SECONDS)
    expired = Export.objects.filter(finished_at__lte=cutoff).exclude(Q(file="") | Q(file__isnull=True))
    deleted = 0
    for export in expired:
        with contextlib.suppress(FileNotFoundError):
            storages["exports"].delete(export.file)
        Export.objects.filter(pk=export.pk).update(file="")
        deleted += 1
    return deleted


def delete_old_visitor_data() -> dict[str, int]:
    """What `manage.py prune` deletes besides export files: bot hits past BOT_HIT_DAYS, and the visitor paths
    (VisitorPath's, and the rows of imports' ImportedVisits) and salts of past days (once a day's salt is gone,
    nobody can recompute that day's visitor hashes)."""
    now = timezone.now()
    cut = now - timedelta(days=settings.BOT_HIT_DAYS)
    # Whole months first (logsvc.partitions), then the rows of the month the cut falls in (and the default's).
    bot_hits = partitions.drop_before(BotHit._meta.db_table, cut)
    bot_hits += BotHit.objects.filter(created_at__lt=cut).delete()[0]
    visitor_paths, _ = VisitorPath.objects.filter(created_at__lt=now - timedelta(days=1)).delete()
    visitor_paths += ImportedVisits.objects.filter(created_at__lt=now - timedelta(days=1)).delete()[0]
    salts, _ = Salt.objects.filter(day__lt=now.date()).delete()
    return {"bot hits": bot_hits, "visitor paths": visitor_paths, "salts": salts}


IMPORT_LOCK_NAMESPACE = 0x696D  # "im": advisory locks (namespace, import id) are imports running


@task()
def run_import(import_id: int) -> None:
    """Import an uploaded GoatCounter export (analytics.importer). Run again after a crash it stores nothing
    twice (each row's key is kept with its hits), so a dead worker's import is simply run again."""
    from analytics import importer  # it imports this module

    with advisory_lock(IMPORT_LOCK_NAMESPACE, import_id) as held:
        if not held:
            return
        upload = Import.objects.select_related("site").filter(pk=import_id, finished_at=None).first()
        if upload is None:
            return
        Import.objects.filter(pk=import_id).update(started_at=timezone.now(), attempts=upload.attempts + 1)
        job = importer.Importer(upload.site, "csv")

        def progress(done: int, lines: int) -> None:
            summary = job.summary
            Import.objects.filter(pk=import_id).update(
                bytes_read=done,
                lines=lines,
                imported=summary.imported,
                duplicates=summary.duplicates,
                excluded=summary.excluded,
                bad=summary.bad,
            )

        error = ""
        try:
            with storages["imports"].open(upload.file, "rb") as stored:
                # the storage's own stream (a File's is typed optional): its tell() is the progress
                job.import_file(cast(BinaryIO, stored.file), progress=progress)
        except importer.ImportError_ as problem:
            error = f"{upload.name}: {problem}"
        except Exception as problem:
            logger.exception("Import %s failed", import_id)
            error = f"The import failed ({type(problem).__name__}); what was read is stored, and importing the file again adds the rest."
        _finish_import(upload, job.summary, error)


def _finish_import(upload: Import, summary, error: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        storages["imports"].delete(upload.file)
    Import.objects.filter(pk=upload.pk).update(
        lines=summary.lines,
        imported=summary.imported,
        duplicates=summary.duplicates,
        excluded=summary.excluded,
        bad=summary.bad,
        errors="\n".join(summary.errors),
        error=error,
        finished_at=timezone.now(),
    )


def reap_stale_imports(site_id: int) -> None:
    """Imports whose worker died (run again: they store nothing twice), or failed after EXPORT_MAX_ATTEMPTS."""
    for upload in Import.objects.filter(site_id=site_id, finished_at=None):
        with transaction.atomic():  # the web's side of the lock (try_transaction_lock)
            if not try_transaction_lock(IMPORT_LOCK_NAMESPACE, upload.pk):
                continue  # running
            queued = DBTaskResult.objects.filter(
                status=TaskResultStatus.READY, task_path=run_import.module_path, args_kwargs__args=[upload.pk]
            ).exists()
            if queued:
                continue
            if upload.attempts >= settings.EXPORT_MAX_ATTEMPTS:
                Import.objects.filter(pk=upload.pk).update(
                    error=f"The import was interrupted {upload.attempts} times; tell the server's operator.",
                    finished_at=timezone.now(),
                )
            else:
                run_import.enqueue(upload.pk)


def prune() -> str:
    """GoatCounter's part of `manage.py prune` (registered in AnalyticsConfig.ready)."""
    files = delete_expired_exports()
    reaped = reap_stale_exports()
    old = delete_old_visitor_data()
    return (
        f"Deleted {files} expired export files, {old['bot hits']} old bot hits, {old['visitor paths']} "
        f"visitor paths and {old['salts']} past days' salts; {reaped} interrupted exports queued again or failed."
    )
