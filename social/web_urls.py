"""/tag/<tag> and /<username>, where littlelogs' rendered links point (social/web.py).

Mounted last by logsvc/urls.py: /<username> is one path segment, so every other page and API path (/healthz,
/api.html, /count, ...) matches first, whatever a user is called; such a user's page is at /api/1/users/<name>/.
"""

from django.urls import path, re_path

from social import web

urlpatterns = [
    path("tag/<str:tag>", web.tag_page, name="littlelogs-tag-page"),
    # the characters a username may hold (Django's username validator), as the seed's @mention links write them
    re_path(r"^(?P<username>[\w.@+-]+)$", web.user_page, name="littlelogs-user-page"),
]
