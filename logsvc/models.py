from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import connections, models
from django.utils import timezone

from logsvc.images import ReencodedImageField

SCOPES = [
    ("logs:write", "Post Logster log messages"),
    ("logs:read", "Read and search Logster log messages"),
    ("events:write", "Post Bytelog events"),
    ("events:read", "Read Bytelog events"),
    # GoatCounter's permissions, by the names its UI gives them
    ("count", "Record pageviews"),
    ("export", "Export"),
    ("stats", "Read statistics"),
    ("sites", "Read, create and update sites"),
]
KEY_PREFIX_LENGTH = 8
# What set_secret() makes: lsk_, a hex prefix, then URL-safe characters. Anything else (a NUL from a Basic
# header, non-ASCII, a megabyte) is no key and never reaches the database.
KEY_SHAPE = re.compile(rf"lsk_[0-9a-f]{{{KEY_PREFIX_LENGTH}}}[A-Za-z0-9_-]{{8,64}}")
LAST_USED_RESOLUTION = timedelta(minutes=1)


class User(AbstractUser):
    bio = models.TextField(blank=True)
    url = models.URLField(blank=True)
    location = models.CharField(max_length=100, blank=True)
    avatar = ReencodedImageField(upload_to="avatars/", blank=True)  # re-encoded, old files deleted
    timezone = models.CharField(max_length=64, default="UTC")


def hash_key(raw: str) -> str:
    # A plain SHA-256 suffices: keys are 190 random bits, not guessable passwords.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def for_key(self, raw: str) -> ApiKey | None:
        """The usable (not revoked, not expired) key matching raw, with its user, or None."""
        if not KEY_SHAPE.fullmatch(raw):
            return None
        key = self._with_user_by_prefix(raw[4 : 4 + KEY_PREFIX_LENGTH])
        if key is not None and hmac.compare_digest(key.hashed_key, hash_key(raw)) and key.is_usable():
            return key
        return None

    def _with_user_by_prefix(self, prefix: str) -> ApiKey | None:
        """The key and its user from one query written once. This runs on every API request, and
        compiling the equivalent select_related() query each time cost ~40% of a one-event POST's CPU."""
        with connections[self.db].cursor() as cursor:
            cursor.execute(_key_with_user_sql(), [prefix])
            row = cursor.fetchone()
        if row is None:
            return None
        key_fields = [field.attname for field in ApiKey._meta.concrete_fields]
        key = ApiKey.from_db(self.db, key_fields, row[: len(key_fields)])
        key.user = User.from_db(
            self.db, [field.attname for field in User._meta.concrete_fields], row[len(key_fields) :]
        )
        return key


@functools.cache
def _key_with_user_sql() -> str:
    columns = [f'k."{field.column}"' for field in ApiKey._meta.concrete_fields]
    columns += [f'u."{field.column}"' for field in User._meta.concrete_fields]
    return (
        f"SELECT {', '.join(columns)} FROM {ApiKey._meta.db_table} k "
        f'JOIN {User._meta.db_table} u ON u."id" = k."user_id" WHERE k."prefix" = %s'
    )


class ApiKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(models.CharField(max_length=32, choices=SCOPES), default=list)
    created = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def create(cls, *, user: User, name: str, scopes: list[str], **fields: Any) -> tuple[ApiKey, str]:
        """Create a key; returns it and the raw secret, which is never stored and shown only now."""
        key = cls(user=user, name=name, scopes=scopes, **fields)
        raw = key.set_secret()
        key.save()
        return key, raw

    def set_secret(self) -> str:
        while True:
            prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
            if not ApiKey.objects.filter(prefix=prefix).exists():
                break
        raw = f"lsk_{prefix}{secrets.token_urlsafe(24)}"
        self.prefix = prefix
        self.hashed_key = hash_key(raw)
        return raw

    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked is None and (self.expires is None or self.expires > now)

    def touch(self) -> None:
        """Record use, at most once a minute: a write per request would cost more than the request."""
        now = timezone.now()
        if self.last_used is None or now - self.last_used >= LAST_USED_RESOLUTION:
            # update() only: a full save could clobber a concurrent revocation
            ApiKey.objects.filter(pk=self.pk).update(last_used=now)
            self.last_used = now


