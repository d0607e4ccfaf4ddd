from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Logs and events"

    def ready(self) -> None:
        from events.deletion import delete_account_data
        from events.models import Event, LogMessage
        from events.panels import events_panel, logs_panel
        from events.retention import purge_events, purge_log_messages
        from logsvc import deletion, frontdoor, partitions, retention

        partitions.register(LogMessage._meta.db_table, "created")
        partitions.register(Event._meta.db_table, "date")

        frontdoor.register("logs", 20, logs_panel)
        frontdoor.register("events", 30, events_panel)
        retention.register("log messages", purge_log_messages)
        retention.register("events", purge_events)
        deletion.register("account", "events", delete_account_data)
