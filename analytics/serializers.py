from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework import serializers

from analytics import sites
from analytics.models import CODE_VALIDATOR, DOMAIN_VALIDATOR, Domain, Export, Site, validate_timezone
from logsvc.fields import IPAddressField, StrictBooleanField, StrictCharField, TimeZoneField


def rfc3339(value: datetime | None) -> str | None:
    """2020-12-01T00:07:10Z, as GoatCounter writes times."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DomainField(StrictCharField):
    """A host name, lower-cased before it is checked: Shop.Example.com is shop.example.com."""

    def to_internal_value(self, data: Any) -> str:
        return super().to_internal_value(data).lower()


class SiteSettingsSerializer(serializers.Serializer):
    public = StrictBooleanField(required=False, help_text="Anyone may read the dashboard.")
    timezone = TimeZoneField(
        required=False, validators=[validate_timezone], help_text="IANA zone for days and hours in stats."
    )
    ignore_ips = serializers.ListField(child=IPAddressField(), required=False, max_length=100)


class SiteSerializer(serializers.ModelSerializer):
    """A site as /api/v0/sites shows it; `settings` groups what GoatCounter calls the site's settings."""

    code = serializers.CharField(validators=[CODE_VALIDATOR], max_length=50)
    domains = serializers.ListField(
        child=DomainField(max_length=253, validators=[DOMAIN_VALIDATOR]), required=False, max_length=20
    )
    settings = SiteSettingsSerializer(required=False)
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()

    class Meta:
        model = Site
        fields = ["id", "code", "domains", "settings", "created_at", "updated_at"]

    def get_created_at(self, site: Site) -> str | None:
        return rfc3339(site.created_at)

    def get_updated_at(self, site: Site) -> str | None:
        return rfc3339(site.updated_at)

    def to_representation(self, site: Site) -> dict[str, Any]:
        return {
            "id": site.pk,
            "code": site.code,
            "domains": [domain.domain for domain in site.domains.all()],
            "settings": {"public": site.public, "timezone": site.timezone, "ignore_ips": site.ignore_ips},
            "created_at": rfc3339(site.created_at),
            "updated_at": rfc3339(site.updated_at),
        }

    def validate_code(self, code: str) -> str:
        others = Site.objects.filter(code=code).exclude(pk=getattr(self.instance, "pk", None))
        if others.exists():
            raise serializers.ValidationError("This code is taken; choose another.")
        return code

    def validate_domains(self, domains: list[str]) -> list[str]:
        domains = sorted({domain.lower() for domain in domains})
        for domain in domains:
            if sites.service_host(domain):
                raise serializers.ValidationError(
                    f"{domain} is a name of this service itself, not a site's; use a domain of your own that points "
                    "here (a CNAME), or count with /count/<code>."
                )
        taken = Domain.objects.filter(domain__in=domains).exclude(site_id=getattr(self.instance, "pk", None))
        if taken.exists():
            raise serializers.ValidationError(f"{taken.first().domain} belongs to another site.")
        return domains

    @transaction.atomic
    def save(self, **kwargs: Any) -> Site:
        data = {**self.validated_data, **kwargs}
        domains = data.pop("domains", None)
        site = self.instance or Site(owner=data.pop("owner"))
        for name, value in data.pop("settings", {}).items():
            setattr(site, name, value)
        if "code" in data:
            site.code = data["code"]
        site.save()
        if domains is not None:
            site.domains.exclude(domain__in=domains).delete()
            new = set(domains) - set(site.domains.values_list("domain", flat=True))
            try:
                with transaction.atomic():
                    Domain.objects.bulk_create([Domain(site=site, domain=domain) for domain in sorted(new)])
            except IntegrityError:  # claimed by another site since validate_domains looked
                taken = Domain.objects.filter(domain__in=new).exclude(site=site).first()
                which = taken.domain if taken else "One of these domains"
                raise serializers.ValidationError({"domains": [f"{which} belongs to another site."]}) from None
        self.instance = site
        return Site.objects.prefetch_related("domains").get(pk=site.pk)


class ExportSerializer(serializers.ModelSerializer):
    """GoatCounter's export object, less the server path it leaks."""

    # null until the export has finished (error: unless it failed), as GoatCounter's
    size = serializers.CharField(allow_null=True, help_text="MB, one decimal.")
    hash = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(required=False, help_text="Once finished without error.")

    class Meta:
        model = Export
        fields = [
            "id",
            "site_id",
            "start_from_hit_id",
            "last_hit_id",
            "created_at",
            "finished_at",
            "num_rows",
            "size",
            "hash",
            "error",
            "expires_at",
        ]

    def to_representation(self, export: Export) -> dict[str, Any]:
        finished = export.finished_at is not None
        return {
            "id": export.pk,
            "site_id": export.site_id,
            "start_from_hit_id": export.start_from_hit_id,
            "last_hit_id": export.last_hit_id,
            "created_at": rfc3339(export.created_at),
            "finished_at": rfc3339(export.finished_at),
            "num_rows": export.num_rows,
            "size": export.size or None,
            "hash": export.hash or None,
            "error": export.error or None,
        } | ({"expires_at": rfc3339(export.expires_at)} if finished and not export.error else {})
