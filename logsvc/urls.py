from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView

from logsvc import views

admin.site.site_header = admin.site.site_title = "logsvc administration"
admin.site.index_title = "Users, API keys, log messages and events"

urlpatterns = [
    path("", views.home, name="home"),  # the front door (logsvc.frontdoor)
    path("favicon.ico", views.favicon, name="favicon"),
    path("", include("events.urls")),
    path("api/1/", include("social.urls")),
    path("", include("analytics.urls")),
    path("", include("analytics.dashboard_urls")),  # /sites/<code>/
    path("api-auth/", include("rest_framework.urls")),
    # JSON, as its name says (not YAML); public, so a stale key sent along is no reason for a 401
    path("api.json", SpectacularJSONAPIView.as_view(authentication_classes=[]), name="schema"),
    path(
        "api.html", views.ApiReferenceView.as_view(url_name="schema", authentication_classes=[]), name="api-reference"
    ),
    path("healthz", views.healthz, name="healthz"),
    # Uploaded pictures, served by the app in every set-up (see views.media and README "Security")
    path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", views.media, name="media"),
    path("admin/", admin.site.urls),
    # littlelogs OAuth2: /oauth/authorize, /oauth/token, the apps page (social/oauth.py); sign-in for them
    path("", include("social.oauth")),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/delete/", views.delete_account, name="account-delete"),
    # Last, so that no user's name can shadow a path above: /tag/<tag> and /<username>, littlelogs' own links
    path("", include("social.web_urls")),
]
