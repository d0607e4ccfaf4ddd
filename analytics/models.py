"""GoatCounter's data: sites, their paths, the hits counted on them, bots kept apart, and exports.

Visitors are counted without cookies and without keeping an IP: a hit carries a hash of site, IP and user
agent under a salt that rotates daily (see Salt), and VisitorPath remembers for that day which paths a hash
has seen, so `first_visit` is known without storing who the visitor was.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone as tz

from logsvc.fields import time_zones
from logsvc.models import ApiKey

CODE_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$",
    "Use 3 to 50 lower-case letters, digits and dashes, starting and ending with a letter or digit.",
)
DOMAIN_VALIDATOR = RegexValidator(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    "Enter a host name such as stats.example.com (no scheme, port or path).",
)

MIN_RETENTION_DAYS = 31  # GoatCounter's lower bound for data_retention (but 0, for ever)
MAX_RETENTION_DAYS = 100 * 366


def validate_data_retention(days: int) -> None:
    if 0 < days < MIN_RETENTION_DAYS:
        raise ValidationError(
            f"Keep hits at least {MIN_RETENTION_DAYS} days (as GoatCounter), or 0 to keep them for ever."
        )


def validate_timezone(value: str) -> None:
    if value not in time_zones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Amsterdam or UTC.")


class Site(models.Model):
    code = models.CharField(max_length=50, unique=True, validators=[CODE_VALIDATOR])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sites")
    # Days and hours on the dashboard and in stats are this zone's (GoatCounter's #337, #431, #852).
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    public = models.BooleanField(default=False, help_text="Anyone may read the dashboard, without logging in.")
    ignore_ips = ArrayField(
        models.GenericIPAddressField(), default=list, blank=True, help_text="Hits from these IPs are not counted."
    )
    # API keys that act for this site whatever the Host of the request (createapikey --site).
    api_keys = models.ManyToManyField(ApiKey, blank=True, related_name="sites")
    # The key that created the site with PUT /api/v0/sites: it acts for the site too, without being bound to it
    # (a key bound to two sites would no longer know which one a request without a site's Host is for).
    created_by_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="created_sites", editable=False
    )
    link_domain = models.CharField(
        max_length=255, blank=True, help_text="Where the site's pages are, for links from the dashboard (GoatCounter)."
    )
    # GoatCounter's data_retention: hits older than this many days are deleted by the worker (analytics.retention),
    # their counts kept in the rollups; 0 keeps them for ever. GoatCounter takes 0 or at least 31.
    data_retention = models.PositiveIntegerField(
        default=0,
        validators=[validate_data_retention, MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text="Delete hits older than this many days (the dashboard and stats keep their counts); 0: keep them.",
    )
    # Hits before this time may have been deleted by retention: rebuild_days() recounts only the days after it.
    hits_deleted_before = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=tz.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Domain(models.Model):
    """A host name a site is reached at: the pixel and /api/v0 find the site from the request's Host."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True, validators=[DOMAIN_VALIDATOR])

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs) -> None:
        self.domain = self.domain.lower()
        super().save(*args, **kwargs)


class Path(models.Model):
    """A page (or an event name) of a site; its title is the last one a hit reported."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="paths")
    path = models.TextField()
    title = models.TextField(blank=True)
    event = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "event", "path"], name="analytics_path_unique")]

    def __str__(self) -> str:
        return self.path


class Hit(models.Model):
    """One pageview or event of a person (bots go to BotHit). Millions of rows: the site's hits are read by
    id (exports, and the rollups that answer stats), so (site, id) is the index. Deleting a site deletes them
    with one statement (see delete_hits_with_site), not one by one through Django's collector."""

    id = models.BigAutoField(primary_key=True)
    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_index=False)
    path = models.ForeignKey(Path, on_delete=models.DO_NOTHING, db_index=False)
    visitor = models.UUIDField(null=True, blank=True)  # the day's salted hash; null with no_sessions
    first_visit = models.BooleanField(default=True)
    ref = models.TextField(blank=True)
    ref_scheme = models.CharField(max_length=1, blank=True)  # h http, g generated, c campaign, o other
    campaign = models.TextField(blank=True)
    browser = models.CharField(max_length=100, blank=True)
    system = models.CharField(max_length=100, blank=True)
    size = models.IntegerField(null=True, blank=True)  # screen width
    location = models.CharField(max_length=10, blank=True)
    language = models.CharField(max_length=3, blank=True)
    created_at = models.DateTimeField(default=tz.now)

    class Meta:
        indexes = [models.Index(fields=["site", "id"], name="analytics_hit_site_id")]

    def __str__(self) -> str:
        return f"hit {self.pk}"


