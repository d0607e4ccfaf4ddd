from django.apps import AppConfig


class SocialConfig(AppConfig):
    name = "social"
    verbose_name = "littlelogs"

    def ready(self) -> None:
        from logsvc import frontdoor
        from social.web import littlelogs_panel

        frontdoor.register("littlelogs", 40, littlelogs_panel)
