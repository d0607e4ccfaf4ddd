from django.urls import path

from analytics import views

urlpatterns = [
    path("api/v0/me", views.MeView.as_view(), name="goatcounter-me"),
    path("api/v0/sites", views.SiteListView.as_view(), name="goatcounter-sites"),
    path("api/v0/sites/<int:site_id>", views.SiteDetailView.as_view(), name="goatcounter-site"),
    path("api/v0/count", views.CountView.as_view(), name="goatcounter-count"),
    path("api/v0/export", views.ExportCreateView.as_view(), name="goatcounter-export-create"),
    path("api/v0/export/<int:export_id>", views.ExportDetailView.as_view(), name="goatcounter-export"),
    path(
        "api/v0/export/<int:export_id>/download", views.ExportDownloadView.as_view(), name="goatcounter-export-download"
    ),
    path("count.js", views.count_js, name="goatcounter-script"),
    path("count", views.count_pixel, name="goatcounter-pixel"),
    path("count/<slug:code>", views.count_pixel, name="goatcounter-pixel-code"),
]