class BotHit(models.Model):
    """A hit from a bot: kept apart from people's, and only for BOT_HIT_DAYS (manage.py prune)."""

    id = models.BigAutoField(primary_key=True)
    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_index=False)
    path = models.TextField()
    bot = models.PositiveSmallIntegerField()
    user_agent = models.TextField(blank=True)
    created_at = models.DateTimeField(default=tz.now)

    class Meta:
        verbose_name = "bot hit"
        indexes = [
            models.Index(fields=["site", "id"], name="analytics_bothit_site_id"),
            models.Index(fields=["created_at"], name="analytics_bothit_created"),
        ]

    def __str__(self) -> str:
        return f"bot hit {self.pk}"


class Salt(models.Model):
    """The day's secret for visitor hashes. Deleted once the day is over, so no hash can be recomputed."""

    day = models.DateField(unique=True)
    value = models.BinaryField(max_length=32)

    def __str__(self) -> str:
        return str(self.day)


class VisitorPath(models.Model):
    """That visitor hash (of today's salt) has seen that path: the next hit there is not a first visit."""

    visitor = models.UUIDField()
    path = models.ForeignKey(Path, on_delete=models.DO_NOTHING, db_index=False)
    created_at = models.DateTimeField(default=tz.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["visitor", "path"], name="analytics_visitorpath_unique")]
        # No index on created_at: every pixel hit would pay for it, and only the daily prune reads it.

    def __str__(self) -> str:
        return f"{self.visitor} on path {self.path_id}"


class Export(models.Model):
    """A CSV (or JSON) export of a site's hits, written by the worker (analytics.tasks.run_export)."""

    FORMATS = ("csv", "json")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=4, default="csv", choices=[(name, name) for name in FORMATS])
    start_from_day = models.DateTimeField(null=True, blank=True)
    start_from_hit_id = models.BigIntegerField(null=True, blank=True)
    last_hit_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=tz.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    num_rows = models.BigIntegerField(null=True, blank=True)
    size = models.CharField(max_length=20, blank=True)  # MB with one decimal, as GoatCounter
    hash = models.CharField(max_length=80, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    file = models.CharField(max_length=500, blank=True, editable=False)  # never shown: a server path

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.site}"

    @property
    def expires_at(self):
        if self.finished_at is None:
            return None
        return self.finished_at + timedelta(seconds=settings.EXPORT_TTL_SECONDS)

    def is_expired(self) -> bool:
        expires = self.expires_at
        return expires is not None and expires <= tz.now()


class ImportedRow(models.Model):
    """A line or row imported into a site before ImportedKeys (one row a line cost two index entries and a
    foreign-key check per line): read, never written, so those lines are still imported once.
    key is as ImportedKeys' (see analytics.importer.RowKeys)."""

    pk = models.CompositePrimaryKey("site", "key")
    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_index=False)
    key = models.BigIntegerField()

    class Meta:
        verbose_name = "imported row"

    def __str__(self) -> str:
        return f"row {self.key} of site {self.site_id}"


class ImportedKeys(models.Model):
    """Lines or rows already imported into a site (manage.py import_hits, the dashboard's upload): importing the
    same file, or a log that has grown since, stores each of its hits once. A key is a hash of a line's text and
    of how many identical lines came just before it (see analytics.importer.RowKeys); no IP is kept.

    A row holds the keys of one batch's hits of one hour, with the times of the first and last of those hits. A
    line gives the same time each time it is read, so its key can only be in a row whose span holds that time,
    and a batch compares its keys with those rows alone (analytics.importer.store). A row a batch and hour, not a
    row a line: one index entry and one foreign-key check per batch, not per line."""

    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_index=False)
    first_at = models.DateTimeField()  # the earliest hit of the row's keys; last_at - first_at is under an hour
    last_at = models.DateTimeField()
    keys = models.BinaryField()  # 8 bytes a key, little-endian, sorted

    class Meta:
        verbose_name = "imported keys"
        verbose_name_plural = "imported keys"
        indexes = [models.Index(fields=["site", "first_at"], name="analytics_importedkeys_first")]

    def __str__(self) -> str:
        return f"{len(self.keys) // 8} keys of site {self.site_id}"


