from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import F, Func, IntegerField
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events import filters, services
from events.filters import decode_cursor, encode_cursor, filter_events, filter_log_messages, older_than
from events.models import Event, LogMessage
from events.parsers import LogsterTextXMLParser, LogsterXMLParser
from events.serializers import (
    EventInputSerializer,
    EventListSerializer,
    LogMessageListSerializer,
    LogMessageSerializer,
    MessageIdSerializer,
    PublicEventSerializer,
    StoredLogMessageSerializer,
)
from events.validation import clean_event, clean_log_message
from logsvc import replica
from logsvc.auth import KeyRequest
from logsvc.idempotency import idempotent
from logsvc.middleware import CALLBACK_RE
from logsvc.openapi import bounded, error_responses
from logsvc.pagination import page_filter
from logsvc.parsers import JSONParser


def iso(value: datetime) -> str:
    """2021-08-15T23:41:41.507Z, as the seeds write times."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


MAX_EVENT_OFFSET = 10**9


def int_param(request: Request, name: str, default: int, maximum: int, minimum: int = 0) -> int:
    return filters.int_param(request.query_params, name, default, maximum, minimum)


def batch_items(data: Any, noun: str) -> list[Any]:
    """The posted items: one object, or a JSON array of 1 to BATCH_MAX_ITEMS of them."""
    if not isinstance(data, list):
        return [data]
    if not 1 <= len(data) <= settings.BATCH_MAX_ITEMS:
        raise exceptions.ValidationError(
            {"batch": [f"Send from 1 to {settings.BATCH_MAX_ITEMS} {noun} in one array, not {len(data)}."]}
        )
    return data


# --- Logster ---------------------------------------------------------------------------------------

LOGSTER_ERRORS = error_responses("logster", 400, 401, 403, 411, 413, 415, 429)


# What a message shows, read as values() rows: a page of 100 model instances cost more CPU than its query.
LOG_MESSAGE_FIELDS = (
    "pk", "message", "exception", "stack_trace", "severity", "category", "application", "user", "created"
)  # fmt: skip


def log_message_json(message: dict[str, Any]) -> dict[str, Any]:
    """The seed's message, from a LOG_MESSAGE_FIELDS row."""
    return {
        "MessageId": str(message["pk"]),
        "Message": message["message"],
        "Exception": message["exception"],
        "StackTrace": message["stack_trace"],
        "Severity": message["severity"],
        "Category": message["category"],
        "Application": message["application"],
        "User": message["user"],
        "Created": iso(message["created"]),
    }


TEXT_SIZE = sum(
    (Func(F(field), function="octet_length", output_field=IntegerField()) for field in ("message", "exception")),
    start=Func(F("stack_trace"), function="octet_length", output_field=IntegerField()),
)


