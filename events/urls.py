from django.urls import path, re_path
from django.views.generic import RedirectView

from events import explorer, views

urlpatterns = [
    # Logster
    path("api/Log", views.LogMessageListView.as_view(), name="logster-messages"),
    path("api/Log/", views.LogMessageListView.as_view()),
    path("api/Log/<int:message_id>", views.LogMessageDetailView.as_view(), name="logster-message"),
    # Bytelog
    path("api/v1/events", views.EventListView.as_view(), name="bytelog-events"),
    path("api/v1/events/", views.EventListView.as_view()),
    path("api/v1/events/trace/<path:trace_id>", views.EventTraceView.as_view(), name="bytelog-trace"),
    # Loggator
    re_path(r"^api/events/(?P<uid>[\w-]{16})\.json$", views.PublicEventView.as_view(), name="loggator-event"),
    re_path(
        r"^api/events/(?P<uid>[\w-]{16})$",
        RedirectView.as_view(pattern_name="loggator-event", permanent=True, query_string=True),
    ),
    # The explorer's pages (events/explorer.py), behind the session login
    path("logs/", explorer.logs, name="explorer-logs"),
    path("logs/tail", explorer.logs_tail, name="explorer-logs-tail"),
    path("logs/histogram", explorer.logs_histogram, name="explorer-logs-histogram"),
    path("logs/<int:message_id>/", explorer.log_message, name="explorer-log"),
    path("events/", explorer.events, name="explorer-events"),
    path("events/histogram", explorer.events_histogram, name="explorer-events-histogram"),
    path("events/trace/<path:trace_id>", explorer.trace, name="explorer-trace"),
    re_path(r"^(?P<page>logs|events)/saved/$", explorer.save_search, name="explorer-save-search"),
    path("saved/<int:search_id>/delete/", explorer.delete_search, name="explorer-delete-search"),
]
