"""Deleting an account, a site, or a site's hits before a day: started by a request, done by the worker.

A request (the account and site pages, DELETE /api/1/users/$self/, DELETE /api/v0/sites/<id>, the admin) calls
request_deletion(): in its own transaction it writes a Deletion row (unique per account or site, so a second request
finds the first one's and starts nothing), runs what must stop at once (the account can't sign in and its keys and
tokens fail; the site stops counting) and queues run_deletion() on the worker. The worker deletes in batches of
DELETION_BATCH rows, each in a transaction of its own, so no lock is held for long and no other tenant waits; the
Deletion row goes last, and with it the last trace of the id.

Each app registers its part in its AppConfig.ready() (as logsvc.cleanup), so logsvc imports none of them: a step is
a generator that deletes one batch per iteration, in a transaction of its own, and yields how many rows went.
logsvc's own part of an account (keys, tokens, sessions, sign-in attempts, idempotency records, rate-limit windows,
the user row and its avatar) runs after every app's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.db.models import F, Q
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework import serializers

from logsvc.models import ApiKey, Deletion, IdempotencyRecord, RateLimitCounter, User

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x646C  # "dl": advisory locks (namespace, deletion id) are deletions being run

Step = Callable[[Deletion], Iterator[int]]
STEPS: dict[str, list[tuple[str, Step]]] = {kind: [] for kind in Deletion.Kind.values}
# Run in the requesting transaction, when a deletion starts: what must stop at once (a site's counting).
STARTS: dict[str, list[Callable[[Deletion], None]]] = {kind: [] for kind in Deletion.Kind.values}


def register(kind: str, name: str, step: Step, *, start: Callable[[Deletion], None] | None = None) -> None:
    """Add an app's part of deleting a `kind` (steps run in the order registered, apps in INSTALLED_APPS order)."""
    STEPS[kind] = [(n, s) for n, s in STEPS[kind] if n != name] + [(name, step)]
    if start is not None:
        STARTS[kind].append(start)


def batch_size() -> int:
    return settings.DELETION_BATCH


def delete_in_batches(table: str, where: str, params: list[Any]) -> Iterator[int]:
    """Delete the rows of table matching where, DELETION_BATCH at a time, each batch committed on its own.

    Rows are picked by ctid (where should be served by an index), so this works for any table, keyed or not.
    """
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {where} LIMIT %s))",
                [*params, batch_size()],
            )
            deleted = cursor.rowcount
        if not deleted:
            return
        yield deleted


def request_deletion(
    *, kind: str, target: int, before: date | None = None, requested_by: str = "user"
) -> tuple[Deletion, bool]:
    """Start deleting target (or find the deletion of it under way); returns the Deletion and whether this call
    started it. A deletion under way that no worker runs any more (its worker died, its job failed) is queued
    again; one queued or running is left alone, so a second request never makes a second job."""
    with transaction.atomic():
        deletion, created = Deletion.objects.get_or_create(
            kind=kind, target=target, defaults={"before": before, "requested_by": requested_by}
        )
        if created:
            if kind == Deletion.Kind.ACCOUNT:
                _lock_out(target)
            for start in STARTS[kind]:
                start(deletion)
            _enqueue(deletion)
    if not created:
        resume_if_stalled(deletion)
    return deletion, created


def _enqueue(deletion: Deletion) -> None:
    # In the caller's transaction: the job and the row commit together (django_tasks_db's queue is a table).
    result = run_deletion.enqueue(deletion.pk)
    Deletion.objects.filter(pk=deletion.pk).update(task_id=str(result.id))
    deletion.task_id = str(result.id)


def _lock_out(user_id: int) -> None:
    """The account can't sign in, its sessions and keys stop working, its OAuth tokens are gone: at once."""
    from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

    User.objects.filter(pk=user_id).update(is_active=False)  # ModelBackend refuses it, sessions included
    ApiKey.objects.filter(user_id=user_id, revoked=None).update(revoked=timezone.now())
    get_refresh_token_model().objects.filter(user_id=user_id).delete()
    get_access_token_model().objects.filter(user_id=user_id).delete()
    get_grant_model().objects.filter(user_id=user_id).delete()


def _running(deletion: Deletion) -> bool:
    """Whether a worker holds the deletion's lock, or its job waits in the queue."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objid = %s AND objsubid = 2)",
            [LOCK_NAMESPACE, deletion.pk],
        )
        if cursor.fetchone()[0]:
            return True
    if not deletion.task_id:
        return False
    return DBTaskResult.objects.filter(id=deletion.task_id, status=TaskResultStatus.READY).exists()


def resume_if_stalled(deletion: Deletion) -> bool:
    """Queue the deletion again if nothing runs it (a worker died, its job failed); whether it did."""
    with transaction.atomic():
        current = Deletion.objects.select_for_update().filter(pk=deletion.pk).first()
        if current is None or _running(current):
            return False
        _enqueue(current)
        deletion.task_id = current.task_id
        return True


def resume_stalled() -> str:
    """logsvc's part of `manage.py prune`: deletions nothing runs any more are queued again."""
    resumed = sum(resume_if_stalled(deletion) for deletion in Deletion.objects.all())
    return f"{resumed} interrupted deletions queued again."


