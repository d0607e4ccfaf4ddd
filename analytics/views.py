"""GoatCounter's API (/api/v0: me, sites, count, export) and the browser's /count pixel and /count.js."""

from __future__ import annotations

import base64
from datetime import UTC
from typing import Any

import psycopg
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from analytics import sites
from analytics.models import Export, Site
from analytics.rollups import schedule_roll_up
from analytics.serializers import (
    ExportSerializer,
    HitsDeletionSerializer,
    SiteDeletionSerializer,
    SiteSerializer,
    rfc3339,
)
from analytics.services import CleanHit, record_hits, record_one_hit, visitor_hash
from analytics.tasks import reap_stale_exports, run_export
from analytics.validation import (
    BatchError,
    HitError,
    Ignored,
    clean_count_hits,
    clean_pixel_hit,
    go_json_keys,
    read_count_body,
)
from logsvc import ratelimit
from logsvc.auth import ApiKeyAuthentication, KeyRequest
from logsvc.deletion import DeletionStatusSerializer, request_deletion, resume_if_stalled
from logsvc.fields import IPAddressDocField, SizeDocField
from logsvc.idempotency import RetriedResponse, idempotent
from logsvc.models import Deletion
from logsvc.openapi import error_responses
from logsvc.pagination import MAX_OFFSET

COUNTED = {"status": "ok"}


@extend_schema(tags=["GoatCounter"])  # the reference's group for every /api/v0 operation, subclasses included
class GoatCounterView(APIView):
    error_family = "goatcounter"
    throttle_scope = "goatcounter"
    authentication_classes = [ApiKeyAuthentication]


# GoatCounter's permission bits (its api_token.go); our "sites" scope is its three site permissions.
PERMISSIONS = {"count": 2, "export": 4, "sites": 8 | 16 | 32, "stats": 64}
NO_PERMISSION = 1


class MeView(GoatCounterView):
    @extend_schema(
        summary="The user and the API key of this request",
        description="GoatCounter's shapes: `token.permissions` is its bit set (count 2, export 4, read sites 8, "
        "create sites 16, update sites 32, stats 64); `scopes` and `bound_to_sites` are logsvc's.",
        responses={200: OpenApiTypes.OBJECT, **error_responses("goatcounter", 401, 429)},
    )
    def get(self, request: KeyRequest) -> Response:
        user, key = request.user, request.auth
        key_sites = sites.sites_of_key(key)
        permissions = sum(PERMISSIONS[scope] for scope in set(key.scopes) if scope in PERMISSIONS) or NO_PERMISSION
        first_site = min((site.pk for site in key_sites if site.owner_id == user.pk), default=None)
        optional = {"site": first_site, "login_at": rfc3339(user.last_login)}
        return Response(
            {
                "user": {
                    "id": user.pk,
                    "username": user.username,
                    "email": user.email,
                    "email_verified": False,  # logsvc doesn't check addresses
                    "totp_enabled": False,
                    "access": {"all": "a"},  # GoatCounter's "admin of every site"; a key's scopes narrow it
                    "settings": {},
                    "created_at": rfc3339(user.date_joined),
                }
                | {name: value for name, value in optional.items() if value is not None},
                "token": {
                    "name": key.name,
                    "permissions": permissions,
                    "scopes": sorted(key.scopes),
                    "sites": [site.pk for site in key_sites],
                    "bound_to_sites": key.sites.exists(),
                },
            }
        )


def site_data(request: Request) -> Any:
    """A site's fields sent, matched to SiteSerializer's as GoatCounter's server matches them (any case)."""
    fields = [name for name, field in SiteSerializer().fields.items() if not field.read_only]
    return go_json_keys(request.data, fields)


