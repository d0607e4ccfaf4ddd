from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone as tz
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics import sites
from analytics.models import (
    CODE_VALIDATOR,
    DOMAIN_VALIDATOR,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    Domain,
    Export,
    Hit,
    Site,
    validate_data_retention,
    validate_timezone,
)
from logsvc import retention
from logsvc.fields import IPAddressField, StrictBooleanField, StrictCharField, TimeZoneField


def rfc3339(value: datetime | None) -> str | None:
    """2020-12-01T00:07:10Z, as GoatCounter writes times."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DomainField(StrictCharField):
    """A host name, lower-cased before it is checked: Shop.Example.com is shop.example.com."""

    def to_internal_value(self, data: Any) -> str:
        return super().to_internal_value(data).lower()


@extend_schema_field({"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["public", "private"]}]})
class PublicField(StrictBooleanField):
    """true or false, or GoatCounter's words for them: "public" and "private" (its "secret", a dashboard shown
    to whoever has a secret link, logsvc doesn't have)."""

    WORDS = {"public": True, "private": False}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, str):
            if data not in self.WORDS:
                raise serializers.ValidationError('Must be true or false, or "public" or "private".')
            return self.WORDS[data]
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "enum": [0]},
            {"type": "integer", "minimum": MIN_RETENTION_DAYS, "maximum": MAX_RETENTION_DAYS},
        ]
    }
)
class DataRetentionField(serializers.IntegerField):
    """Days, as GoatCounter's Go decoder takes them into an int: a JSON integer, not "31", true or 31.0; and 0 (for
    ever) or at least MIN_RETENTION_DAYS, as GoatCounter validates it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, max_value=MAX_RETENTION_DAYS, validators=[validate_data_retention], **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class SiteSettingsSerializer(serializers.Serializer):
    public = PublicField(required=False, help_text='Anyone may read the dashboard: true or "public".')
    timezone = TimeZoneField(
        required=False, validators=[validate_timezone], help_text="IANA zone for days and hours in stats."
    )
    ignore_ips = serializers.ListField(child=IPAddressField(), required=False, max_length=100)
    data_retention = DataRetentionField(
        required=False,
        help_text="Delete hits older than this many days (0, the default: keep them); at least 31. The stats keep "
        "their counts; exports have only the hits kept.",
    )


MAX_DOMAINS = 20


class GoatCounterSiteSettingsSerializer(serializers.Serializer):
    public = serializers.ChoiceField(["public", "private"])
    ignore_ips = serializers.ListField(child=serializers.CharField())
    allow_counter = serializers.BooleanField()
    data_retention = serializers.IntegerField(help_text="Days hits are kept; 0: for ever.")


class SiteSerializer(serializers.ModelSerializer):
    """A site as /api/v0/sites shows it; `settings` groups what GoatCounter calls the site's settings."""

    code = serializers.CharField(validators=[CODE_VALIDATOR], max_length=50)
    domains = serializers.ListField(
        child=DomainField(max_length=253, validators=[DOMAIN_VALIDATOR]), required=False, max_length=MAX_DOMAINS
    )
    cname = DomainField(
        max_length=253,
        validators=[DOMAIN_VALIDATOR],
        required=False,
        help_text="GoatCounter's custom domain: added to `domains` (the pixel finds the site by it); in answers, "
        "the first of `domains`.",
    )
    link_domain = StrictCharField(required=False, allow_blank=True, max_length=255)
    settings = SiteSettingsSerializer(required=False)
    setttings = GoatCounterSiteSettingsSerializer(
        read_only=True, help_text="GoatCounter's settings of the site, under its (misspelt) key and with its types."
    )
    user_defaults = serializers.DictField(read_only=True)
    state = serializers.CharField(read_only=True, help_text='"a": active.')
    received_data = serializers.BooleanField(read_only=True)
    first_hit_at = serializers.CharField(read_only=True)
    created_at = serializers.CharField(read_only=True)
    updated_at = serializers.CharField(read_only=True)

    class Meta:
        model = Site
        fields = [
            "id",
            "code",
            "cname",
            "link_domain",
            "domains",
            "settings",
            "setttings",
            "user_defaults",
            "state",
            "received_data",
            "first_hit_at",
            "created_at",
            "updated_at",
        ]

    def to_representation(self, site: Site) -> dict[str, Any]:
        domains = [domain.domain for domain in site.domains.all()]
        # The first hit recorded, by the (site, id) index: whether the site has data, and since when (GoatCounter's
        # first_hit_at is the site's creation until then).
        first_hit = Hit.objects.filter(site=site).order_by("id").values_list("created_at", flat=True).first()
        return {
            "id": site.pk,
            "code": site.code,
            **({"cname": domains[0]} if domains else {}),  # no null: the document says string
            "link_domain": site.link_domain,
            "domains": domains,
            "settings": {
                "public": site.public,
                "timezone": site.timezone,
                "ignore_ips": site.ignore_ips,
                "data_retention": site.data_retention,
            },
            "setttings": {
                "public": "public" if site.public else "private",
                "ignore_ips": site.ignore_ips,
                "allow_counter": False,
                "data_retention": site.data_retention,
            },
            "user_defaults": {},
            "state": "a",
            "received_data": first_hit is not None,
            "first_hit_at": rfc3339(first_hit or site.created_at),
            "created_at": rfc3339(site.created_at),
            "updated_at": rfc3339(site.updated_at),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        cname = attrs.pop("cname", None)
        if cname:
            domains = attrs.get("domains")
            if domains is None:
                domains = [domain.domain for domain in self.instance.domains.all()] if self.instance else []
            domains = sorted({*domains, cname})
            if len(domains) > MAX_DOMAINS:
                raise serializers.ValidationError(
                    {"cname": [f"A site has at most {MAX_DOMAINS} domains: leave one out of domains for it."]}
                )
            try:
                attrs["domains"] = self.validate_domains(domains)
            except serializers.ValidationError as error:
                raise serializers.ValidationError({"cname": error.detail}) from None
        return attrs

    def validate_code(self, code: str) -> str:
        others = Site.objects.filter(code=code)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
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
        taken = Domain.objects.filter(domain__in=domains)
        if self.instance is not None:
            taken = taken.exclude(site_id=self.instance.pk)
        # first(), not exists() then first(): a domain deleted in between was an AttributeError (a 500)
        if (other := taken.first()) is not None:
            raise serializers.ValidationError(f"{other.domain} belongs to another site.")
        return domains

    @transaction.atomic
    def save(self, **kwargs: Any) -> Site:
        data = {**self.validated_data, **kwargs}
        domains = data.pop("domains", None)
        site = self.instance or Site(owner=data.pop("owner"), created_by_key=data.pop("created_by_key", None))
        for name, value in data.pop("settings", {}).items():
            setattr(site, name, value)
        for name in ("code", "link_domain"):
            if name in data:
                setattr(site, name, data[name])
        site.save()
        if site.data_retention:
            retention.schedule()  # the worker's passes, queued once (they may never have been)
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
    """GoatCounter's export object, less the server path it leaks. A field without a value is left out where
    GoatCounter's document allows no null (clients test `"error" in export`), except `finished_at`: GoatCounter
    sends it as null while the export runs, and its clients poll for that."""

    format = serializers.ChoiceField(Export.FORMATS)
    start_from_hit_id = serializers.IntegerField(required=False)
    start_from_day = serializers.CharField(required=False)
    last_hit_id = serializers.IntegerField(required=False)
    created_at = serializers.CharField()
    finished_at = serializers.CharField(allow_null=True, help_text="null until the export has finished.")
    num_rows = serializers.IntegerField(required=False, help_text="Once finished.")
    size = serializers.CharField(required=False, help_text="MB, one decimal; once finished.")
    hash = serializers.CharField(required=False, help_text="Once finished.")
    error = serializers.CharField(required=False, help_text="Only when the export failed.")
    expires_at = serializers.CharField(required=False, help_text="Once finished without error.")

    class Meta:
        model = Export
        fields = [
            "id",
            "site_id",
            "format",
            "start_from_hit_id",
            "start_from_day",
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
        optional = {
            "start_from_hit_id": export.start_from_hit_id,
            "start_from_day": rfc3339(export.start_from_day),
            "last_hit_id": export.last_hit_id,
            "num_rows": export.num_rows,
            "size": export.size or None,
            "hash": export.hash or None,
            "error": export.error or None,
            "expires_at": rfc3339(export.expires_at) if finished and not export.error else None,
        }
        return {
            "id": export.pk,
            "site_id": export.site_id,
            "format": export.format,
            "created_at": rfc3339(export.created_at),
            "finished_at": rfc3339(export.finished_at),
        } | {name: value for name, value in optional.items() if value is not None}


class SiteDeletionSerializer(serializers.Serializer):
    confirm = serializers.CharField(max_length=50, help_text="The site's code: the site goes for good.")

    def validate_confirm(self, value: str) -> str:
        if value != self.context["site"].code:
            raise serializers.ValidationError("Send the site's code to confirm that the site should go.")
        return value


class HitsDeletionSerializer(serializers.Serializer):
    before = serializers.DateField(help_text="Hits before this day (YYYY-MM-DD, in the site's time zone) go.")

    def validate_before(self, value: date) -> date:
        if value.year < 1970 or value > tz.now().date() + timedelta(days=2):
            raise serializers.ValidationError("A day from 1970 to today.")
        return value
