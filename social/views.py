"""littlelogs API (/api/1/): timelines, logs, comments, likes, follows, users and tags, at the seed's paths."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import oauthlib.common
from django.contrib.auth import logout
from django.db.models import Count, Max, QuerySet
from django.db.models.functions import Lower
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.models import AccessToken
from oauth2_provider.settings import oauth2_settings
from rest_framework import exceptions, generics, permissions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import BasePagination
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from logsvc.auth import AuthenticatedRequest
from logsvc.deletion import DeletionStatusSerializer, request_deletion
from logsvc.models import Deletion, User
from logsvc.pagination import LimitOffsetPagination, PreparedIds
from logsvc.parsers import FormParser, JSONParser
from logsvc.renderers import JSONRenderer
from social import services, timelines
from social.models import Comment, Counter, Follow, Like, Log, LogTag, Tag
from social.pages import activity_json, comments_json, logs_json
from social.serializers import (
    LIKE_FIELDS,
    AccountDeletionSerializer,
    ActivitySerializer,
    CommentSerializer,
    ContentSerializer,
    LikeSerializer,
    LogSerializer,
    PreviewSerializer,
    ProfileSerializer,
    TagSerializer,
    UserSerializer,
    like_json,
    tag_json,
    user_json,
)
from social.timelines import HomeTimeline

TRENDING_DAYS = 7
TRENDING_COUNT = 10

ERROR = inline_serializer("LittlelogsError", {"detail": serializers.CharField()})
FIELD_ERRORS = inline_serializer(
    "LittlelogsFieldErrors",
    {"content": serializers.ListField(child=serializers.CharField(), required=False)},
)
ERRORS = {
    400: OpenApiResponse(FIELD_ERRORS, description="Invalid input: a list of messages per field."),
    401: OpenApiResponse(ERROR, description="No valid access token or session (WWW-Authenticate: Bearer)."),
    403: OpenApiResponse(ERROR, description="The token lacks the read/write scope, or it is someone else's."),
    404: OpenApiResponse(ERROR, description="No such user, log, comment or tag."),
    429: OpenApiResponse(ERROR, description="Too many writes (RATE_LIMIT_LITTLELOGS): wait Retry-After seconds."),
}


class HeaderOAuth2Authentication(OAuth2Authentication):
    """An access token is read from `Authorization: Bearer` only, as the seed says to send it: never from
    `?access_token=` (RFC 9700 §4.3.2) nor from an `access_token` form field, which the toolkit would take."""

    def authenticate(self, request: Request) -> Any:
        """The toolkit's check of a bearer token (oauthlib's BearerToken.validate_request, which reads only the
        header, with the toolkit's validator), without first copying the whole request into oauthlib's: that copy,
        body included, was a sixth of a timeline page's CPU."""
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header.split(" ", 1)[0].lower() != "bearer":
            return None
        parts = header.split()
        token = parts[1] if len(parts) == 2 else None
        # the path, as the toolkit gives it (RFC 8707: a token restricted to a resource is checked against it)
        core = oauthlib.common.Request(request.get_full_path().split("?", 1)[0], request.method, headers={})
        if oauth2_settings.OAUTH2_VALIDATOR_CLASS().validate_bearer_token(token, [], core):
            return core.user, core.access_token
        # the WWW-Authenticate header's error (the toolkit's authenticate_header() reads it)
        request.oauth2_error = getattr(core, "oauth2_error", {})  # type: ignore[attr-defined]
        return None


class OAuth2Scheme(OpenApiAuthenticationExtension):
    """littlelogs' OAuth2 authorization-code flow; reads need the `read` scope, writes `write`."""

    target_class = "social.views.HeaderOAuth2Authentication"
    name = "oauth2"
    priority = 1  # over drf-spectacular's own, which knows no flows or scopes for these views

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        flow = {
            "authorizationUrl": "/oauth/authorize",
            "tokenUrl": "/oauth/token",
            "refreshUrl": "/oauth/token",
            "scopes": {"read": "Read logs, timelines and profiles", "write": "Post, comment, like and follow"},
        }
        return {"type": "oauth2", "flows": {"authorizationCode": flow}}

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]]:
        return {self.name: ["read" if auto_schema.method in permissions.SAFE_METHODS else "write"]}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in statuses}