class SiteListView(GoatCounterView):
    required_scopes = {"GET": "sites", "PUT": "sites"}

    @extend_schema(
        operation_id="api_v0_sites_list",
        summary="The sites this key may act for",
        responses={
            200: inline_serializer("SiteList", {"sites": SiteSerializer(many=True)}),
            **error_responses("goatcounter", 401, 403, 429),
        },
    )
    def get(self, request: KeyRequest) -> Response:
        return Response({"sites": SiteSerializer(sites.sites_of_key(request.auth), many=True).data})

    @extend_schema(
        summary="Create a site (GoatCounter creates with PUT)",
        request=SiteSerializer,
        responses={200: SiteSerializer, **error_responses("goatcounter", 400, 401, 403, 429)},
    )
    def put(self, request: KeyRequest) -> Response:
        serializer = SiteSerializer(data=site_data(request))
        serializer.is_valid(raise_exception=True)
        # The key acts for the site it creates (sites_of_key) without being bound to it, so its requests
        # without the new site's Host still go to the site they went to before.
        site = serializer.save(owner=request.user, created_by_key=request.auth)
        return Response(SiteSerializer(site).data)


class SiteDetailView(GoatCounterView):
    required_scopes = {"GET": "sites", "PATCH": "sites", "POST": "sites", "DELETE": "sites"}

    def get_site(self, request: KeyRequest, site_id: int) -> Site:
        for site in sites.sites_of_key(request.auth):
            if site.pk == site_id:
                return site
        raise exceptions.NotFound("no such site (or not one of this key's)")

    @extend_schema(
        summary="One site", responses={200: SiteSerializer, **error_responses("goatcounter", 401, 403, 404, 429)}
    )
    def get(self, request: KeyRequest, site_id: int) -> Response:
        return Response(SiteSerializer(self.get_site(request, site_id)).data)

    @extend_schema(
        summary="Change the fields sent",
        request=SiteSerializer,
        responses={200: SiteSerializer, **error_responses("goatcounter", 400, 401, 403, 404, 429)},
    )
    def patch(self, request: KeyRequest, site_id: int) -> Response:
        serializer = SiteSerializer(self.get_site(request, site_id), data=site_data(request), partial=True)
        serializer.is_valid(raise_exception=True)
        return Response(SiteSerializer(serializer.save()).data)

    @extend_schema(
        summary="Change the fields sent (as PATCH; GoatCounter takes both)",
        request=SiteSerializer(partial=True),
        responses={200: SiteSerializer, **error_responses("goatcounter", 400, 401, 403, 404, 429)},
    )
    def post(self, request: KeyRequest, site_id: int) -> Response:
        return self.patch(request, site_id)

    @extend_schema(
        summary="Delete the site and everything of it (logsvc; GoatCounter's API has no such call)",
        description="The site stops counting and answering at once; its hits, bot hits, stats, paths, exports and "
        "their files go in the background, in batches. Asking again while that runs answers the same, without "
        "starting anything. `confirm` (in the body, or the query) must be the site's code.",
        request=None,  # drf-spectacular documents no DELETE body: confirm is the query parameter below
        parameters=[
            OpenApiParameter("confirm", str, description='The site\'s code (or in a JSON body: {"confirm": ...}).')
        ],
        responses={202: DeletionStatusSerializer, **error_responses("goatcounter", 400, 401, 403, 404, 429)},
    )
    def delete(self, request: KeyRequest, site_id: int) -> Response:
        # The site is out of every lookup once its deletion starts: asking again answers what runs.
        under_way = Deletion.objects.filter(kind=Deletion.Kind.SITE, target=site_id).first()
        if under_way is not None and Site.objects.filter(pk=site_id, owner_id=request.user.pk).exists():
            resume_if_stalled(under_way)
            return Response(under_way.as_json(), status=status.HTTP_202_ACCEPTED)
        site = self.get_site(request, site_id)
        serializer = SiteDeletionSerializer(data=deletion_data(request), context={"site": site})
        serializer.is_valid(raise_exception=True)
        deletion, _ = request_deletion(kind=Deletion.Kind.SITE, target=site.pk)
        return Response(deletion.as_json(), status=status.HTTP_202_ACCEPTED)


