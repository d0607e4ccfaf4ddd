"""littlelogs JSON: input serializers, and the seed's output shapes.

Output is built by plain functions (as events/views.py does): a page of 20 logs nests users, comments,
tags, mentions and likes, and DRF field objects cost several times more CPU for the same dict. The
Serializer classes below describe the same shapes for OpenAPI; test_shapes.py keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.templatetags.static import static
from rest_framework import serializers
from rest_framework.request import Request

from logsvc.fields import HttpURLField, StrictCharField, TimeZoneField, time_zones
from logsvc.models import User
from social.markdown import RENDERED_MAX_LENGTH, Rendered, RenderedTooLarge, render
from social.models import Activity, Comment, Follow, Like, Log, Tag

CONTENT_MAX_LENGTH = 10_000
# What one log carries inline, wherever it appears (a list, its own page, an activity item): its latest
# comments and likes, oldest first as the seed shows them, with `comments_count` and `likes_count`; the
# rest are paged at /api/1/logs/<id>/comments/ and /likes/. So a log's size no longer grows with them.
COMMENTS_INLINE = 3
LIKES_INLINE = 20
BIO_MAX_LENGTH = 1_000  # a profile rides along in every log, comment and activity item; names 150, location 100
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


def comments_with_details(comments: QuerySet[Comment]) -> QuerySet[Comment]:
    return comments.select_related("user").prefetch_related(tags_prefetch(), mentions_prefetch())


def log_prefetches(prefix: str = "") -> list[Prefetch]:
    """A log's tags and mentions. Its latest comments and likes come from with_inline(), once the page is known."""
    return [tags_prefetch(prefix), mentions_prefetch(prefix)]


def _latest(model: type[Comment | Like], limit: int, log_ids: list[int]) -> RawSQL:
    """The ids of each log's latest `limit` rows of model: an index range per log (LATERAL), however many it has."""
    table = model._meta.db_table
    return RawSQL(
        f"SELECT x.id FROM unnest(%s::bigint[]) AS l(id) CROSS JOIN LATERAL "
        f"(SELECT id FROM {table} WHERE log_id = l.id ORDER BY created DESC, id DESC LIMIT {int(limit)}) AS x",
        (log_ids,),
    )


def with_inline(logs: Iterable[Log]) -> None:
    """Gives each log `latest_comments` and `latest_likes` (newest first) and `comments_total` and
    `likes_total`: 5 queries for any page, each reading only index ranges of the page's logs."""
    logs = [log for log in logs if not hasattr(log, "latest_comments")]
    ids = sorted({log.pk for log in logs})
    if not ids:
        return
    comments = Comment.objects.filter(pk__in=_latest(Comment, COMMENTS_INLINE, ids)).order_by("-created", "-id")
    likes = Like.objects.filter(pk__in=_latest(Like, LIKES_INLINE, ids)).select_related("user").only(*LIKE_FIELDS)
    prefetch_related_objects(
        logs,
        Prefetch("comments", queryset=comments_with_details(comments), to_attr="latest_comments"),
        # a like shows its user's name only: loading whole users was most of a busy page's cost
        Prefetch("likes", queryset=likes.order_by("-created", "-id"), to_attr="latest_likes"),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.id, (SELECT count(*) FROM {Comment._meta.db_table} WHERE log_id = l.id), "
            f"(SELECT count(*) FROM {Like._meta.db_table} WHERE log_id = l.id) FROM unnest(%s::bigint[]) AS l(id)",
            [ids],
        )
        totals = {log_id: (n_comments, n_likes) for log_id, n_comments, n_likes in cursor.fetchall()}
    for log in logs:
        log.comments_total, log.likes_total = totals.get(log.pk, (0, 0))


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


def like_json(like: Like) -> dict[str, Any]:
    return {"user": like.user.username, "created": iso(like.created)}


def log_json(log: Log, request: Request) -> dict[str, Any]:
    """The seed's log, with its latest COMMENTS_INLINE comments and LIKES_INLINE likes (from with_inline(), which
    a page calls once for all its logs) and how many there are in all."""
    with_inline([log])  # a no-op when the page's logs have them already
    comments = log.latest_comments[::-1]
    likes = log.latest_likes[::-1]
    return {
        "id": log.pk,
        "created": iso(log.created),
        "user": user_json(log.user, request),
        "source": log.source or None,
        "content": log.content,
        "comments": [comment_json(comment, request) for comment in comments],
        "comments_count": log.comments_total,
        "tags": [tag.name for tag in log.tags.all()],
        "mentions": [user.username for user in log.mentions.all()],
        "likes": [like_json(like) for like in likes],
        "likes_count": log.likes_total,
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
    """A log's or comment's Markdown; valid only if it renders within RENDERED_MAX_LENGTH (then `rendered`
    holds the result, so the view does not render it twice)."""

    content = StrictCharField(
        max_length=CONTENT_MAX_LENGTH,
        help_text=(
            f"Markdown; #tags and @mentions link. At most {CONTENT_MAX_LENGTH:,} characters, rendering to at most "
            f"{RENDERED_MAX_LENGTH:,} characters of HTML."
        ),
    )

    rendered: Rendered

    def validate_content(self, value: str) -> str:
        try:
            self.rendered = render(value)
        except RenderedTooLarge as error:
            raise serializers.ValidationError(str(error)) from None
        return value


class ProfileSerializer(serializers.ModelSerializer):
    """What a user may change of their own profile (PATCH /users/$self/)."""

    class Meta:
        model = User
        fields = ["first_name", "last_name", "bio", "url", "location", "timezone", "avatar"]
        extra_kwargs = {"bio": {"max_length": BIO_MAX_LENGTH}}

    serializer_field_mapping = {  # a JSON string only, not a number taken as one
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }
    timezone = TimeZoneField(required=False)
    url = HttpURLField(required=False, allow_blank=True, max_length=200)

    def validate_timezone(self, value: str) -> str:
        if value not in time_zones():
            raise serializers.ValidationError("Use an IANA time zone name, such as Australia/Melbourne.")
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
    comments = CommentSerializer(
        many=True, help_text=f"The latest {COMMENTS_INLINE}, oldest first; all at /api/1/logs/<id>/comments/."
    )
    comments_count = serializers.IntegerField(help_text="How many comments it has in all.")
    tags = serializers.ListField(child=serializers.CharField())
    mentions = serializers.ListField(child=serializers.CharField())
    likes = LikeSerializer(
        many=True, help_text=f"The latest {LIKES_INLINE}, oldest first; all at /api/1/logs/<id>/likes/."
    )
    likes_count = serializers.IntegerField(help_text="How many likes it has in all.")


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