def list_schema(serializer: type[serializers.Serializer], *statuses: int, public: bool = False) -> Any:
    """A paged list's OpenAPI operation; public ones need no credentials."""
    # Stated either way: a subclass's schema merges into its parent's (HomeTimelineView is a LogListView).
    auth = [] if public else [{"oauth2": ["read"]}, {"cookieAuth": []}]
    # drf-spectacular types auth as names, but takes security requirement objects too (as here)
    return extend_schema(
        tags=["littlelogs"],
        responses={200: serializer(many=True), **errors(*statuses)},
        auth=auth,  # type: ignore[arg-type]
    )


class ScopeOrSession(permissions.BasePermission):
    """An OAuth token needs `read` for GET/HEAD/OPTIONS and `write` for the rest; a session user is
    not limited by scopes. Anonymous requests may only read views marked `public`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, AccessToken):
            scope = "read" if request.method in permissions.SAFE_METHODS else "write"
            if not request.auth.allow_scopes([scope]):
                self.message = f"This access token lacks the {scope!r} scope."
                return False
            return True
        if getattr(view, "public", False) and request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated)  # False: DRF answers 401


class LittlelogsView(APIView):
    error_family = "littlelogs"
    public = False
    throttle_scope = "littlelogs"  # writes only (get_throttles): reads are cheap, served from counters
    authentication_classes = [HeaderOAuth2Authentication, SessionAuthentication]
    permission_classes = [ScopeOrSession]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    pagination_class: type[BasePagination] | None = LimitOffsetPagination
    paginator: LimitOffsetPagination  # GenericAPIView's, for the views that page

    def get_throttles(self) -> list[Any]:
        return [] if self.request.method in permissions.SAFE_METHODS else super().get_throttles()

    def window(self) -> tuple[int, int]:
        """(offset, limit) of the page asked for, for a list that reads it with its count (a 400 for a bad limit
        or offset, as the paginator says)."""
        limit = self.paginator.get_limit(self.request)
        return self.paginator.get_offset(self.request), limit

    def page_ids(self, queryset: Any) -> list[int]:
        """The ids of the requested page's rows (social.pages builds the rows)."""
        return self.paginator.paginate_ids(queryset, self.request, view=self)


# The root's links, as DRF's DefaultRouter root lists its list routes: the endpoints that take no argument, then
# the others as templates (a client fills in the {name}).
ROOT_LINKS = [
    ("logs", "littlelogs-logs"),
    ("logs/create", "littlelogs-log-create"),
    ("logs/preview", "littlelogs-log-preview"),
    ("timelines/public", "littlelogs-public"),
    ("timelines/home", "littlelogs-home"),
    ("timelines/activity", "littlelogs-activity"),
    ("users/$self", "littlelogs-self"),
    ("tags", "littlelogs-tags"),
    ("tags/trending", "littlelogs-trending"),
]
ROOT_TEMPLATES = [
    "logs/{id}/",
    "logs/{id}/comments/",
    "logs/{id}/likes/",
    "logs/tag/{tag}/",
    "logs/user/{username}/",
    "users/{username}/",
    "users/following/{username}/",
    "users/followed-by/{username}/",
    "tags/user/{username}/",
]


class ApiRootView(LittlelogsView):
    """littlelogs' API: its endpoints, as links to follow in the browsable API."""

    public = True

    @extend_schema(
        tags=["littlelogs"],
        auth=[],
        responses={
            200: OpenApiResponse(
                inline_serializer("LittlelogsRoot", {"logs": serializers.URLField()}),
                description="Each endpoint's name and URL, then `templates` for those that take an id or a name.",
            )
        },
    )
    def get(self, request: Request) -> Response:
        links: dict[str, Any] = {name: reverse(url_name, request=request) for name, url_name in ROOT_LINKS}
        root = reverse("littlelogs-root", request=request)
        links["templates"] = [root + template for template in ROOT_TEMPLATES]
        return Response(links)


def source_of(request: Request) -> str:
    """The OAuth app a log or comment was posted from; blank for the website (a session)."""
    if isinstance(request.auth, AccessToken) and request.auth.application_id:
        return request.auth.application.name[:200]
    return ""


def get_log(log_id: int) -> Log:
    return get_object_or_404(Log.objects.select_related("user"), pk=log_id)


def log_response(request: Request, log_id: int, code: int = status.HTTP_200_OK) -> Response:
    """The log as a client sees it now, its comments and likes included."""
    found = logs_json([log_id], request)
    if not found:
        raise Http404("No Log matches the given query.")
    return Response(found[0], status=code)


# --- Timelines and log lists ----------------------------------------------------------------------


