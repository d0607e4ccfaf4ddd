from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest
from django.utils import timezone

from logsvc.models import ApiKey, IdempotencyRecord, RateLimitCounter, StoredFile, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Profile", {"fields": ("bio", "url", "location", "avatar", "timezone")}),
    )
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "date_joined")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "user", "scopes", "created", "last_used", "expires", "revoked")
    list_filter = ("created", "last_used", "expires", "revoked")
    search_fields = ("prefix", "name", "user__username", "user__email")
    readonly_fields = ("prefix", "created", "last_used")
    raw_id_fields = ("user",)
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if not change:
            raw = obj.set_secret()
            messages.warning(request, f"The new API key is {raw} — copy it now: it is not shown again.")
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        count = queryset.filter(revoked__isnull=True).update(revoked=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "owner", "path", "status", "created")
    list_filter = ("status", "created")
    search_fields = ("key", "owner__username", "path")
    raw_id_fields = ("owner",)
    readonly_fields = ("body",)


@admin.register(RateLimitCounter)
class RateLimitCounterAdmin(admin.ModelAdmin):
    list_display = ("key", "window_start", "count", "expires")
    search_fields = ("key",)
    list_filter = ("expires",)


@admin.register(StoredFile)
class StoredFileAdmin(admin.ModelAdmin):
    """Exports and avatars kept in PostgreSQL (logsvc.storage): listed to see what takes room, never edited."""

    list_display = ("name", "size", "created_at")
    search_fields = ("name",)
    readonly_fields = ("name", "size", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written through the storage (an upload, an export), never by hand