def deletion_data(request: Request) -> dict[str, Any]:
    """A deletion's fields from the body (any case, as GoatCounter's decoder) or else the query (a DELETE's body is
    dropped by some clients)."""
    sent = go_json_keys(request.data, ["confirm", "before"]) if isinstance(request.data, dict) else {}
    for name in ("confirm", "before"):
        if name not in sent and name in request.query_params:
            sent[name] = request.query_params[name]
    return sent


class SiteHitsView(SiteDetailView):
    required_scopes = {"DELETE": "sites"}
    http_method_names = ["delete", "options"]

    @extend_schema(
        summary="Delete the site's hits before a day (logsvc; GoatCounter's API has no such call)",
        description="Hits and bot hits created before `before` (a day, midnight in the site's time zone) go in the "
        "background, in batches, and the stats of those days with them (the month and hour that straddle the day "
        "are recounted); exports made before are deleted. The site keeps counting. Asking again while it runs "
        "answers the same, without starting anything.",
        request=None,
        parameters=[
            OpenApiParameter(
                "before", OpenApiTypes.DATE, description='YYYY-MM-DD (or in a JSON body: {"before": ...}).'
            )
        ],
        responses={202: DeletionStatusSerializer, **error_responses("goatcounter", 400, 401, 403, 404, 429)},
    )
    def delete(self, request: KeyRequest, site_id: int) -> Response:
        site = self.get_site(request, site_id)
        serializer = HitsDeletionSerializer(data=deletion_data(request))
        serializer.is_valid(raise_exception=True)
        deletion, _ = request_deletion(
            kind=Deletion.Kind.HITS, target=site.pk, before=serializer.validated_data["before"]
        )
        return Response(deletion.as_json(), status=status.HTTP_202_ACCEPTED)


HIT_SCHEMA_FIELDS: dict[str, serializers.Field] = {
    "path": serializers.CharField(help_text="Path of the page, or the event's name; required."),
    "title": serializers.CharField(required=False, allow_null=True, allow_blank=True),
    "event": serializers.BooleanField(required=False),
    "ref": serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="Referrer: a URL or free text."
    ),
    "size": SizeDocField(
        required=False, allow_null=True, help_text='Screen width: 1920, [1920, 1080, 2] or "1920,1080,2".'
    ),
    "query": serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="The page's query string, for campaigns."
    ),
    "bot": serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=255),
    "user_agent": serializers.CharField(required=False, allow_null=True, allow_blank=True),
    "location": serializers.RegexField(
        r"^([A-Za-z]{2}(-[A-Za-z0-9]{1,3})?)?$",  # analytics.hitinfo.parse_location (it strips spaces too)
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="ISO 3166 country (US) or region (US-TX).",
    ),
    "language": serializers.CharField(required=False, allow_null=True, allow_blank=True),
    "ip": IPAddressDocField(
        required=False, allow_null=True, allow_blank=True, help_text="For the visitor hash; never stored."
    ),
    "created_at": serializers.DateTimeField(required=False, allow_null=True, help_text="Not in the future."),
    "session": serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="Your own visitor id, instead of IP and UA."
    ),
}