@extend_schema_view(get=list_schema(LogSerializer, public=True))
class LogListView(LittlelogsView, generics.ListAPIView):
    """All logs, newest first (also the public timeline)."""

    replica_reads = True  # its GETs tolerate a little lag (logsvc.replica)

    public = True
    serializer_class = LogSerializer

    def get_queryset(self) -> PreparedIds:  # type: ignore[override]
        logs, self.count = timelines.all_logs(*self.window())
        return logs

    def get_count(self, queryset: PreparedIds) -> int:
        return self.count

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.get_paginated_response(logs_json(self.page_ids(self.get_queryset()), request))


@extend_schema_view(get=list_schema(LogSerializer, 401, 403))
class HomeTimelineView(LogListView):
    """Your logs and those of everyone you follow, newest first."""

    public = False
    request: AuthenticatedRequest

    def get_queryset(self) -> HomeTimeline:  # type: ignore[override]
        return HomeTimeline(self.request.user, *self.window())

    def get_count(self, queryset: HomeTimeline) -> int:  # type: ignore[override]
        return queryset.count()


@extend_schema_view(get=list_schema(LogSerializer, 404, public=True))
class UserLogListView(LogListView):
    def get_queryset(self) -> PreparedIds:  # type: ignore[override]
        # the author's id and count only: the page's users are read with the page
        if (found := timelines.user_logs(self.kwargs["username"], *self.window())) is None:
            raise Http404("No User matches the given query.")
        logs, self.count = found
        return logs

    def get_count(self, queryset: PreparedIds) -> int:
        return self.count


@extend_schema_view(get=list_schema(LogSerializer, 404, public=True))
class TagLogListView(LogListView):
    def get_queryset(self) -> PreparedIds:  # type: ignore[override]
        if (found := timelines.tag_logs(self.kwargs["tag"], *self.window())) is None:
            raise Http404("No Tag matches the given query.")
        logs, self.count = found
        return logs

    def get_count(self, queryset: PreparedIds) -> int:
        return self.count


@extend_schema_view(get=list_schema(ActivitySerializer, 401, 403))
class ActivityTimelineView(LittlelogsView, generics.ListAPIView):
    """Your notifications, newest first."""

    replica_reads = True

    serializer_class = ActivitySerializer
    request: AuthenticatedRequest

    def get_queryset(self) -> PreparedIds:  # type: ignore[override]
        notifications, self.count = timelines.activity(self.request.user, *self.window())
        return notifications

    def get_count(self, queryset: PreparedIds) -> int:
        return self.count

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.get_paginated_response(activity_json(self.page_ids(self.get_queryset()), request))


# --- One log: read, create, preview, delete, comment, like ----------------------------------------


class LogDetailView(LittlelogsView):
    replica_reads = True
    public = True
    serializer_class = LogSerializer

    @extend_schema(tags=["littlelogs"], auth=[], responses={200: LogSerializer, **errors(404)})
    def get(self, request: Request, log_id: int) -> Response:
        return log_response(request, log_id)


@extend_schema_view(get=list_schema(CommentSerializer, 404, public=True))
class CommentListView(LittlelogsView, generics.ListAPIView):
    """All of a log's comments, oldest first (a log carries only its latest few inline)."""

    replica_reads = True

    public = True
    serializer_class = CommentSerializer

    def get_queryset(self) -> QuerySet[Comment]:
        log = get_log(self.kwargs["log_id"])
        return Comment.objects.filter(log=log).order_by("created", "id")

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.get_paginated_response(comments_json(self.page_ids(self.get_queryset()), request))


@extend_schema_view(get=list_schema(LikeSerializer, 404, public=True))
class LikeListView(LittlelogsView, generics.ListAPIView):
    """All of a log's likes, oldest first (a log carries only its latest few inline)."""

    replica_reads = True

    public = True
    serializer_class = LikeSerializer

    def get_queryset(self) -> QuerySet[Like]:
        log = get_log(self.kwargs["log_id"])
        return Like.objects.filter(log=log).select_related("user").only(*LIKE_FIELDS).order_by("created", "id")

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # pagination_class pages
        return self.get_paginated_response([like_json(like) for like in page])


