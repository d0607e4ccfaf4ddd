"""The dashboard's pages (analytics/dashboard.py): /sites/<code>/ shows one site ("/" lists them: logsvc.frontdoor)."""

from django.urls import path

from analytics import dashboard

urlpatterns = [
    path("sites/<slug:code>/", dashboard.site_dashboard, name="dashboard-site"),
]
