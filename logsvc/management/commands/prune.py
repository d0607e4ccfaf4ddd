from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from logsvc import cleanup, deletion, retention
from logsvc.models import IdempotencyRecord, RateLimitCounter


class Command(BaseCommand):
    help = (
        "Delete expired idempotency records and rate-limit windows, and what each installed app registered "
        "(GoatCounter: expired export files, stale exports, old bot hits and past days' visitor paths and salts), "
        "then a pass of retention (what owners keep only so long), and queue the worker's own passes. "
        "Run it from cron, e.g. hourly."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        cutoff = now - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
        records, _ = IdempotencyRecord.objects.filter(created__lt=cutoff).delete()
        windows, _ = RateLimitCounter.objects.filter(expires__lt=now).delete()
        self.stdout.write(f"Deleted {records} expired idempotency records and {windows} rate-limit windows.")
        for work in cleanup.CLEANUPS.values():
            self.stdout.write(work())
        # Retention runs here too, so an operator who prunes from cron sees what it forgot; the worker's own
        # passes are queued (once) from here as well.
        record = retention.run("prune")
        if record is None:
            self.stdout.write("Retention: a pass is running in the worker; see Retention runs in the admin.")
        else:
            stopped = f" (stopped by an error: {record.error})" if record.error else ""
            self.stdout.write(f"Retention deleted {record.summary()}{stopped}.")
        retention.schedule()
        self.stdout.write(deletion.resume_stalled())
