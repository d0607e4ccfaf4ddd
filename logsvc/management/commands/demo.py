from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand

from logsvc import retention
from logsvc.models import SCOPES, ApiKey, User

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


class Command(BaseCommand):
    help = "Create the demo user and a fresh API key with every scope, and print how to use it."

    def handle(self, *args: Any, **options: Any) -> None:
        user, created = User.objects.get_or_create(username="demo", defaults={"first_name": "Demo"})
        if created:
            user.set_password("demo")
            user.is_staff = user.is_superuser = True
            user.save()
        # A second user, for the README's littlelogs example to mention and follow ("thanks @belle!")
        belle, created = User.objects.get_or_create(username="belle", defaults={"first_name": "Belle"})
        if created:
            belle.set_unusable_password()  # she signs in nowhere; make her a password in the admin to try that
            belle.save()
        ApiKey.objects.filter(user=user, name="demo", revoked__isnull=True).delete()
        _, raw = ApiKey.create(user=user, name="demo", scopes=[name for name, _ in SCOPES])
        if apps.is_installed("analytics"):  # a GoatCounter site counting at this server's own host names
            site, _ = apps.get_model("analytics", "Site").objects.get_or_create(code="demo", defaults={"owner": user})
            domain_model = apps.get_model("analytics", "Domain")  # (unless another site has them already)
            domains = [domain_model(site=site, domain=domain) for domain in ("localhost", "127.0.0.1")]
            domain_model.objects.bulk_create(domains, ignore_conflicts=True)
        retention.schedule()  # the worker's retention passes (they delete nothing until a retention is set)
        base = "http://127.0.0.1:8000"
        self.stdout.write(
            f"\nDemo user: demo / demo (admin at {base}/admin/); belle, a second user to follow and @mention\n"
            f"API key (all scopes): {raw}\n\n"
            "Try it:\n"
            f"  curl -s {base}/api/Log -H 'ApiKey: {raw}' -H 'Content-Type: application/json' \\\n"
            """    -d '{"Message": "Hello from logsvc", "Severity": 2}'\n"""
            f"  curl -s -X POST {base}/api/v1/events -H 'Authorization: Bearer {raw}' \\\n"
            """    -H 'Content-Type: application/json' -d '{"name": "click", "trace_id": "t1", "data": {}}'\n"""
            f"  curl -s '{base}/api/v1/events' -H 'Authorization: Bearer {raw}'\n"
            f"  curl -s -X POST {base}/api/v0/count -H 'Authorization: Bearer {raw}' \\\n"
            """    -H 'Content-Type: application/json' -d '{"no_sessions": true, "hits": [{"path": "/hello"}]}'\n"""
            "  # the pixel, as a browser calls it (with curl's own User-Agent the hit is stored as a bot's)\n"
            f"  curl -s -o /dev/null -w '%{{http_code}}\\n' -A '{BROWSER}' '{base}/count?p=/from-a-browser&t=Hello'\n"
            f"API reference: {base}/api.html\n"
        )