class LogMessageListView(APIView):
    """Logster: post log messages (JSON or XML, one or a batch), list and search your own."""

    replica_reads = True  # its GETs tolerate a little lag (logsvc.replica)

    error_family = "logster"
    throttle_scope = "logster"
    required_scopes = {"GET": "logs:read", "POST": "logs:write"}
    parser_classes = [JSONParser, LogsterXMLParser, LogsterTextXMLParser]

    @extend_schema(
        operation_id="logster_list",
        tags=["Logster"],
        summary="List and search your log messages, newest first",
        parameters=[
            OpenApiParameter(
                "severity", {"type": "integer", "minimum": 0, "maximum": 6}, description="Minimum severity."
            ),
            OpenApiParameter("application", str),
            OpenApiParameter("category", str),
            OpenApiParameter("user", str),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Created at or after (ISO 8601)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Created before (ISO 8601)."),
            OpenApiParameter("q", str, description="Full-text search over Message, Exception and StackTrace."),
            OpenApiParameter("limit", bounded(1, 1000), description="Page size (default 100)."),
            OpenApiParameter("cursor", str, description="From a previous page's Next link."),
        ],
        responses={200: LogMessageListSerializer, **LOGSTER_ERRORS},
    )
    def get(self, request: KeyRequest) -> Response:
        params = request.query_params
        messages = filter_log_messages(LogMessage.objects.owned_by(request.user).defer("search"), params)
        if params.get("cursor"):
            messages = messages.filter(older_than("created", *decode_cursor(params["cursor"])))
        limit = int_param(request, "limit", 100, 1000, minimum=1)
        # The rows' sizes first (octet_length reads no TOASTed text), then the text of those the page holds.
        messages = messages.order_by("-created", "-pk")
        sizes = list(messages.values_list("pk", TEXT_SIZE, "created")[: limit + 1])
        chosen = page_filter(sizes, limit, "created")
        page = list(LogMessage.objects.filter(**chosen).order_by("-created", "-pk").values(*LOG_MESSAGE_FIELDS))
        next_url = None
        if len(sizes) > len(chosen["pk__in"]):
            query = params.copy()
            query["cursor"] = encode_cursor(page[-1]["created"], page[-1]["pk"])
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response({"Messages": [log_message_json(m) for m in page], "Next": next_url})

    @extend_schema(
        operation_id="logster_post",
        tags=["Logster"],
        summary="Post a log message (or a JSON array / <ArrayOfLogMessage> of up to 1000)",
        request={
            "application/json": LogMessageSerializer,
            "application/xml": LogMessageSerializer,
        },
        responses={200: MessageIdSerializer, **LOGSTER_ERRORS},
    )
    @idempotent
    def post(self, request: KeyRequest) -> Response:
        items = batch_items(request.data, "messages")
        batch = isinstance(request.data, list)
        cleaned = []
        errors: dict[str, list[str]] = {}
        for index, item in enumerate(items):
            values, item_errors = clean_log_message(item, f"message[{index}]" if batch else "message")
            cleaned.append(values)
            errors.update(item_errors)
        if errors:
            raise exceptions.ValidationError(errors)
        messages = services.ingest_log_messages(owner=request.user, items=cleaned)
        ids = [{"MessageId": str(message.pk)} for message in messages]
        return Response(ids if batch else ids[0])


class LogMessageDetailView(APIView):
    replica_reads = True
    error_family = "logster"
    throttle_scope = "logster"
    required_scopes = {"GET": "logs:read"}

    @extend_schema(
        operation_id="logster_read",
        tags=["Logster"],
        summary="Read one of your log messages",
        responses={200: StoredLogMessageSerializer, **error_responses("logster", 401, 403, 404, 429)},
    )
    def get(self, request: KeyRequest, message_id: int) -> Response:
        message = get_object_or_404(
            LogMessage.objects.owned_by(request.user).values(*LOG_MESSAGE_FIELDS), pk=message_id
        )
        return Response(log_message_json(message))


# --- Bytelog ---------------------------------------------------------------------------------------

BYTELOG_ERRORS = error_responses("bytelog", 400, 401, 403, 429)
BYTELOG_POST_ERRORS = error_responses("bytelog", 400, 401, 403, 411, 413, 415, 429)


def event_url_prefix(request: Request) -> str:
    return f"{settings.SITE_URL or request.build_absolute_uri('/')[:-1]}/api/events/"


def events_json(request: Request, events: Any) -> list[dict[str, Any]]:
    prefix = event_url_prefix(request)
    return [
        {
            "id": event["client_id"],
            "name": event["name"],
            "trace_id": event["trace_id"],
            "date": iso(event["date"]),
            "data": event["data"],
            "url": f"{prefix}{event['uid']}.json",
        }
        for event in events.values("uid", "client_id", "name", "trace_id", "date", "data")
    ]


def event_page(events: Any, offset: int, limit: int) -> Any:
    """The events from offset on, in time order: at most limit, and at most PAGE_MAX_BYTES of data after the
    first (the next page starts at offset + the number of events this one has)."""
    events = events.order_by("date", "id")
    sizes = list(events.values_list("pk", "size", "date")[offset : offset + limit])
    return Event.objects.filter(**page_filter(sizes, limit, "date")).order_by("date", "id")


