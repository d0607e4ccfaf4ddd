from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from social import services
from social.models import Activity, Comment, Counter, Follow, Like, Log, LogTag, Tag


class BigTableAdmin(admin.ModelAdmin):
    # "123 of 4,567,890 selected" needs a COUNT(*) of the whole table on every page
    show_full_result_count = False
    list_per_page = 50


@admin.register(Tag)
class TagAdmin(BigTableAdmin):
    list_display = ("name", "created")
    list_filter = ("created",)
    search_fields = ("name",)


class LogTagInline(admin.TabularInline):
    model = LogTag
    fields = ("tag",)
    raw_id_fields = ("tag",)
    extra = 0


@admin.register(Log)
class LogAdmin(BigTableAdmin):
    list_display = ("id", "user", "created", "source", "__str__")
    list_filter = ("created", "source")
    list_select_related = ("user",)
    search_fields = ("user__username", "markdown")
    raw_id_fields = ("user", "mentions")
    readonly_fields = ("content",)
    date_hierarchy = "created"

    # Deleting goes through the service, so page counts and notifications stay right.
    def delete_model(self, request: HttpRequest, obj: Log) -> None:
        services.delete_log(log=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Log]) -> None:
        for log in queryset:
            services.delete_log(log=log)


@admin.register(LogTag)
class LogTagAdmin(BigTableAdmin):
    list_display = ("log", "tag", "user", "created")
    list_filter = ("created",)
    list_select_related = ("tag", "user")
    search_fields = ("tag__name", "user__username")
    raw_id_fields = ("log", "tag", "user")


@admin.register(Comment)
class CommentAdmin(BigTableAdmin):
    list_display = ("id", "log", "user", "created", "__str__")
    list_filter = ("created",)
    list_select_related = ("user", "log")
    search_fields = ("user__username", "markdown")
    raw_id_fields = ("log", "user", "tags", "mentions")
    readonly_fields = ("content",)

    def delete_model(self, request: HttpRequest, obj: Comment) -> None:
        services.delete_comment(comment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Comment]) -> None:
        for comment in queryset:
            services.delete_comment(comment=comment)


@admin.register(Like)
class LikeAdmin(BigTableAdmin):
    list_display = ("log", "user", "created")
    list_filter = ("created",)
    list_select_related = ("user",)
    search_fields = ("user__username",)
    raw_id_fields = ("log", "user")


@admin.register(Follow)
class FollowAdmin(BigTableAdmin):
    list_display = ("follower", "followee", "created")
    list_filter = ("created",)
    list_select_related = ("follower", "followee")
    search_fields = ("follower__username", "followee__username")
    raw_id_fields = ("follower", "followee")


@admin.register(Activity)
class ActivityAdmin(BigTableAdmin):
    list_display = ("id", "type", "recipient", "originator", "log", "comment", "created")
    list_filter = ("type", "created")
    list_select_related = ("recipient", "originator")
    search_fields = ("recipient__username", "originator__username")
    raw_id_fields = ("recipient", "originator", "log", "comment")


@admin.register(Counter)
class CounterAdmin(BigTableAdmin):
    list_display = ("kind", "key", "value")
    list_filter = ("kind",)
    search_fields = ("=key",)
    actions = ["recount"]

    @admin.action(description="Recount every counter from the rows (slow on big tables)")
    def recount(self, request: HttpRequest, queryset: Any) -> None:
        services.recount()
        self.message_user(request, "Every counter was rebuilt.")
