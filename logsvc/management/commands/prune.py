from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from logsvc.models import IdempotencyRecord, RateLimitCounter


class Command(BaseCommand):
    help = (
        "Delete expired idempotency records and rate-limit windows, and GoatCounter's expired export files, "
        "stale exports, old bot hits and past days' visitor paths and salts. Run it from cron, e.g. hourly."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        cutoff = now - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
        records, _ = IdempotencyRecord.objects.filter(created__lt=cutoff).delete()
        windows, _ = RateLimitCounter.objects.filter(expires__lt=now).delete()
        self.stdout.write(f"Deleted {records} expired idempotency records and {windows} rate-limit windows.")
        if apps.is_installed("analytics"):
            self.prune_analytics()

    def prune_analytics(self) -> None:
        # Imported here: logsvc depends on no app, and runs without this one.
        from analytics import tasks

        files = tasks.delete_expired_exports()
        reaped = tasks.reap_stale_exports()
        old = tasks.delete_old_visitor_data()
        self.stdout.write(
            f"Deleted {files} expired export files, {old['bot hits']} old bot hits, {old['visitor paths']} "
            f"visitor paths and {old['salts']} past days' salts; {reaped} interrupted exports queued again or failed."
        )
