"""littlelogs JSON: input serializers, and the seed's output shapes.

Output is built by plain functions (as events/views.py does): a page of 20 logs nests users, comments,
tags, mentions and likes, and DRF field objects cost several times more CPU for the same dict. The
Serializer classes below describe the same shapes for OpenAPI; test_shapes.py keeps the two in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import models
from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Lower
from django.templatetags.static import static
from rest_framework import serializers
from rest_framework.request import Request

from logsvc.fields import HttpURLField, StrictCharField, TimeZoneField
from logsvc.models import User
from social.models import Activity, Comment, Follow, Like, Log, Tag

CONTENT_MAX_LENGTH = 10_000
DEFAULT_AVATAR = "social/avatar.svg"


def iso(value: datetime) -> str:
    """2015-11-02T00:23:27Z, as the seed writes times."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Querysets that load everything a page shows in a fixed number of queries -----------------------


def tags_prefetch(prefix: str = "") -> Prefetch:
    # Fresh Prefetch objects each time: Django adds prefixes to them in place when they nest.
    return Prefetch(f"{prefix}tags", queryset=Tag.objects.order_by(Lower("name")))


def mentions_prefetch(prefix: str = "") -> Prefetch:
    return Prefetch(f"{prefix}mentions", queryset=User.objects.only("id", "username").order_by("username"))


LIKE_FIELDS = ("id", "log_id", "created", "user_id", "user__id", "user__username")


def log_prefetches(prefix: str = "") -> list[Prefetch]:
    comments = Comment.objects.select_related("user").prefetch_related(tags_prefetch(), mentions_prefetch())
    return [
        tags_prefetch(prefix),
        mentions_prefetch(prefix),
        # a like shows its user's name only: loading whole users was most of a busy page's cost
        Prefetch(
            f"{prefix}likes", queryset=Like.objects.select_related("user").only(*LIKE_FIELDS).order_by("created", "id")
        ),
        Prefetch(f"{prefix}comments", queryset=comments.order_by("created", "id")),
    ]


def logs_with_details(logs: QuerySet[Log]) -> QuerySet[Log]:
    """Logs with their author, tags, mentions, likes and comments: 1 + 6 queries for any page size."""
    return logs.select_related("user").prefetch_related(*log_prefetches())


def activity_with_details(activity: QuerySet[Activity]) -> QuerySet[Activity]:
    """Activity with its originator, full log and full comment: 1 + 8 queries for any page size."""
    return activity.select_related("originator", "log__user", "comment__user").prefetch_related(
        *log_prefetches("log__"), tags_prefetch("comment__"), mentions_prefetch("comment__")
    )


# --- Output ---------------------------------------------------------------------------------------


def user_json(user: User, request: Request) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "bio": user.bio,
        "url": user.url,
        "location": user.location,
        # the seed always gives an absolute URL: a default picture when the user has none
        "avatar": request.build_absolute_uri(user.avatar.url if user.avatar else static(DEFAULT_AVATAR)),
        "timezone": user.timezone,
    }


def comment_json(comment: Comment, request: Request) -> dict[str, Any]:
    return {
        "id": comment.pk,
        "created": iso(comment.created),
        "user": user_json(comment.user, request),
        "content": comment.content,
        "source": comment.source or None,
        "tags": [tag.name for tag in comment.tags.all()],
        "mentions": [user.username for user in comment.mentions.all()],
    }


def log_json(log: Log, request: Request) -> dict[str, Any]:
    return {
        "id": log.pk,
        "created": iso(log.created),
        "user": user_json(log.user, request),
        "source": log.source or None,
        "content": log.content,
        "comments": [comment_json(comment, request) for comment in log.comments.all()],
        "tags": [tag.name for tag in log.tags.all()],
        "mentions": [user.username for user in log.mentions.all()],
        "likes": [{"user": like.user.username, "created": iso(like.created)} for like in log.likes.all()],
    }


ACTIVITY_TEXT = {
    Activity.Type.COMMENT: "{} commented on your log",
    Activity.Type.COMMENT_AFTER: "{} commented after you on a log",
    Activity.Type.LIKE: "{} liked your log",
    Activity.Type.FOLLOW: "{} followed you",
    Activity.Type.MENTION: "{} mentioned you in a log",
}


def activity_text(item: Activity) -> str:
    if item.type == Activity.Type.MENTION and item.comment_id:
        return f"{item.originator.username} mentioned you in a comment"
    return ACTIVITY_TEXT[Activity.Type(item.type)].format(item.originator.username)


def activity_json(item: Activity, request: Request) -> dict[str, Any]:
    return {
        "id": item.pk,
        "created": iso(item.created),
        "type": item.type,
        "content": activity_text(item),
        "originator": user_json(item.originator, request),
        "log": log_json(item.log, request) if item.log else None,
        "comment": comment_json(item.comment, request) if item.comment else None,
    }


def tag_json(tag: Tag) -> dict[str, Any]:
    return {"name": tag.name, "created": iso(tag.created)}


def followee_json(follow: Follow, request: Request) -> dict[str, Any]:
    return user_json(follow.followee, request)


# --- Input ----------------------------------------------------------------------------------------


class ContentSerializer(serializers.Serializer):
    content = StrictCharField(max_length=CONTENT_MAX_LENGTH, help_text="Markdown; #tags and @mentions link.")


class ProfileSerializer(serializers.ModelSerializer):
    """What a user may change of their own profile (PATCH /users/$self/)."""

    class Meta:
        model = User
        fields = ["first_name", "last_name", "bio", "url", "location", "timezone", "avatar"]

    serializer_field_mapping = {  # a JSON string only, not a number taken as one
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }
    timezone = TimeZoneField(required=False)
    url = HttpURLField(required=False, allow_blank=True, max_length=200)

    def validate_timezone(self, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise serializers.ValidationError("Use an IANA time zone name, such as Australia/Melbourne.") from None
        return value


# --- The same shapes, described for OpenAPI ---------------------------------------------------------


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    bio = serializers.CharField()
    url = serializers.CharField()
    location = serializers.CharField()
    avatar = serializers.URLField(allow_null=True, help_text="Absolute URL, or null when none.")
    timezone = serializers.CharField()


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.DateTimeField()
    user = UserSerializer()
    content = serializers.CharField(help_text="Sanitised HTML rendered from the Markdown.")
    source = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    mentions = serializers.ListField(child=serializers.CharField())


class LikeSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="The username of who liked it.")
    created = serializers.DateTimeField()


class LogSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.DateTimeField()
    user = UserSerializer()
    source = serializers.CharField(allow_null=True, help_text="The OAuth app that posted it, or null.")
    content = serializers.CharField(help_text="Sanitised HTML rendered from the Markdown.")
    comments = CommentSerializer(many=True)
    tags = serializers.ListField(child=serializers.CharField())
    mentions = serializers.ListField(child=serializers.CharField())
    likes = LikeSerializer(many=True)


class ActivitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.DateTimeField()
    type = serializers.ChoiceField(choices=Activity.Type.choices)
    content = serializers.CharField(help_text='Plain text, e.g. "rpgdan commented after you on a log".')
    originator = UserSerializer()
    log = LogSerializer(allow_null=True)
    comment = CommentSerializer(allow_null=True)


class TagSerializer(serializers.Serializer):
    name = serializers.CharField()
    created = serializers.DateTimeField()


class PreviewSerializer(serializers.Serializer):
    content = serializers.CharField(help_text="The HTML the Markdown renders to.")
    tags = serializers.ListField(child=serializers.CharField())
    mentions = serializers.ListField(child=serializers.CharField())
