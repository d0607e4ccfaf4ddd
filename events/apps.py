from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Logs and events"

    def ready(self) -> None:
        from events.deletion import delete_account_data
        from events.panels import events_panel, logs_panel
        from logsvc import deletion, frontdoor

        frontdoor.register("logs", 20, logs_panel)
        frontdoor.register("events", 30, events_panel)
        deletion.register("account", "events", delete_account_data)
