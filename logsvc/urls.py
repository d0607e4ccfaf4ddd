from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from logsvc import views

admin.site.site_header = admin.site.site_title = "logsvc administration"
admin.site.index_title = "Users, API keys, log messages and events"

urlpatterns = [
    path("", include("events.urls")),
    path("api.json", SpectacularAPIView.as_view(), name="schema"),
    path("api.html", SpectacularRedocView.as_view(url_name="schema"), name="api-reference"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