@task()
def run_deletion(deletion_id: int) -> int:
    """Run a deletion to its end; returns how many rows it deleted (in this run)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, deletion_id])
        if not cursor.fetchone()[0]:
            return 0  # another worker has it
    try:
        deletion = Deletion.objects.filter(pk=deletion_id).first()
        if deletion is None:
            return 0  # done meanwhile
        Deletion.objects.filter(pk=deletion_id).update(started=timezone.now(), error="")
        deleted = 0
        for name, step in _steps(deletion):
            try:
                for rows in step(deletion):
                    deleted += rows
                    Deletion.objects.filter(pk=deletion_id).update(deleted=F("deleted") + rows)
            except Exception as error:
                logger.exception("Deleting %s failed in its step %r", deletion, name)
                message = f"{name}: {type(error).__name__}: {error}"[:2000]
                Deletion.objects.filter(pk=deletion_id).update(error=message)
                raise  # the job fails; the next request, or manage.py prune, queues it again
        Deletion.objects.filter(pk=deletion_id).delete()
        return deleted
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, deletion_id])


def _steps(deletion: Deletion) -> list[tuple[str, Step]]:
    steps = list(STEPS[deletion.kind])
    if deletion.kind == Deletion.Kind.ACCOUNT:
        steps.append(("logsvc", _delete_account))
    return steps


def _delete_account(deletion: Deletion) -> Iterator[int]:
    """logsvc's part of an account, after every app's: what identifies the person, then the user row."""
    user_id = deletion.target
    user = User.objects.filter(pk=user_id).first()
    _lock_out(user_id)  # again: a token made between the request and now
    yield from delete_in_batches(IdempotencyRecord._meta.db_table, "owner_id = %s", [user_id])
    key_ids = list(ApiKey.objects.filter(user_id=user_id).values_list("id", flat=True))
    buckets = [f"user:{user_id}", *(f"key:{key_id}" for key_id in key_ids)]
    yield from _delete_rate_limits(buckets)
    yield from _delete_sessions(user_id)
    if user is None:
        return
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    with transaction.atomic():
        rows = 0
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            rows += model._default_manager.filter(username=user.username).delete()[0]
        # What the admin logged about the account (its repr is the username); what the user did as an admin goes
        # with the user row, by cascade.
        rows += LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(User), object_id=str(user_id)
        ).delete()[0]
        # The row, and by cascade its keys, OAuth applications, groups, permissions and what the apps left. The
        # avatar's file is deleted once this commits (logsvc.images).
        rows += User.objects.filter(pk=user_id).delete()[0]
    yield rows


def _delete_rate_limits(buckets: list[str]) -> Iterator[int]:
    """The rate-limit windows of the account's buckets ("scope:user:7", "scope:key:12"), in PostgreSQL and Redis."""
    pattern = "^[^:]+:(" + "|".join(buckets) + ")$"
    query = Q(key__regex=pattern)
    rows = RateLimitCounter.objects.filter(query).delete()[0]
    if settings.REDIS_URL:
        from logsvc.ratelimit import _redis

        client = _redis(settings.REDIS_URL)
        for bucket in buckets:
            names = list(client.scan_iter(match=f"ratelimit:*:{bucket}:*", count=1000))
            if names:
                rows += int(client.delete(*names))
    if rows:
        yield rows


def _delete_sessions(user_id: int) -> Iterator[int]:
    """The account's sessions: their data is signed, not searchable, so each live one is read (a batch at a time)."""
    last = ""
    while True:
        batch = list(
            Session.objects.filter(session_key__gt=last)
            .order_by("session_key")
            .values_list("session_key", flat=True)[: batch_size()]
        )
        if not batch:
            return
        last = batch[-1]
        mine = [
            session.session_key
            for session in Session.objects.filter(session_key__in=batch)
            if session.get_decoded().get("_auth_user_id") == str(user_id)
        ]
        if mine:
            yield Session.objects.filter(session_key__in=mine).delete()[0]


class DeletionStatusSerializer(serializers.Serializer):
    """What a deletion request answers (202), the first time and while it runs (OpenAPI; Deletion.as_json)."""

    status = serializers.ChoiceField(choices=["deleting"], help_text="Always `deleting`: the worker is at it.")
    kind = serializers.ChoiceField(choices=Deletion.Kind.values)
    id = serializers.IntegerField(help_text="The account's or site's id.")
    before = serializers.DateField(allow_null=True, help_text="`hits`: the day whose earlier hits go.")
    requested_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True, help_text="When the worker began; null while queued.")
    deleted_rows = serializers.IntegerField(help_text="Rows deleted so far.")
