from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from analytics.models import Domain, Site
from logsvc.models import User


class Command(BaseCommand):
    help = "Create an analytics site: its code, owner and the domains the pixel and /api/v0 find it by."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code", help="Short name, e.g. myblog: /count/myblog works without a domain.")
        parser.add_argument("--owner", required=True, help="Username of the site's owner.")
        parser.add_argument("--domain", action="append", default=[], dest="domains", help="Repeat for several.")
        parser.add_argument("--timezone", default="UTC", help="IANA zone for days in stats, e.g. Europe/Berlin.")

    @transaction.atomic
    def handle(self, *args: Any, code: str, owner: str, domains: list[str], timezone: str, **options: Any) -> None:
        try:
            user = User.objects.get(username=owner)
        except User.DoesNotExist:
            raise CommandError(f"No user {owner!r}: create one first (manage.py createsuperuser).") from None
        site = Site(code=code, owner=user, timezone=timezone)
        rows = [Domain(site=site, domain=domain.lower()) for domain in domains]
        try:
            site.full_clean()
            for row in rows:
                row.full_clean(exclude=["site"])
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        site.save()
        Domain.objects.bulk_create(rows)
        where = ", ".join(domains) or f"/count/{code} (no domain)"
        self.stdout.write(f"Created site {code} (id {site.pk}) for {owner}, counting at {where}.")
