"""The dashboard's pages: /sites/<code>/ shows one site's numbers; "/" lists a user's sites (sites_panel).

Every number comes from the rollups (analytics.stats, and site_visitors below), never from the hit table, and
each page runs the same few queries whatever the data: a top list is one query, its sparklines one more.
"""

from __future__ import annotations

import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.files.storage import storages
from django.db import connections, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from analytics import stats
from analytics.models import Import, PathDay, Site
from analytics.serializers import HitsDeletionSerializer
from analytics.sites import live, with_domains
from analytics.tasks import reap_stale_imports, run_import
from logsvc import replica
from logsvc.deletion import request_deletion
from logsvc.models import Deletion

TOP = 10  # rows per top list
CHART_HEIGHT = 100  # the chart's viewBox height; widths are one unit per day
DIMENSIONS = [("browsers", "Browsers"), ("systems", "Systems"), ("sizes", "Screen sizes"), ("locations", "Locations")]


def number(n: int) -> str:
    return f"{n:,}"


def average(total: int, days: int) -> str:
    """Per day, with a decimal while that is below ten (1.7 visitors a day, not 2)."""
    if not total:
        return "0"
    return f"{total / days:,.1f}" if total < 10 * days else number(total // days)


def today_of(site: Site) -> date:
    return datetime.now(zoneinfo.ZoneInfo(site.timezone)).date()


# The dashboard's own query: one for every site on "/", where stats' functions would take one per site.
def site_visitors(sites: list[Site], days: int = 7) -> dict[int, int]:
    """site id -> visitors in the last `days` days of that site's own time zone."""
    if not sites:
        return {}
    with connections[replica.reads()].cursor() as cursor:
        cursor.execute(
            f"SELECT d.site_id, sum(d.visitors) FROM {PathDay._meta.db_table} d "
            f"JOIN {Site._meta.db_table} s ON s.id = d.site_id "
            "WHERE d.site_id = ANY(%s) AND d.day BETWEEN (now() AT TIME ZONE s.timezone)::date - %s "
            "AND (now() AT TIME ZONE s.timezone)::date GROUP BY d.site_id",
            [[site.pk for site in sites], days - 1],
        )
        return {site_id: int(visitors) for site_id, visitors in cursor.fetchall()}


def sites_panel(request: HttpRequest, user) -> SafeString:
    """The front door's panel (logsvc.frontdoor): the user's sites with their visitors of the last week."""
    sites = list(with_domains(live(Site.objects.filter(owner=user))))
    visitors = site_visitors(sites)
    rows = [{"site": site, "visitors": number(visitors.get(site.pk, 0))} for site in sites]
    return render_to_string("analytics/_sites_panel.html", {"rows": rows, "user": user}, request=request)


# The range picker --------------------------------------------------------------------------------------------


@dataclass
class Preset:
    label: str
    start: date
    end: date
    active: bool = False

    @property
    def query(self) -> str:
        return f"?start={self.start.isoformat()}&end={self.end.isoformat()}"


def presets(today: date) -> list[Preset]:
    return [
        Preset("Today", today, today),
        Preset("7 days", today - timedelta(days=6), today),
        Preset("30 days", today - timedelta(days=29), today),
        Preset("This month", today.replace(day=1), today),
        Preset("1 year", today - timedelta(days=364), today),
    ]


def chosen_range(site: Site, params) -> tuple[stats.Range, str]:
    """The range asked for in ?start=&end=, or the default one and why the request's wasn't taken."""
    default = stats.default_range(site, 30)
    start, end = params.get("start", "").strip(), params.get("end", "").strip()
    if not start and not end:
        return default, ""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        return default, "Dates must be given as YYYY-MM-DD; showing the last 30 days instead."
    try:
        rng = stats.Range(first, last, site.timezone)
    except ValueError:  # outside the days any time zone can hold (9999-12-31, 0001-01-01)
        return default, f"Dates must be from {stats.FIRST_DAY} to {stats.LAST_DAY}; showing the last 30 days instead."
    if rng.start > rng.end:
        return default, "The start date is after the end date; showing the last 30 days instead."
    if (rng.end - rng.start).days + 1 > stats.MAX_RANGE_DAYS:
        return default, f"Ranges are at most {stats.MAX_RANGE_DAYS:,} days long; showing the last 30 days instead."
    return rng, ""


# Charts: SVG drawn here, labels in HTML so they stay readable at any width -----------------------------------


def nice_step(value: int) -> int:
    """The y axis' step: the smallest 1, 2, 2.5 or 5 times a power of ten that fits value in four steps."""
    step = 1
    while True:
        for factor in (1, 2, 2.5, 5):
            if step * factor >= value / 4 and (step * factor).is_integer():
                return int(step * factor)
        step *= 10


@dataclass
class Bar:
    day: date
    visitors: int
    pageviews: int
    x: float
    width: float
    visitors_y: float
    pageviews_y: float

    @property
    def title(self) -> str:
        return f"{self.day:%a %-d %b %Y}: {self.visitors:,} visitors, {self.pageviews:,} pageviews"

    @property
    def visitors_height(self) -> float:
        return CHART_HEIGHT - self.visitors_y

    @property
    def pageviews_height(self) -> float:
        return CHART_HEIGHT - self.pageviews_y


@dataclass
class Chart:
    bars: list[Bar]
    width: int
    ticks: list[dict] = field(default_factory=list)  # y axis: label and % from the top
    labels: list[dict] = field(default_factory=list)  # x axis: label and % from the left

    @property
    def bars_svg(self) -> str:
        """The bars as SVG, written here: a year is 365 of them, and the template language took ~70 ms."""
        parts = []
        for bar in self.bars:
            x, w = f"{bar.x:.4g}", f"{bar.width:.4g}"
            parts.append(
                f'<g class="day"><title>{escape(bar.title)}</title>'
                f'<rect class="hover" x="{x}" y="0" width="{w}" height="100"/>'
                f'<rect class="pv" x="{x}" y="{bar.pageviews_y:g}" width="{w}" height="{bar.pageviews_height:.4g}"/>'
                f'<rect class="v" x="{x}" y="{bar.visitors_y:g}" width="{w}" height="{bar.visitors_height:.4g}"/></g>'
            )
        return mark_safe("".join(parts))


def day_chart(rng: stats.Range, totals: dict[date, tuple[int, int]]) -> Chart:
    days = rng.days
    step = nice_step(max((pageviews for _, pageviews in totals.values()), default=0))
    top = step * 4
    # bars no wider than a week's, so a day or two is not one slab; no gaps once they'd be hairlines
    width = min(1.0, len(days) / 7) * 0.8 if len(days) <= 60 else 1.0

    def y(value: int) -> float:
        return round(CHART_HEIGHT - value * CHART_HEIGHT / top, 2)

    bars = []
    for n, day in enumerate(days):
        visitors, pageviews = totals.get(day, (0, 0))
        bars.append(Bar(day, visitors, pageviews, n + (1 - width) / 2, width, y(visitors), y(pageviews)))
    ticks = [{"label": number(step * i), "top": 100 - 25 * i} for i in range(5)]
    every = max(1, -(-len(days) // 6))  # at most about seven labels
    labels = []
    for n in range(0, len(days), every):
        day = days[n]
        text = f"{day:%b %Y}" if len(days) > 180 else f"{day:%-d %b}"
        labels.append({"label": text, "left": round((n + 0.5) * 100 / len(days), 2)})
    return Chart(bars, len(days), ticks, labels)


def sparkline(values: list[int]) -> dict:
    """An SVG polyline (and the area under it) of a path's visitors, in a 100 x 24 box."""
    top = max(values) or 1
    step = 100 / (len(values) - 1)
    points = " ".join(f"{round(n * step, 2)},{round(22 - v * 20 / top, 2)}" for n, v in enumerate(values))
    return {"line": points, "area": f"0,24 {points} 100,24"}


def spark_series(site: Site, rng: stats.Range, path_ids: list[int]) -> dict[int, list[int]]:
    """path id -> its visitors per day of the range; per hour when the range is one day."""
    if rng.start == rng.end:
        hours = stats.path_hours(site, rng, path_ids)
        return {pk: hours.get(pk, {}).get(rng.start, ([0] * 24, []))[0] for pk in path_ids}
    return {pk: visitors for pk, (visitors, _) in stats.path_days(site, rng, path_ids).items()}


# The dashboard ----------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    visitors: str
    pageviews: str
    share: float  # % of the list's top row, for the bar behind it
    title: str = ""
    event: bool = False
    spark: dict | None = None


def rows_of(items: list, name=lambda item: item.name) -> list[Row]:
    top = max((item.visitors for item in items), default=0) or 1
    return [
        Row(name(item), number(item.visitors), number(item.pageviews), round(item.visitors * 100 / top, 1))
        for item in items
    ]


def site_for(request: HttpRequest, code: str) -> Site | HttpResponse:
    """The site if this request may read it; else a redirect to the login page, or a 404 that tells nothing."""
    site = with_domains(live(Site.objects.filter(code=code))).first()
    if site is None:
        raise Http404("No such site")
    if site.public or (request.user.is_authenticated and site.owner_id == request.user.pk):
        return site
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    raise Http404("No such site")


@replica.replica_reads
def site_dashboard(request: HttpRequest, code: str) -> HttpResponse:
    site = site_for(request, code)
    if isinstance(site, HttpResponse):
        return site
    rng, error = chosen_range(site, request.GET)
    today = today_of(site)

    totals = stats.daily_totals(site, rng)
    paths, more_paths = stats.top_paths(site, rng, limit=TOP)
    series = spark_series(site, rng, [item.path.pk for item in paths])
    path_rows = rows_of(paths, name=lambda item: item.path.path)
    for row, item in zip(path_rows, paths, strict=True):
        row.title, row.event = item.path.title, item.path.event
        row.spark = sparkline(series[item.path.pk])
    refs, _ = stats.referrers(site, rng, limit=TOP)
    ref_rows = rows_of(refs, name=lambda item: item.name or "(direct or unknown)")
    dimensions = [(label, rows_of(stats.dimension(site, kind, rng, limit=TOP)[0])) for kind, label in DIMENSIONS]

    visitors = sum(v for v, _ in totals.values())
    pageviews = sum(pv for _, pv in totals.values())
    busiest = max(totals.items(), key=lambda item: (item[1][0], item[1][1]), default=None)
    choices = presets(today)
    for preset in choices:
        preset.active = (preset.start, preset.end) == (rng.start, rng.end)
    is_owner = request.user.is_authenticated and site.owner_id == request.user.pk
    context = {
        "site": site,
        "is_owner": is_owner,
        "rng": rng,
        "range_label": range_label(rng),
        "error": error,
        "presets": choices,
        "today": today,
        "visitors": number(visitors),
        "pageviews": number(pageviews),
        "per_day": average(visitors, len(rng.days)),
        "busiest": (f"{busiest[0]:%-d %b}", number(busiest[1][0]), busiest[1][0]) if busiest else None,
        "chart": day_chart(rng, totals),
        "paths": path_rows,
        "more_paths": more_paths,
        "refs": ref_rows,
        "dimensions": dimensions,
        "empty": pageviews == 0,
        "snippet": (
            f'<script data-goatcounter="{request.build_absolute_uri(f"/count/{site.code}")}"\n'
            f'        async src="{request.build_absolute_uri("/count.js")}"></script>'
        ),
    }
    return render(request, "analytics/dashboard.html", context)


def range_label(rng: stats.Range) -> str:
    if rng.start == rng.end:
        return f"{rng.start:%-d %B %Y}"
    if rng.start.year == rng.end.year:
        return f"{rng.start:%-d %b} – {rng.end:%-d %b %Y}"
    return f"{rng.start:%-d %b %Y} – {rng.end:%-d %b %Y}"


# Imports ------------------------------------------------------------------------------------------------------


def owned_site(request: HttpRequest, code: str) -> Site | HttpResponse:
    """site_for(), for the owner only: a public site's readers may not import into it."""
    site = site_for(request, code)
    if isinstance(site, Site) and not (request.user.is_authenticated and site.owner_id == request.user.pk):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404("No such site")
    return site


@require_http_methods(["GET", "POST"])
def site_imports(request: HttpRequest, code: str) -> HttpResponse:
    """GET: the upload form and the site's imports; POST: upload a GoatCounter CSV export, imported by the worker."""
    site = owned_site(request, code)
    if isinstance(site, HttpResponse):
        return site
    error = ""
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = "Choose a GoatCounter CSV export (.csv or .csv.gz) to import."
        elif (upload.size or 0) > settings.IMPORT_MAX_BYTES:
            error = f"The file is {(upload.size or 0) / 1e6:,.0f} MB; the most this server takes is {settings.IMPORT_MAX_BYTES / 1e6:,.0f} MB."
        else:
            # In the "imports" storage, which the worker of any host reads (PostgreSQL by default)
            name = storages["imports"].save(f"{site.code}-{uuid.uuid4().hex}.upload", upload)
            with transaction.atomic():  # the job commits with its import, or neither
                job = Import.objects.create(
                    site=site, name=(upload.name or "upload")[:255], file=name, size=upload.size or 0
                )
                run_import.enqueue(job.pk)
            return redirect("dashboard-import", code=site.code, import_id=job.pk)
    reap_stale_imports(site.pk)
    context = {"site": site, "imports": site.imports.all()[:20], "error": error}
    return render(request, "analytics/imports.html", context, status=400 if error else 200)


@require_GET
def site_import(request: HttpRequest, code: str, import_id: int) -> HttpResponse:
    """An import's progress (the page reloads itself until it is done) and its result."""
    site = owned_site(request, code)
    if isinstance(site, HttpResponse):
        return site
    reap_stale_imports(site.pk)
    job = get_object_or_404(Import, site=site, pk=import_id)
    return render(request, "analytics/import.html", {"site": site, "job": job, "errors": job.errors.splitlines()})


@require_http_methods(["GET", "POST"])
def site_delete(request: HttpRequest, code: str) -> HttpResponse:
    """The owner deletes the site's hits before a day, or the whole site (typing its code), in the background."""
    site = owned_site(request, code)
    if isinstance(site, HttpResponse):
        return site
    errors: dict[str, str] = {}
    if request.method == "POST" and request.POST.get("what") == "site":
        if request.POST.get("confirm", "") == site.code:
            request_deletion(kind=Deletion.Kind.SITE, target=site.pk)
            return render(request, "analytics/site_deleted.html", {"code": site.code})
        errors["confirm"] = "That is not the site's code: nothing was deleted."
    elif request.method == "POST":
        form = HitsDeletionSerializer(data={"before": request.POST.get("before", "")})
        if form.is_valid():
            request_deletion(kind=Deletion.Kind.HITS, target=site.pk, before=form.validated_data["before"])
            return redirect("dashboard-delete", code=site.code)
        errors["before"] = "Choose a day from 1970 to today."
    hits = Deletion.objects.filter(kind=Deletion.Kind.HITS, target=site.pk).first()
    context = {"site": site, "errors": errors, "hits": hits, "today": today_of(site).isoformat()}
    return render(request, "analytics/site_delete.html", context, status=400 if errors else 200)
