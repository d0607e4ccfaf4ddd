from django.apps import AppConfig


class LogsvcConfig(AppConfig):
    name = "logsvc"
    verbose_name = "logsvc"

    def ready(self) -> None:
        from logsvc import (
            health,
            openapi,  # noqa: F401  registers the API key scheme with drf-spectacular
            partitions,
            retention,
        )

        health.register("partitions", partitions.health_check)
        retention.register("finished tasks", retention.purge_task_results)
