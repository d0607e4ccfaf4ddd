from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from analytics import rollups
from analytics.models import BotHit, Domain, Export, Hit, Import, Path, RollupFailure, Site
from logsvc import retention


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 1


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("code", "owner", "domain_list", "timezone", "public", "data_retention", "created_at")
    list_filter = ("public", "created_at")
    search_fields = ("code", "owner__username", "domains__domain")
    raw_id_fields = ("owner",)
    filter_horizontal = ("api_keys",)
    inlines = [DomainInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner").prefetch_related("domains")

    def save_model(self, request: HttpRequest, obj: Site, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.data_retention:
            retention.schedule()  # the worker's retention passes, queued once

    @admin.display(description="domains")
    def domain_list(self, site: Site) -> str:
        return ", ".join(domain.domain for domain in site.domains.all())


@admin.register(Path)
class PathAdmin(admin.ModelAdmin):
    list_display = ("path", "title", "event", "site")
    list_filter = ("event",)
    search_fields = ("path", "title")
    raw_id_fields = ("site",)
    show_full_result_count = False


@admin.register(Hit)
class HitAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "site", "path", "first_visit", "ref", "browser", "system", "location")
    list_filter = ("first_visit", "ref_scheme", "created_at")
    search_fields = ("path__path", "ref")
    raw_id_fields = ("site", "path")
    list_select_related = ("site", "path")
    date_hierarchy = "created_at"
    show_full_result_count = False  # COUNT(*) over millions of hits on every page is slow


@admin.register(BotHit)
class BotHitAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "site", "path", "bot", "user_agent")
    list_filter = ("bot", "created_at")
    search_fields = ("path", "user_agent")
    raw_id_fields = ("site",)
    list_select_related = ("site",)
    show_full_result_count = False


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ("id", "site", "created_at", "finished_at", "num_rows", "size", "attempts", "error")
    list_filter = ("finished_at",)
    raw_id_fields = ("site",)
    readonly_fields = ("file",)


# ImportedRow, ImportedKeys and ImportedVisits are not here: hashes of imported lines and of visits say nothing to a
# person (and ImportedRow's composite key has no admin).
@admin.register(Import)
class ImportAdmin(admin.ModelAdmin):
    list_display = ("id", "site", "name", "created_at", "finished_at", "lines", "imported", "duplicates", "bad")
    list_filter = ("finished_at",)
    search_fields = ("name", "site__code")
    raw_id_fields = ("site",)
    readonly_fields = ("file",)


@admin.register(RollupFailure)
class RollupFailureAdmin(admin.ModelAdmin):
    """Hits the rollups could not fold in (the other sites' were). Fix the cause, then "Retry now"; deleting a
    failure leaves its hits out of the stats for good (they stay in the hits and in exports)."""

    list_display = ("id", "site", "from_hit_id", "to_hit_id", "attempts", "created_at", "last_attempt_at", "error")
    list_filter = ("created_at",)
    raw_id_fields = ("site",)
    readonly_fields = ("site", "from_hit_id", "to_hit_id", "error", "attempts", "created_at", "last_attempt_at")
    actions = ["retry"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry now")
    def retry(self, request, queryset) -> None:
        fixed, failing = rollups.retry_failures(queryset)
        self.message_user(request, f"{fixed} range(s) rolled up; {failing} still failing.")
