from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from logsvc.models import SCOPES, ApiKey, User

SCOPE_NAMES = [name for name, _ in SCOPES]


class Command(BaseCommand):
    help = "Create an API key for a user and print it (alone, on the last line). The key is shown only once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--scope", action="append", required=True, choices=SCOPE_NAMES, dest="scopes")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, username: str, scopes: list[str], name: str, **options: Any) -> None:
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"No user {username!r}: create one first (manage.py createsuperuser).") from None
        key, raw = ApiKey.create(user=user, name=name or f"{username}'s key", scopes=sorted(set(scopes)))
        self.stdout.write(f"Created API key {key.prefix}… for {username} with {', '.join(key.scopes)}.")
        self.stdout.write("Store it now: only its hash is kept.")
        self.stdout.write(raw)
