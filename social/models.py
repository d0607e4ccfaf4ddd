"""littlelogs: work logs in Markdown, with comments, likes, tags, mentions, follows and activity."""

from __future__ import annotations

from django.conf import settings
from django.db import connections, models
from django.db.models.functions import Lower
from django.utils import timezone

from logsvc.db import prepared_cursor


class Tag(models.Model):
    name = models.CharField(max_length=100)  # case kept as first written: "HelloCode"
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="tag_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


class Log(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="logs", db_index=False)
    markdown = models.TextField(help_text="What the author wrote; `content` is its rendered, sanitised HTML.")
    content = models.TextField()
    source = models.CharField(max_length=200, blank=True, help_text="The client app it came from (null when none).")
    created = models.DateTimeField(default=timezone.now)
    tags = models.ManyToManyField(Tag, through="LogTag", related_name="logs", blank=True)
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="mentioned_in_logs", blank=True)

    class Meta:
        indexes = [
            # with the author: the home timeline's walk through all logs filters on it without reading the table
            models.Index(fields=["-created", "-id"], name="log_created", include=["user"]),
            models.Index(fields=["user", "-created", "-id"], name="log_user_created"),
        ]

    def __str__(self) -> str:
        return self.markdown[:80]


class LogTag(models.Model):
    """A log's tag, with the log's time copied in so a tag page is one index range scan."""

    log = models.ForeignKey(Log, on_delete=models.CASCADE, db_index=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["log", "tag"], name="logtag_unique")]
        indexes = [
            models.Index(fields=["tag", "-created", "-log"], name="logtag_tag_created"),
            models.Index(fields=["user", "tag"], name="logtag_user_tag"),
            models.Index(fields=["created"], name="logtag_created"),  # trending: the last seven days
        ]

    def __str__(self) -> str:
        return f"{self.log_id} #{self.tag_id}"


class Comment(models.Model):
    log = models.ForeignKey(Log, on_delete=models.CASCADE, related_name="comments", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comments")
    markdown = models.TextField()
    content = models.TextField()
    source = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)
    tags = models.ManyToManyField(Tag, related_name="comments", blank=True)
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="mentioned_in_comments", blank=True)

    class Meta:
        indexes = [models.Index(fields=["log", "created"], name="comment_log_created")]

    def __str__(self) -> str:
        return self.markdown[:80]


class Like(models.Model):
    log = models.ForeignKey(Log, on_delete=models.CASCADE, related_name="likes", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="likes")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["log", "user"], name="like_once")]
        # a log's latest likes (it carries them inline) without reading all of them
        indexes = [models.Index(fields=["log", "created"], name="like_log_created")]

    def __str__(self) -> str:
        return f"{self.user_id} likes {self.log_id}"


class Follow(models.Model):
    follower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="following")
    followee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="followers")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_once"),
            models.CheckConstraint(condition=~models.Q(follower=models.F("followee")), name="follow_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.follower_id} follows {self.followee_id}"


class Activity(models.Model):
    """One notification for one recipient, written in the same transaction as what caused it."""

    class Type(models.TextChoices):
        COMMENT = "comment"
        COMMENT_AFTER = "comment_after"
        LIKE = "like"
        FOLLOW = "follow"
        MENTION = "mention"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="activity", db_index=False
    )
    type = models.CharField(max_length=20, choices=Type.choices)
    originator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    log = models.ForeignKey(Log, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "activity"
        indexes = [models.Index(fields=["recipient", "-created", "-id"], name="activity_recipient_created")]

    def __str__(self) -> str:
        return f"{self.type} for {self.recipient_id}"


class CounterQuerySet(models.QuerySet["Counter"]):
    def add(self, changes: dict[tuple[str, int], int]) -> None:
        """Adds each (kind, key) -> delta in one statement, creating missing rows.

        Meant for the transaction of the write being counted. Rows are touched in (kind, key) order so
        two concurrent writes lock shared counters in the same order and cannot deadlock.
        """
        rows = sorted((kind, key, delta) for (kind, key), delta in changes.items() if delta)
        if not rows:
            return
        table = Counter._meta.db_table
        values = ", ".join(["(%s, %s, %s)"] * len(rows))
        with connections[self.db].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (kind, key, value) VALUES {values} "
                f"ON CONFLICT (kind, key) DO UPDATE SET value = {table}.value + EXCLUDED.value",
                [item for row in rows for item in row],
            )

    def value(self, kind: str, key: int = 0) -> int:
        """The count, 0 for none (every page reads one: plain SQL costs a third of the ORM's CPU here)."""
        with prepared_cursor(self.db) as cursor:
            cursor.execute(f"SELECT value FROM {Counter._meta.db_table} WHERE kind = %s AND key = %s", [kind, key])
            row = cursor.fetchone()
        return row[0] if row else 0


class Counter(models.Model):
    """Row counts kept up to date by social.services in the writes' own transactions, so a page's
    `count` is one indexed read instead of a COUNT(*) over millions of rows."""

    class Kind(models.TextChoices):
        LOGS = "logs"  # key 0: every log
        USER_LOGS = "user_logs"  # key: the author's id
        TAG_LOGS = "tag_logs"  # key: the tag's id
        TAGS = "tags"  # key 0: every tag
        ACTIVITY = "activity"  # key: the recipient's id

    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)

    objects = CounterQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="counter_kind_key")]

    def __str__(self) -> str:
        return f"{self.kind}[{self.key}] = {self.value}"
