"""littlelogs JSON: input serializers, and the seed's output shapes.

Output is built by plain functions, not DRF fields (which cost several times more CPU for the same dict):
pages of logs, comments and activity from rows in social.pages, single objects here. The Serializer
classes below describe the same shapes for OpenAPI; test_shapes.py keeps the two in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import models
from rest_framework import serializers
from rest_framework.request import Request

from logsvc.fields import HttpURLField, StrictCharField, TimeZoneField, time_zones
from logsvc.models import User
from social.markdown import RENDERED_MAX_LENGTH, Rendered, RenderedTooLarge, render
from social.models import Activity, Like, Tag
from social.pages import COMMENTS_INLINE, LIKES_INLINE, avatar_urls, user_dict

CONTENT_MAX_LENGTH = 10_000
BIO_MAX_LENGTH = 1_000  # a profile rides along in every log, comment and activity item; names 150, location 100
LIKE_FIELDS = ("id", "log_id", "created", "user_id", "user__id", "user__username")


def iso(value: datetime) -> str:
    """2015-11-02T00:23:27Z, as the seed writes times (social.pages has PostgreSQL write them alike)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Output of single objects (pages of logs, comments and activity: social.pages) -----------------


def user_json(user: User, request: Request) -> dict[str, Any]:
    values = (user.pk, user.username, user.first_name, user.last_name, user.bio, user.url, user.location)
    return user_dict((*values, user.avatar.name, user.timezone), avatar_urls(request))


def like_json(like: Like) -> dict[str, Any]:
    return {"user": like.user.username, "created": iso(like.created)}


def tag_json(tag: Tag) -> dict[str, Any]:
    return {"name": tag.name, "created": iso(tag.created)}


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


class AccountDeletionSerializer(serializers.Serializer):
    confirm = serializers.CharField(max_length=150, help_text="Your username, typed out: the account goes for good.")

    def validate_confirm(self, value: str) -> str:
        if value != self.context["user"].username:
            raise serializers.ValidationError("Type your username exactly to confirm that the account should go.")
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
    source = serializers.CharField(allow_null=True)  # type: ignore[assignment]  # as in LogSerializer
    tags = serializers.ListField(child=serializers.CharField())
    mentions = serializers.ListField(child=serializers.CharField())


class LikeSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="The username of who liked it.")
    created = serializers.DateTimeField()


class LogSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.DateTimeField()
    user = UserSerializer()
    # DRF's metaclass takes declared fields off the class: Field.source, which the stubs see, is not overridden
    source = serializers.CharField(allow_null=True, help_text="The OAuth app that posted it, or null.")  # type: ignore[assignment]
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