class CountView(GoatCounterView):
    throttle_scope = "goatcounter-count"
    required_scopes = {"POST": "count"}

    @extend_schema(
        summary="Count 1 to 500 hits from a backend",
        description=(
            "All valid: 202. Some not: the valid ones are stored all the same, and the answer is a 400 naming "
            "the others by their index: send only those again. With an `Idempotency-Key` header a retry of the "
            "same request is answered as the first one was and stores nothing twice."
        ),
        request=inline_serializer(
            "CountRequest",
            {
                "no_sessions": serializers.BooleanField(required=False),
                "filter": serializers.ListField(child=serializers.ChoiceField(["ip"]), required=False),
                "hits": serializers.ListField(
                    child=inline_serializer("Hit", HIT_SCHEMA_FIELDS), min_length=1, max_length=500
                ),
            },
        ),
        examples=[
            OpenApiExample(
                "A pageview",
                {
                    "no_sessions": True,
                    "hits": [{"path": "/blog/hello", "title": "Hello", "ref": "https://example.com"}],
                },
                request_only=True,
            )
        ],
        responses={
            202: inline_serializer("CountAccepted", {"status": serializers.CharField()}),
            **error_responses("goatcounter", 400, 401, 403, 413, 429),
        },
    )
    @idempotent
    def post(self, request: KeyRequest) -> Response:
        try:
            hits, no_sessions, filters = read_count_body(request.data)
        except BatchError as error:
            return Response({"error": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        site = sites.site_for_request(request)
        batch = clean_count_hits(hits, site, no_sessions=no_sessions, filters=filters)
        with transaction.atomic():
            record_hits(site, batch.hits)
        transaction.on_commit(schedule_roll_up)
        if batch.errors:
            # Not an exception: the valid hits are stored, and a retry with the same Idempotency-Key gets this answer.
            response: Response = RetriedResponse({"errors": batch.errors}, status=status.HTTP_400_BAD_REQUEST)
        else:
            response = Response(COUNTED, status=status.HTTP_202_ACCEPTED)
        if batch.filtered:
            response["X-Goatcounter-Filter"] = ", ".join(batch.filtered)
        return response


class SiteExportThrottle(BaseThrottle):
    """One export an hour per site (whichever key asks), as GoatCounter."""

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = settings.RATE_LIMITS.get("goatcounter-export")
        if request.method != "POST" or not rate:
            return True
        self.usage = ratelimit.consume(f"goatcounter-export:site:{view.site.pk}", rate)
        request._request.rate_limit = self.usage  # type: ignore[attr-defined]  # ours, for RateLimitHeadersMiddleware
        return self.usage.allowed

    def wait(self) -> float | None:
        return self.usage.reset


EXPORT_FIELDS = ("start_from_hit_id", "start_from_day", "format")


class ExportCreateView(GoatCounterView):
    required_scopes = {"POST": "export"}

    def check_export_throttle(self, request: Request) -> None:
        # Counted once the request is valid: a typo in the body does not use up the site's hour.
        throttle = SiteExportThrottle()
        if not throttle.allow_request(request, self):
            raise exceptions.Throttled(
                throttle.wait(), detail="you can request only one export per hour for a site; try again later"
            )

    @extend_schema(
        summary="Start an export of the site's hits as CSV or JSON",
        description="Runs in the background: poll the export until `finished_at` is set, then download it.",
        request=inline_serializer(
            "ExportRequest",
            {
                "start_from_hit_id": serializers.IntegerField(
                    required=False,
                    allow_null=True,
                    min_value=0,
                    max_value=MAX_OFFSET,
                    help_text="Only hits after this one: a previous export's last_hit_id (null: from the first).",
                ),
                "format": serializers.ChoiceField(
                    Export.FORMATS,
                    required=False,
                    help_text="csv (the default) or json: the same rows as a JSON array.",
                ),
                "start_from_day": serializers.DateTimeField(
                    required=False, allow_null=True, help_text="Only hits from this day (UTC) on."
                ),
            },
        ),
        responses={202: ExportSerializer, **error_responses("goatcounter", 400, 401, 403, 429)},
    )
    def post(self, request: KeyRequest) -> Response:
        data = request.data
        if not isinstance(data, dict):
            raise exceptions.ParseError('Send a JSON object such as {"start_from_hit_id": 42}, or nothing.')
        data = go_json_keys(data, EXPORT_FIELDS)
        if unknown := sorted(set(data) - set(EXPORT_FIELDS)):
            raise exceptions.ParseError(f"unknown parameter: {unknown[0]!r}")
        format = data.get("format", "csv")
        if not isinstance(format, str) or format not in Export.FORMATS:
            raise exceptions.ValidationError({"format": ['Must be "csv" or "json".']})
        try:
            start_day = serializers.DateTimeField(allow_null=True).run_validation(data.get("start_from_day"))
            if start_day is not None:  # the day's start in UTC, as GoatCounter
                start_day = start_day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        except serializers.ValidationError as error:
            raise exceptions.ValidationError({"start_from_day": error.detail}) from None
        start = data.get("start_from_hit_id")
        if start is not None and (
            isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= MAX_OFFSET
        ):
            raise exceptions.ValidationError(
                {"start_from_hit_id": [f"Must be a hit id: a whole number from 0 to {MAX_OFFSET}."]}
            )
        self.site = sites.site_for_request(request)
        self.check_export_throttle(request)
        with transaction.atomic():
            export = Export.objects.create(
                site=self.site, format=format, start_from_hit_id=start, start_from_day=start_day
            )
            run_export.enqueue(export.pk)  # the queue is a table: the job commits with the export, or neither
        return Response(ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailMixin:
    def get_export(self, request: Request, export_id: int) -> Export:
        site = sites.site_for_request(request)
        reap_stale_exports(site.pk)
        return get_object_or_404(Export.objects.select_related("site"), pk=export_id, site=site)


class ExportDetailView(ExportDetailMixin, GoatCounterView):
    required_scopes = {"GET": "export"}

    @extend_schema(
        summary="An export: finished once `finished_at` is set",
        responses={200: ExportSerializer, **error_responses("goatcounter", 401, 403, 404, 429)},
    )
    def get(self, request: KeyRequest, export_id: int) -> Response:
        return Response(ExportSerializer(self.get_export(request, export_id)).data)


class ExportDownloadView(ExportDetailMixin, GoatCounterView):
    required_scopes = {"GET": "export"}

    @extend_schema(
        summary="The export's gzip'd CSV (or JSON)",
        responses={
            (200, "application/gzip"): OpenApiResponse(OpenApiTypes.BINARY, description="The CSV or JSON, gzip'd."),
            202: inline_serializer("ExportRunning", {"status": serializers.CharField()}),
            **error_responses("goatcounter", 401, 403, 404, 409, 410, 429),
        },
    )
    def get(self, request: KeyRequest, export_id: int) -> HttpResponseBase:
        export = self.get_export(request, export_id)
        if export.error:
            return Response({"error": export.error}, status=status.HTTP_409_CONFLICT)
        if export.finished_at is None:
            return Response({"status": "still being generated; try again in a second"}, status=202)
        if export.is_expired() or not export.file:
            return Response(
                {"error": "this export has expired and its file was deleted; start a new one"},
                status=status.HTTP_410_GONE,
            )
        try:
            # From the shared storage, a chunk at a time (FileResponse closes it): any host serves any export.
            handle = storages["exports"].open(export.file, "rb")
        except (OSError, SuspiciousFileOperation):  # deleted, or a path kept before exports were stored
            return Response({"error": "this export's file is gone; start a new one"}, status=status.HTTP_410_GONE)
        return FileResponse(
            handle,
            as_attachment=True,
            filename=export.file.rsplit("/", 1)[-1],
            content_type="application/gzip",
        )


COUNT_JS = finders.find("analytics/count.js")


@require_http_methods(["GET", "HEAD"])
def count_js(request: HttpRequest) -> HttpResponseBase:
    """The tracking script at a fixed, short URL, for <script data-goatcounter=".../count" src=".../count.js">."""
    assert COUNT_JS is not None  # analytics/static/ has it
    response = FileResponse(open(COUNT_JS, "rb"), content_type="text/javascript; charset=utf-8")  # noqa: SIM115
    response["Cache-Control"] = "public, max-age=86400"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


# The 43-byte transparent 1x1 GIF GoatCounter answers.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
PREFETCH_HEADERS = ("HTTP_SEC_PURPOSE", "HTTP_PURPOSE", "HTTP_X_MOZ", "HTTP_X_PURPOSE")


def pixel_response(status_code: int, reason: str = "", retry_after: int | None = None) -> HttpResponse:
    response = HttpResponse(PIXEL, content_type="image/gif", status=status_code)
    response["Cache-Control"] = "no-store"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    if reason:
        response["X-Goatcounter"] = reason
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def not_counted_on_purpose(request: HttpRequest) -> tuple[int, str] | None:
    """The pixel's answer to a browser that asks not to be tracked, or to a prefetch; None to go on."""
    if request.META.get("HTTP_DNT") == "1" or request.META.get("HTTP_SEC_GPC") == "1":
        return 202, "not counted: the browser asks not to be tracked (DNT or Sec-GPC)"
    if any(request.META.get(name, "").lower() == "prefetch" for name in PREFETCH_HEADERS):
        return 200, "not counted: a prefetch"
    return None


def pixel_hit(request: HttpRequest, site: Site, ip: str, user_agent: str) -> tuple[int, str, CleanHit | None]:
    """The hit a counted pixel request stores, with its answer (200, "", hit), or why it stores none."""
    if ip in site.ignore_ips:
        return 202, f'ignored because "{ip}" is in the IP ignore list', None
    try:
        hit = clean_pixel_hit(
            request.GET.dict(),
            site_id=site.pk,
            site_hosts=sites.site_hosts(site),
            ip=ip,
            user_agent=user_agent,
            language=request.META.get("HTTP_ACCEPT_LANGUAGE", ""),
        )
    except HitError as error:
        return 400, str(error), None
    except Ignored:
        return 202, "not counted: GoatCounter ignores this path", None
    return 200, "", hit


NO_SITE = "no site at this address; check the data-goatcounter URL"


@csrf_exempt
@require_http_methods(["GET", "POST"])
def count_pixel(request: HttpRequest, code: str = "") -> HttpResponse:
    """The browser's hit: GET (an <img>) or POST (navigator.sendBeacon), fields in the query string.

    Always the GIF: 200 counted (or a prefetch, not counted), 202 seen but not counted on purpose (Do Not
    Track, Global Privacy Control, an ignored IP), 400 refused, 404 no such site, 429 too many; the reason in
    X-Goatcounter. Sets no cookie. Served by analytics.pixel under the ASGI server, with group commit; this
    view answers the same under WSGI and in tests that use Django's test client.
    """
    site = sites.site_for_pixel(code=code) if code else sites.site_for_pixel(host=sites.request_host(request))
    if site is None:
        return pixel_response(404, NO_SITE)
    if answer := not_counted_on_purpose(request):
        return pixel_response(*answer)
    ip = BaseThrottle().get_ident(request)  # type: ignore[arg-type]  # DRF reads only META, which both have
    user_agent = request.META.get("HTTP_USER_AGENT", "")
    if rate := settings.RATE_LIMITS.get("goatcounter-pixel"):
        # By the salted hash, not "ip:ua": the counters are stored (PostgreSQL or Redis) and must not keep an IP.
        visitor = visitor_hash(0, ip=ip, user_agent=user_agent)
        usage = ratelimit.consume(f"goatcounter-pixel:{visitor.hex}", rate)
        request.rate_limit = usage  # type: ignore[attr-defined]  # ours, for RateLimitHeadersMiddleware, as on the API
        if not usage.allowed:
            seconds = ratelimit.parse_rate(rate)[1]
            reason = f"rate limited: at most {usage.limit} hits in {seconds} s"
            return pixel_response(429, reason, retry_after=usage.reset)
    status_code, reason, hit = pixel_hit(request, site, ip, user_agent)
    if hit is None:
        return pixel_response(status_code, reason)
    try:
        record_one_hit(site, hit)
    except (IntegrityError, psycopg.IntegrityError):  # the site was deleted since this process looked it up
        sites.forget_pixel_sites()
        return pixel_response(404, NO_SITE)
    schedule_roll_up()
    return pixel_response(200)
