"""The site's URLs plus a tiny OAuth2-protected view, for test_oauth.py until /api/1/ is there."""

from django.urls import include, path
from oauth2_provider.contrib.rest_framework import OAuth2Authentication, TokenHasReadWriteScope
from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmI(APIView):
    """GET needs the read scope, POST the write scope."""

    authentication_classes = [OAuth2Authentication]
    permission_classes = [TokenHasReadWriteScope]

    def get(self, request):
        return Response({"username": request.user.username, "scope": request.auth.scope})

    def post(self, request):
        return Response({"written": True}, status=201)


urlpatterns = [
    path("oauth-test/self/", WhoAmI.as_view()),
    path("", include("logsvc.urls")),
]