class ImportedVisits(models.Model):
    """VisitorPath for imported hits of a day other than today: their visitor hashes carry their day (see
    services.visitor_hash), so only an import of the same site, under the same day's salt, can meet them again.
    One row holds, for one batch's hits of one day, a hash of each (visitor, path) it saw first; an import
    decides first visits in memory against the rows of the days it is at (analytics.importer.PastVisits), under
    the site's import lock. Deleted with VisitorPath a day on, once the salt they were made under is gone."""

    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_index=False)
    day = models.DateField()
    visits = models.BinaryField()  # 8 bytes a (visitor, path), little-endian, sorted (importer.PastVisits)
    created_at = models.DateTimeField(default=tz.now)

    class Meta:
        verbose_name = "imported visits"
        verbose_name_plural = "imported visits"
        indexes = [models.Index(fields=["site", "day"], name="analytics_importedvisits_day")]

    def __str__(self) -> str:
        return f"{len(self.visits) // 8} visits of site {self.site_id} on {self.day}"


class Import(models.Model):
    """A GoatCounter export uploaded from the dashboard, imported by the worker (analytics.tasks.run_import)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="imports")
    name = models.CharField(max_length=255)  # the uploaded file's name, as shown
    file = models.CharField(max_length=500, editable=False)  # never shown: its name in the "imports" storage
    size = models.BigIntegerField(default=0)  # bytes uploaded
    created_at = models.DateTimeField(default=tz.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    bytes_read = models.BigIntegerField(default=0)  # progress, of size (gzip'd or not)
    lines = models.BigIntegerField(default=0)
    imported = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    excluded = models.BigIntegerField(default=0)
    bad = models.BigIntegerField(default=0)
    errors = models.TextField(blank=True)  # the first bad lines, one a line with its number
    error = models.TextField(blank=True)  # why the import as a whole failed
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.site}"

    @property
    def percent(self) -> int:
        if self.finished_at is not None:
            return 100
        return min(99, self.bytes_read * 100 // self.size) if self.size else 0


COUNTS = ["visitors", "pageviews"]  # what the rollup indexes carry for index-only scans


class RollupState(models.Model):
    """How far the rollups have read the hit table: every hit with an id up to last_hit_id is in them."""

    name = models.CharField(max_length=20, primary_key=True)
    last_hit_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=tz.now)

    def __str__(self) -> str:
        return f"{self.name} up to hit {self.last_hit_id}"


class Rollup(models.Model):
    """What every rollup row has: a site's pageviews and visitors (first visits) of something in a period."""

    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_index=False)
    pageviews = models.IntegerField(default=0)
    visitors = models.IntegerField(default=0)

    class Meta:
        abstract = True


class PathRollup(Rollup):
    path = models.ForeignKey(Path, on_delete=models.DO_NOTHING, db_index=False)

    class Meta:
        abstract = True


class PathHour(PathRollup):
    """Pageviews and visitors of a path in an hour (UTC): hourly charts, and days in a zone not the site's."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "hour", "path"], name="analytics_pathhour_unique")]
        # "These paths' hours" (stats/hits, always hourly over a short range) from the index alone, as PathDay's: by
        # the unique index it read every path's hours of the range, 160,000 rows for 14,000 at 10M hits
        indexes = [models.Index(fields=["site", "path", "hour"], include=COUNTS, name="analytics_pathhour_path")]

    def __str__(self) -> str:
        return f"{self.path_id} at {self.hour}"


class PathDay(PathRollup):
    """Pageviews and visitors of a path on a day of the site's time zone: the dashboard's and stats' days."""

    day = models.DateField()

    class Meta:
        # Both indexes carry the counts, so the stats read them alone (index-only scans, a fifth of the time):
        # the unique one serves "top paths of these days", the other "these paths' days".
        constraints = [
            models.UniqueConstraint(fields=["site", "day", "path"], include=COUNTS, name="analytics_pathday_unique")
        ]
        indexes = [models.Index(fields=["site", "path", "day"], include=COUNTS, name="analytics_pathday_path")]

    def __str__(self) -> str:
        return f"{self.path_id} on {self.day}"


