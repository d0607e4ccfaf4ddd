from django.urls import path

from analytics import stats_views, views

urlpatterns = [
    path("api/v0/me", views.MeView.as_view(), name="goatcounter-me"),
    path("api/v0/sites", views.SiteListView.as_view(), name="goatcounter-sites"),
    path("api/v0/sites/<int:site_id>", views.SiteDetailView.as_view(), name="goatcounter-site"),
    path("api/v0/sites/<int:site_id>/hits", views.SiteHitsView.as_view(), name="goatcounter-site-hits"),
    path("api/v0/count", views.CountView.as_view(), name="goatcounter-count"),
    path("api/v0/export", views.ExportCreateView.as_view(), name="goatcounter-export-create"),
    path("api/v0/export/<int:export_id>", views.ExportDetailView.as_view(), name="goatcounter-export"),
    path(
        "api/v0/export/<int:export_id>/download", views.ExportDownloadView.as_view(), name="goatcounter-export-download"
    ),
    path("api/v0/paths", stats_views.PathListView.as_view(), name="goatcounter-paths"),
    path("api/v0/stats/total", stats_views.TotalView.as_view(), name="goatcounter-stats-total"),
    path("api/v0/stats/hits", stats_views.HitsView.as_view(), name="goatcounter-stats-hits"),
    path("api/v0/stats/hits/<int:path_id>", stats_views.PathRefsView.as_view(), name="goatcounter-stats-hit-refs"),
    path("api/v0/stats/<str:page>", stats_views.StatListView.as_view(), name="goatcounter-stats-page"),
    path("api/v0/stats/<str:page>/<path:id>", stats_views.StatDetailView.as_view(), name="goatcounter-stats-detail"),
    path("count.js", views.count_js, name="goatcounter-script"),
    path("count", views.count_pixel, name="goatcounter-pixel"),
    path("count/<slug:code>", views.count_pixel, name="goatcounter-pixel-code"),
]
