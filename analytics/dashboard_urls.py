"""The dashboard's pages (analytics/dashboard.py): "/" lists a user's sites, /sites/<code>/ shows one."""

from django.urls import path

from analytics import dashboard

urlpatterns = [
    path("", dashboard.index, name="dashboard-index"),
    path("sites/<slug:code>/", dashboard.site_dashboard, name="dashboard-site"),
]
