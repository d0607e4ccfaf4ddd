from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from logsvc.models import SCOPES, ApiKey, User

SCOPE_NAMES = [name for name, _ in SCOPES]


class Command(BaseCommand):
    help = "Create an API key for a user and print it (alone, on the last line). The key is shown only once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--scope", action="append", required=True, choices=SCOPE_NAMES, dest="scopes")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--site",
            action="append",
            default=[],
            dest="sites",
            help="Analytics site code the key acts for; repeatable.",
        )

    @transaction.atomic
    def handle(self, *args: Any, username: str, scopes: list[str], name: str, sites: list[str], **options: Any) -> None:
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"No user {username!r}: create one first (manage.py createsuperuser).") from None
        bound = []
        if sites:
            site_model = apps.get_model("analytics", "Site")
            bound = list(site_model.objects.filter(code__in=sites, owner=user))
            if missing := sorted(set(sites) - {site.code for site in bound}):
                raise CommandError(f"{username} owns no site {', '.join(missing)} (manage.py createsite).")
        key, raw = ApiKey.create(user=user, name=name or f"{username}'s key", scopes=sorted(set(scopes)))
        key.sites.set(bound)
        self.stdout.write(f"Created API key {key.prefix}… for {username} with {', '.join(key.scopes)}.")
        self.stdout.write("Store it now: only its hash is kept.")
        self.stdout.write(raw)
