from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView

from logsvc import views

admin.site.site_header = admin.site.site_title = "logsvc administration"
admin.site.index_title = "Users, API keys, log messages and events"

urlpatterns = [
    path("", include("events.urls")),
    # JSON, as its name says (not YAML); public, so a stale key sent along is no reason for a 401
    path("api.json", SpectacularJSONAPIView.as_view(authentication_classes=[]), name="schema"),
    path(
        "api.html", views.ApiReferenceView.as_view(url_name="schema", authentication_classes=[]), name="api-reference"
    ),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
