from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models.functions import Left
from django.utils import timezone

from logsvc.models import User

SEARCH_CONFIG = "english"
# PostgreSQL's parser reads `Garage.Frobnicator.Spin` or `C:\\src\\Shop.cs` as one word; searching for a
# part of a .NET or Java name must find it, so dots and slashes count as spaces (in queries too).
SEARCH_SEPARATORS = "./\\"


# Each field's first SEARCH_CHARS characters are searched: a tsvector holds at most 1 MB, and three whole fields
# at their caps (~540,000 characters of distinct short words) would overflow it and refuse the message.
SEARCH_CHARS = 32_768


def searchable(field: str) -> models.Func:
    return models.Func(
        Left(models.F(field), SEARCH_CHARS),
        models.Value(SEARCH_SEPARATORS),
        models.Value(" " * len(SEARCH_SEPARATORS)),
        function="translate",
        output_field=models.TextField(),
    )


class LogMessageQuerySet(models.QuerySet["LogMessage"]):
    def owned_by(self, user: User) -> LogMessageQuerySet:
        return self.filter(owner=user)


class LogMessage(models.Model):
    """A Logster application log message."""

    # db_index=False: the (owner, created) index below serves every lookup by owner
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="log_messages", db_index=False
    )
    message = models.TextField()
    exception = models.TextField(blank=True)
    stack_trace = models.TextField(blank=True)
    severity = models.PositiveSmallIntegerField()
    category = models.CharField(max_length=256, blank=True)
    application = models.CharField(max_length=256, blank=True)
    user = models.CharField(max_length=256, blank=True)
    created = models.DateTimeField(default=timezone.now)
    search = models.GeneratedField(
        expression=SearchVector(
            searchable("message"), searchable("exception"), searchable("stack_trace"), config=SEARCH_CONFIG
        ),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    objects = LogMessageQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["owner", "-created", "-id"], name="logmessage_owner_created"),
            GinIndex(fields=["search"], name="logmessage_search"),
        ]

    def __str__(self) -> str:
        return self.message[:80]


def new_uid() -> str:
    """16 URL-safe characters (96 random bits): the event's public Loggator id and its capability."""
    return secrets.token_urlsafe(12)


class EventQuerySet(models.QuerySet["Event"]):
    def owned_by(self, user: User) -> EventQuerySet:
        return self.filter(owner=user)


class Event(models.Model):
    """A Bytelog business event, readable by anyone holding its uid through Loggator."""

    # Every index costs each insert: the (owner, ...) indexes below serve lookups by owner, and uid's
    # uniqueness is a plain constraint (unique=True would add a LIKE index no query uses).
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="events", db_index=False)
    uid = models.CharField(max_length=16, default=new_uid, editable=False)
    client_id = models.JSONField(null=True, blank=True, help_text="The client's own `id`; not unique.")
    name = models.CharField(max_length=200)
    trace_id = models.CharField(max_length=64, blank=True)
    date = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict, blank=True)
    size = models.PositiveIntegerField(default=0, editable=False, help_text="Bytes of data's JSON, for paging.")
    created = models.DateTimeField(default=timezone.now)

    objects = EventQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["owner", "date", "id"], name="event_owner_date"),
            models.Index(fields=["owner", "trace_id", "date"], name="event_owner_trace"),
        ]
        constraints = [models.UniqueConstraint(fields=["uid"], name="event_uid_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.uid})"


class RollupCursor(models.Model):
    """How far a rollup (events.rollups) has read its table: every row with an id up to last_id is counted in it."""

    name = models.CharField(max_length=20, primary_key=True)  # "logs" (LogCount) or "events" (EventCount)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} up to id {self.last_id}"


class LogCount(models.Model):
    """How many of an owner's Logster messages of a severity have their `created` in a time bucket of `span`
    seconds (events.rollups.LEVELS), for the explorer's histogram. Kept by the worker and by triggers on
    LogMessage: see events.rollups."""

    pk = models.CompositePrimaryKey("owner", "span", "bucket", "severity")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+")
    span = models.PositiveIntegerField()
    bucket = models.DateTimeField()
    severity = models.PositiveSmallIntegerField()
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.n} of severity {self.severity} in the {self.span} s from {self.bucket:%Y-%m-%d %H:%M}"


class EventCount(models.Model):
    """How many of an owner's Bytelog events have their `date` in a time bucket of `span` seconds, as LogCount."""

    pk = models.CompositePrimaryKey("owner", "span", "bucket")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+")
    span = models.PositiveIntegerField()
    bucket = models.DateTimeField()
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.n} in the {self.span} s from {self.bucket:%Y-%m-%d %H:%M}"


class LogRetention(models.Model):
    """How long an owner's Logster messages are kept (logsvc.retention; events.retention deletes them).

    A message follows the most specific of its owner's rules: one for its application before one for any
    application (blank); then, of those, the one with the lowest up_to_severity that covers its severity before
    one for every severity (blank). So "keep 90 days, but Verbose and Debug (up to 1) 7 days" is two rules.
    A message no rule covers is kept for ever, as is one whose rule says 0 days.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="log_retentions")
    application = models.CharField(max_length=256, blank=True, help_text="Blank: any application.")
    up_to_severity = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(6)],
        help_text="Messages of this severity (0-6) and lower only; blank: every severity.",
    )
    days = models.PositiveIntegerField(help_text="Keep this many days after the message came; 0: for ever.")

    class Meta:
        verbose_name = "log retention"
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "application", "up_to_severity"], nulls_distinct=False, name="logretention_unique"
            )
        ]

    def __str__(self) -> str:
        severity = "" if self.up_to_severity is None else f" up to severity {self.up_to_severity}"
        return f"{self.application or 'any application'}{severity}: {self.days} days"


class EventRetention(models.Model):
    """How long an owner's Bytelog events are kept, by their date: a rule for the event's name before the one for
    any name (blank). An event no rule covers is kept for ever, as is one whose rule says 0 days."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="event_retentions")
    name = models.CharField(max_length=200, blank=True, help_text="Blank: any event name.")
    days = models.PositiveIntegerField(help_text="Keep this many days after the event's date; 0: for ever.")

    class Meta:
        verbose_name = "event retention"
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="eventretention_unique")]

    def __str__(self) -> str:
        return f"{self.name or 'any event'}: {self.days} days"


class SavedSearch(models.Model):
    """A named filter set of the explorer (/logs/ or /events/): its query string, so its link is the search."""

    class Page(models.TextChoices):
        LOGS = "logs", "Log messages"
        EVENTS = "events", "Events"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches")
    name = models.CharField(max_length=100)
    page = models.CharField(max_length=10, choices=Page.choices)
    query = models.CharField(max_length=2000, blank=True, help_text="The page's query string, without the '?'.")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "page", "name"], name="savedsearch_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return f"/{self.page}/?{self.query}" if self.query else f"/{self.page}/"
