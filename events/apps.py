from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Logs and events"

    def ready(self) -> None:
        from events.panels import events_panel, logs_panel
        from logsvc import frontdoor

        frontdoor.register("logs", 20, logs_panel)
        frontdoor.register("events", 30, events_panel)
