"""The dashboard's pages (analytics/dashboard.py): /sites/<code>/ shows one site ("/" lists them: logsvc.frontdoor)."""

from django.urls import path

from analytics import dashboard

urlpatterns = [
    path("sites/<slug:code>/", dashboard.site_dashboard, name="dashboard-site"),
    path("sites/<slug:code>/import/", dashboard.site_imports, name="dashboard-imports"),
    path("sites/<slug:code>/delete/", dashboard.site_delete, name="dashboard-delete"),
    path("sites/<slug:code>/import/<int:import_id>/", dashboard.site_import, name="dashboard-import"),
]