class LogCreateView(LittlelogsView, generics.GenericAPIView):
    serializer_class = ContentSerializer

    @extend_schema(
        tags=["littlelogs"], request=ContentSerializer, responses={201: LogSerializer, **errors(400, 401, 403, 429)}
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = ContentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        log = services.create_log(
            user=request.user,
            markdown=serializer.validated_data["content"],
            source=source_of(request),
            rendered=serializer.rendered,
        )
        return log_response(request, log.pk, status.HTTP_201_CREATED)


class LogPreviewView(LittlelogsView, generics.GenericAPIView):
    serializer_class = ContentSerializer

    @extend_schema(
        tags=["littlelogs"], request=ContentSerializer, responses={200: PreviewSerializer, **errors(400, 401, 403, 429)}
    )
    def post(self, request: Request) -> Response:
        serializer = ContentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rendered = serializer.rendered
        return Response({"content": rendered.html, "tags": rendered.tags, "mentions": rendered.mentions})


class LogDeleteView(LittlelogsView):
    @extend_schema(tags=["littlelogs"], responses={204: None, **errors(401, 403, 404, 429)})
    def delete(self, request: Request, log_id: int) -> Response:
        log = get_log(log_id)
        if log.user_id != request.user.pk:
            self.permission_denied(request, "Only its author can delete a log.")
        services.delete_log(log=log)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CommentCreateView(LittlelogsView, generics.GenericAPIView):
    serializer_class = ContentSerializer

    @extend_schema(
        tags=["littlelogs"],
        request=ContentSerializer,
        responses={201: LogSerializer, **errors(400, 401, 403, 404, 429)},
    )
    def post(self, request: AuthenticatedRequest, log_id: int) -> Response:
        log = get_log(log_id)
        serializer = ContentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.add_comment(
            log=log,
            user=request.user,
            markdown=serializer.validated_data["content"],
            source=source_of(request),
            rendered=serializer.rendered,
        )
        return log_response(request, log.pk, status.HTTP_201_CREATED)


class CommentDeleteView(LittlelogsView):
    @extend_schema(tags=["littlelogs"], responses={204: None, **errors(401, 403, 404, 429)})
    def delete(self, request: Request, comment_id: int) -> Response:
        comment = get_object_or_404(Comment.objects.select_related("log"), pk=comment_id)
        if request.user.pk not in (comment.user_id, comment.log.user_id):
            self.permission_denied(request, "Only its author or the log's author can delete a comment.")
        services.delete_comment(comment=comment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LikeView(LittlelogsView):
    @extend_schema(tags=["littlelogs"], request=None, responses={201: LogSerializer, **errors(401, 403, 404, 429)})
    def post(self, request: AuthenticatedRequest, log_id: int) -> Response:
        log = get_log(log_id)
        services.like_log(log=log, user=request.user)
        return log_response(request, log.pk, status.HTTP_201_CREATED)


class UnlikeView(LittlelogsView):
    @extend_schema(tags=["littlelogs"], responses={204: None, **errors(401, 403, 404, 429)})
    def delete(self, request: AuthenticatedRequest, log_id: int) -> Response:
        services.unlike_log(log=get_log(log_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Users and follows ----------------------------------------------------------------------------


class SelfView(LittlelogsView, generics.GenericAPIView):
    """Who you are; PATCH changes your profile (JSON, or multipart for a new avatar)."""

    serializer_class = ProfileSerializer

    @extend_schema(tags=["littlelogs"], responses={200: UserSerializer, **errors(401, 403)})
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(user_json(request.user, request))

    @extend_schema(
        tags=["littlelogs"], request=ProfileSerializer, responses={200: UserSerializer, **errors(400, 401, 403, 429)}
    )
    def patch(self, request: Request) -> Response:
        serializer = ProfileSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = serializer.save()
        return Response(user_json(user, request))

    @extend_schema(
        tags=["littlelogs"],
        summary="Delete your account and everything of it",
        description="Everything the account has goes, in the background: its littlelogs (logs, comments, likes, "
        "follows, activity; others' counts put right), Logster messages, Bytelog events, GoatCounter sites with their "
        "hits, stats and exports, API keys, OAuth tokens and apps, avatar. From this answer on the account can't sign "
        "in and its keys fail; asking again while it runs answers the same, without starting anything. Only the "
        "signed-in session may ask (not an OAuth app's token), and `confirm` must be the account's username.",
        auth=[{"cookieAuth": []}],  # type: ignore[list-item]  # a security requirement object, as list_schema
        request=None,  # drf-spectacular documents no DELETE body: confirm is the query parameter below
        parameters=[
            OpenApiParameter("confirm", str, description='Your username (or in a JSON body: {"confirm": ...}).')
        ],
        responses={202: DeletionStatusSerializer, **errors(400, 401, 403, 429)},
    )
    def delete(self, request: AuthenticatedRequest) -> Response:
        if not isinstance(request.successful_authenticator, SessionAuthentication):
            raise exceptions.PermissionDenied("Only a signed-in session can delete the account, not an app's token.")
        sent = request.data if isinstance(request.data, dict) and "confirm" in request.data else request.query_params
        serializer = AccountDeletionSerializer(data={"confirm": sent.get("confirm")}, context={"user": request.user})
        serializer.is_valid(raise_exception=True)
        deletion, _ = request_deletion(kind=Deletion.Kind.ACCOUNT, target=request.user.pk)
        logout(request._request)
        return Response(deletion.as_json(), status=status.HTTP_202_ACCEPTED)


class UserDetailView(LittlelogsView):
    replica_reads = True
    public = True
    serializer_class = UserSerializer

    @extend_schema(tags=["littlelogs"], auth=[], responses={200: UserSerializer, **errors(404)})
    def get(self, request: Request, username: str) -> Response:
        return Response(user_json(get_object_or_404(User, username=username), request))


@extend_schema_view(get=list_schema(UserSerializer, 404, public=True))
class FollowedByView(LittlelogsView, generics.ListAPIView):
    """Whom the user follows, most recently followed first."""

    replica_reads = True

    public = True
    serializer_class = UserSerializer

    def get_queryset(self) -> QuerySet[Follow]:
        user = get_object_or_404(User, username=self.kwargs["username"])
        return Follow.objects.filter(follower=user).select_related("followee").order_by("-created", "-id")

    def people(self, follow: Follow) -> User:
        return follow.followee

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # pagination_class pages
        return self.get_paginated_response([user_json(self.people(follow), request) for follow in page])


@extend_schema_view(get=list_schema(UserSerializer, 404, public=True))
class FollowersView(FollowedByView):
    """Who follows the user, most recent first."""

    def get_queryset(self) -> QuerySet[Follow]:
        user = get_object_or_404(User, username=self.kwargs["username"])
        return Follow.objects.filter(followee=user).select_related("follower").order_by("-created", "-id")

    def people(self, follow: Follow) -> User:
        return follow.follower


class FollowView(LittlelogsView):
    @extend_schema(
        tags=["littlelogs"],
        request=None,
        responses={201: OpenApiResponse(description="No body."), **errors(400, 401, 403, 404, 429)},
    )
    def post(self, request: AuthenticatedRequest, username: str) -> Response:
        services.follow(follower=request.user, followee=get_object_or_404(User, username=username))
        return Response(status=status.HTTP_201_CREATED)


class UnfollowView(LittlelogsView):
    @extend_schema(tags=["littlelogs"], responses={204: None, **errors(401, 403, 404, 429)})
    def delete(self, request: AuthenticatedRequest, username: str) -> Response:
        services.unfollow(follower=request.user, followee=get_object_or_404(User, username=username))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Tags -----------------------------------------------------------------------------------------


@extend_schema_view(get=list_schema(TagSerializer, public=True))
class TagListView(LittlelogsView, generics.ListAPIView):
    """Every tag, alphabetically (case-insensitively)."""

    replica_reads = True

    public = True
    serializer_class = TagSerializer

    def get_queryset(self) -> QuerySet[Tag]:
        return Tag.objects.order_by(Lower("name"))

    def get_count(self, queryset: QuerySet[Tag]) -> int:
        return Counter.objects.value(Counter.Kind.TAGS)

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # pagination_class pages
        return self.get_paginated_response([tag_json(tag) for tag in page])


@extend_schema_view(get=list_schema(TagSerializer, 404, public=True))
class UserTagListView(TagListView):
    """The tags a user's logs carry, alphabetically."""

    def get_queryset(self) -> QuerySet[Tag]:
        user = get_object_or_404(User, username=self.kwargs["username"])
        used = LogTag.objects.filter(user=user).values("tag_id")
        return Tag.objects.filter(pk__in=used).order_by(Lower("name"))

    def get_count(self, queryset: QuerySet[Tag]) -> int:
        return queryset.count()  # one user's tags: a range of the (user, tag) index


class TrendingTagsView(LittlelogsView):
    """The ten tags the most people used in the last seven days (a plain list, not a page)."""

    replica_reads = True

    public = True
    pagination_class = None  # so the OpenAPI document says a list, too

    @extend_schema(tags=["littlelogs"], auth=[], responses={200: TagSerializer(many=True)})
    def get(self, request: Request) -> Response:
        since = timezone.now() - timedelta(days=TRENDING_DAYS)
        ranked = (
            LogTag.objects.filter(created__gte=since)
            .values("tag_id")
            .annotate(people=Count("user_id", distinct=True), latest=Max("created"))
            .order_by("-people", "-latest")[:TRENDING_COUNT]
        )
        ids = [row["tag_id"] for row in ranked]
        tags = Tag.objects.in_bulk(ids)
        return Response([tag_json(tags[tag_id]) for tag_id in ids])