class IdempotencyRecord(models.Model):
    """The first answer to an ingestion POST sent with an Idempotency-Key, replayed to retries."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    path = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of the request body
    status = models.PositiveSmallIntegerField()
    body = models.BinaryField()
    content_type = models.CharField(max_length=100)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key")]

    def __str__(self) -> str:
        return self.key

    def is_expired(self) -> bool:
        return timezone.now() - self.created > timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)


class RateLimitCounter(models.Model):
    """One fixed window of one rate-limit bucket, when there is no Redis (see logsvc.ratelimit)."""

    key = models.CharField(max_length=200)
    window_start = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)
    expires = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="ratelimit_key_window")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start}: {self.count}"


class Deletion(models.Model):
    """A deletion under way in the worker (logsvc.deletion): an account, a site, or a site's hits before a day.

    One row per thing being deleted (the unique constraint), so a second request finds the first one's and starts
    nothing; the row goes when the deletion is done, and with it the last trace of the account's or site's id.
    """

    class Kind(models.TextChoices):
        ACCOUNT = "account"  # target: the user's id
        SITE = "site"  # target: the site's id
        HITS = "hits"  # target: the site's id; its hits before `before` (a day of the site's time zone)

    kind = models.CharField(max_length=10, choices=Kind.choices)
    target = models.BigIntegerField()
    before = models.DateField(null=True, blank=True)
    requested_by = models.CharField(max_length=20, blank=True)  # "user", "admin": no name, it would outlive them
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    deleted = models.BigIntegerField(default=0, help_text="Rows deleted so far.")
    task_id = models.CharField(max_length=64, blank=True, editable=False)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "target"], name="deletion_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.target}"

    def as_json(self) -> dict[str, Any]:
        """What an API answers while it runs (202)."""
        return {
            "status": "deleting",
            "kind": self.kind,
            "id": self.target,
            "before": self.before.isoformat() if self.before else None,
            "requested_at": self.created.isoformat(),
            "started_at": self.started.isoformat() if self.started else None,
            "deleted_rows": self.deleted,
        }


class RetentionRun(models.Model):
    """One pass of retention (logsvc.retention): what each app's purge deleted, for the operator."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=20, help_text='"worker" (the schedule) or "prune".')
    # {"log messages": 120, "events": 0, "hits": 5000}: rows deleted by each registered purge, filled in as it goes
    deleted = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "retention run"

    def __str__(self) -> str:
        return f"retention run of {self.started_at:%Y-%m-%d %H:%M:%S}"

    def summary(self) -> str:
        """What it deleted: '0 events, 5000 hits and 120 log messages' (by name: jsonb keeps no order)."""
        parts = [f"{count} {name}" for name, count in sorted(self.deleted.items())]
        if len(parts) < 2:
            return parts[0] if parts else "nothing"
        return ", ".join(parts[:-1]) + " and " + parts[-1]


class StoredFile(models.Model):
    """A file in PostgreSQL (logsvc.storage.DatabaseStorage): an export or an avatar that every host reads.
    name is the storage's location and the file's name ("exports/goatcounter-export-....csv.gz")."""

    name = models.CharField(max_length=600, unique=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class StoredChunk(models.Model):
    """CHUNK_BYTES of a StoredFile (the last one shorter), so a file is read and written a chunk at a time."""

    file = models.ForeignKey(StoredFile, on_delete=models.DB_CASCADE, db_index=False, related_name="chunks")
    index = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["file", "index"], name="stored_chunk_file_index")]

    def __str__(self) -> str:
        return f"chunk {self.index} of file {self.file_id}"


class ReplicaHeartbeat(models.Model):
    """One row, stamped on the primary by the processes that read from a replica (logsvc.replica): how old the
    replica's copy of it is, by the primary's clock, is how far the replica is behind."""

    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"primary's heartbeat at {self.at}"
