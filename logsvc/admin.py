from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest
from django.utils import timezone

from logsvc.deletion import request_deletion
from logsvc.models import ApiKey, Deletion, IdempotencyRecord, RateLimitCounter, RetentionRun, StoredFile, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Profile", {"fields": ("bio", "url", "location", "avatar", "timezone")}),
    )
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "date_joined")
    actions = ["delete_accounts"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Django's own delete (the button and "Delete selected") would collect every row of the account in one
        # transaction and leave others' littlelogs counts wrong: accounts go through delete_accounts instead.
        return False

    @admin.action(description="Delete the selected accounts and everything of theirs (in the background)")
    def delete_accounts(self, request: HttpRequest, queryset: Any) -> None:
        """As the user's own deletion: sites with their hits, logs, events, littlelogs (others' counts put right),
        keys, tokens, files. Django's "Delete selected" would load every row to cascade, in one transaction."""
        started = 0
        for user in queryset.exclude(pk=request.user.pk):
            started += request_deletion(kind=Deletion.Kind.ACCOUNT, target=user.pk, requested_by="admin")[1]
        if queryset.filter(pk=request.user.pk).exists():
            self.message_user(
                request, "Your own account was left alone: delete it from its own page.", messages.WARNING
            )
        self.message_user(request, f"Deleting {started} account(s) in the background; they can no longer sign in.")


@admin.register(Deletion)
class DeletionAdmin(admin.ModelAdmin):
    list_display = ("kind", "target", "before", "requested_by", "created", "started", "deleted", "error")
    list_filter = ("kind", "requested_by")
    search_fields = ("=target",)
    readonly_fields = ("kind", "target", "before", "requested_by", "created", "started", "deleted", "error")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started by the pages, the APIs and the users' action, which also lock the account out


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


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    """What each pass of retention deleted (logsvc.retention); written by the worker and `prune`, read-only here."""

    list_display = ("started_at", "finished_at", "trigger", "summary", "error")
    list_filter = ("trigger", "started_at")
    readonly_fields = ("started_at", "finished_at", "trigger", "deleted", "error")

    @admin.display(description="deleted")
    def summary(self, run: RetentionRun) -> str:
        return run.summary()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StoredFile)
class StoredFileAdmin(admin.ModelAdmin):
    """Exports and avatars kept in PostgreSQL (logsvc.storage): listed to see what takes room, never edited."""

    list_display = ("name", "size", "created_at")
    search_fields = ("name",)
    readonly_fields = ("name", "size", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written through the storage (an upload, an export), never by hand