class PathMonth(PathRollup):
    """PathDay summed by month: the top paths of a year read 12 rows a path, not 365. It also keeps the
    month's days as arrays (day 1 first, up to its last day with hits), so a path's year of days is 12 rows."""

    month = models.DateField()  # its first day, in the site's time zone
    daily_visitors = ArrayField(models.IntegerField(), default=list)
    daily_pageviews = ArrayField(models.IntegerField(), default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "month", "path"], include=COUNTS, name="analytics_pathmonth_unique")
        ]
        indexes = [models.Index(fields=["site", "path", "month"], name="analytics_pathmonth_path")]  # path_days()

    def __str__(self) -> str:
        return f"{self.path_id} in {self.month}"


class RefDay(PathRollup):
    """Where a path's visitors came from, per day of the site's time zone."""

    day = models.DateField()
    ref = models.TextField()
    ref_scheme = models.CharField(max_length=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "day", "path", "ref", "ref_scheme"], name="analytics_refday_unique")
        ]
        indexes = [models.Index(fields=["site", "path", "day"], include=COUNTS, name="analytics_refday_path")]

    def __str__(self) -> str:
        return f"{self.ref} to {self.path_id} on {self.day}"


class StatDay(Rollup):
    """Browsers, systems, screen sizes, locations, languages and campaigns per day of the site's time zone.

    name is what the list shows (Chrome, US, Phones), detail what its detail page shows (131, US-CA, 390).
    """

    KINDS = ["browsers", "systems", "sizes", "locations", "languages", "campaigns"]
    # Kept for the site-wide views of long ranges, a handful of rows a day whatever the number of paths:
    # "totals" (name "pages" or "events") and "toprefs" (name the referrer, detail its scheme).
    SITE_KINDS = ["totals", "toprefs"]

    kind = models.CharField(max_length=10, choices=[(kind, kind) for kind in KINDS + SITE_KINDS])
    day = models.DateField()
    name = models.TextField()
    detail = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "kind", "day", "name", "detail"], include=COUNTS, name="analytics_statday_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} {self.detail} on {self.day}"


ROLLUP_MODELS: list[type[PathHour | PathDay | PathMonth | RefDay | StatDay]] = [
    PathHour,
    PathDay,
    PathMonth,
    RefDay,
    StatDay,
]


class RollupFailure(models.Model):
    """Hits of one site that could not be folded into the rollups (analytics.rollups): the other sites' were,
    and the cursor moved on. The hits stay in the hit table; the worker tries these again every
    ROLLUP_RETRY_SECONDS, and the admin's "Retry now" at once. Shown in the admin and /healthz."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="rollup_failures")
    from_hit_id = models.BigIntegerField(help_text="Hits with an id above this one ...")
    to_hit_id = models.BigIntegerField(help_text="... up to and including this one.")
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=tz.now)
    last_attempt_at = models.DateTimeField(default=tz.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"hits {self.from_hit_id + 1}-{self.to_hit_id} of {self.site}"


@receiver(pre_delete, sender=Site)
def delete_hits_with_site(sender: type[Site], instance: Site, **kwargs) -> None:
    """The hit tables' foreign keys say DO_NOTHING so Django never loads millions of rows to delete them."""
    paths = Path.objects.filter(site=instance)
    VisitorPath.objects.filter(path__in=paths).delete()
    for model in ROLLUP_MODELS:
        model.objects.filter(site=instance).delete()
    Hit.objects.filter(site=instance).delete()
    BotHit.objects.filter(site=instance).delete()
    ImportedRow.objects.filter(site=instance).delete()
    ImportedKeys.objects.filter(site=instance).delete()
    ImportedVisits.objects.filter(site=instance).delete()