class EventListView(APIView):
    """Bytelog: register events (one, or a JSON array of up to 1000) and list yours by date."""

    replica_reads = True

    error_family = "bytelog"
    throttle_scope = "bytelog"
    required_scopes = {"GET": "events:read", "POST": "events:write"}

    @extend_schema(
        operation_id="bytelog_list",
        tags=["Bytelog"],
        summary="List your events in time order",
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATE, description="Events on or after this day (YYYY-MM-DD)."),
            OpenApiParameter("end", OpenApiTypes.DATE, description="Events on or before this day (YYYY-MM-DD)."),
            OpenApiParameter("name", str, description="Only events with this name."),
            OpenApiParameter("limit", bounded(0, 1000), description="Page size (default 100)."),
            OpenApiParameter("offset", bounded(0, MAX_EVENT_OFFSET), description="Events to skip."),
        ],
        responses={200: EventListSerializer, **BYTELOG_ERRORS},
    )
    def get(self, request: KeyRequest) -> Response:
        events = filter_events(Event.objects.owned_by(request.user), request.query_params)
        limit = int_param(request, "limit", 100, 1000)
        offset = int_param(request, "offset", 0, MAX_EVENT_OFFSET)
        return Response({"count": events.count(), "events": events_json(request, event_page(events, offset, limit))})

    @extend_schema(
        operation_id="bytelog_post",
        tags=["Bytelog"],
        summary="Register an event (or a JSON array of up to 1000)",
        request=EventInputSerializer,
        responses={201: OpenApiResponse(description="Stored; the body is empty."), **BYTELOG_POST_ERRORS},
    )
    @idempotent
    def post(self, request: KeyRequest) -> Response:
        items = batch_items(request.data, "events")
        batch = isinstance(request.data, list)
        cleaned = []
        errors: dict[str, Any] = {}
        for index, item in enumerate(items):
            values, item_errors = clean_event(item)
            cleaned.append(values)
            if item_errors:
                errors[str(index)] = item_errors
        if errors:
            raise exceptions.ValidationError(errors if batch else errors["0"])
        services.ingest_events(owner=request.user, items=cleaned)
        return Response(status=status.HTTP_201_CREATED)


class EventTraceView(APIView):
    replica_reads = True
    error_family = "bytelog"
    throttle_scope = "bytelog"
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="bytelog_trace",
        tags=["Bytelog"],
        summary="Follow a trace: its events in time order",
        parameters=[
            OpenApiParameter("limit", bounded(0, 1000), description="Page size (default 1000)."),
            OpenApiParameter("offset", bounded(0, MAX_EVENT_OFFSET), description="Events to skip."),
        ],
        responses={200: EventListSerializer, **BYTELOG_ERRORS},
    )
    def get(self, request: KeyRequest, trace_id: str) -> Response:
        events = Event.objects.owned_by(request.user).filter(trace_id=trace_id)
        limit = int_param(request, "limit", 1000, 1000)
        offset = int_param(request, "offset", 0, MAX_EVENT_OFFSET)
        return Response({"count": events.count(), "events": events_json(request, event_page(events, offset, limit))})


# --- Loggator --------------------------------------------------------------------------------------


# Any API GET with ?callback= (logsvc.middleware.JsonpMiddleware); Loggator's is the one its seed documents.
JSONP = OpenApiResponse(
    OpenApiTypes.STR, description="With `callback`: the same JSON as a script, `/**/callback(...);`"
)


class PublicEventView(APIView):
    """Loggator: anyone holding an event's id may read it (the id is the capability); JSON-P and CORS apply."""

    replica_reads = True

    error_family = "loggator"
    public = True
    authentication_classes: list[Any] = []
    throttle_classes: list[Any] = []  # its seed: "Currently there is no rate limiting."

    @extend_schema(
        operation_id="loggator_event",
        tags=["Loggator"],
        summary="Read a shared event by its public id",
        auth=[],
        parameters=[
            OpenApiParameter(
                "callback",
                str,
                pattern=f"^{CALLBACK_RE.pattern}$",
                description="JSON-P: wrap the answer as /**/callback(...)",
            )
        ],
        responses={
            (200, "application/json"): OpenApiResponse(PublicEventSerializer, description="The event."),
            (200, "application/javascript"): JSONP,
            **{(code, "application/json"): answer for code, answer in error_responses("loggator", 400, 404).items()},
            (404, "application/javascript"): JSONP,
        },
    )
    @replica.on_primary_when_missing  # an event posted a moment ago by its owner, read by anyone
    def get(self, request: Request, uid: str) -> Response:
        event = get_object_or_404(Event, uid=uid)
        return Response(
            {
                "id": event.uid,
                "url": f"{event_url_prefix(request)}{event.uid}.json",
                "name": event.name,
                "trace_id": event.trace_id,
                "date": iso(event.date),
                "data": event.data,
                "created_at": iso(event.created),
            }
        )
