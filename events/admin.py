from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from events.models import Event, EventRetention, LogMessage, LogRetention, SavedSearch
from logsvc import retention


@admin.register(LogMessage)
class LogMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "created", "severity", "application", "category", "user", "short_message", "owner")
    list_filter = ("severity", "created", "application", "category")
    search_fields = ("message", "application", "category", "user", "owner__username")
    raw_id_fields = ("owner",)
    date_hierarchy = "created"
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is slow

    @admin.display(description="message")
    def short_message(self, obj: LogMessage) -> str:
        return obj.message[:80]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("uid", "date", "name", "trace_id", "client_id", "owner", "created")
    list_filter = ("date", "name")
    search_fields = ("uid", "name", "trace_id", "owner__username")
    raw_id_fields = ("owner",)
    readonly_fields = ("uid", "created")
    date_hierarchy = "date"
    show_full_result_count = False


class RetentionAdmin(admin.ModelAdmin):
    """Saving a rule makes sure the worker's retention passes are queued (logsvc.retention.schedule)."""

    raw_id_fields = ("owner",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        retention.schedule()


@admin.register(LogRetention)
class LogRetentionAdmin(RetentionAdmin):
    list_display = ("owner", "application", "up_to_severity", "days")
    list_filter = ("up_to_severity",)
    search_fields = ("owner__username", "application")


@admin.register(EventRetention)
class EventRetentionAdmin(RetentionAdmin):
    list_display = ("owner", "name", "days")
    search_fields = ("owner__username", "name")


@admin.register(SavedSearch)
class SavedSearchAdmin(admin.ModelAdmin):
    list_display = ("name", "page", "query", "owner", "created")
    list_filter = ("page",)
    search_fields = ("name", "query", "owner__username")
    raw_id_fields = ("owner",)
