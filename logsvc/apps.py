from django.apps import AppConfig


class LogsvcConfig(AppConfig):
    name = "logsvc"
    verbose_name = "logsvc"
