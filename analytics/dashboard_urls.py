"""The dashboard's pages (analytics/dashboard.py): "/" lists a user's sites, /sites/<code>/ shows one."""

urlpatterns: list = []
