from django.apps import AppConfig


class SocialConfig(AppConfig):
    name = "social"
    verbose_name = "littlelogs"

    def ready(self) -> None:
        from logsvc import deletion, frontdoor
        from social.deletion import delete_account_content
        from social.web import littlelogs_panel

        frontdoor.register("littlelogs", 40, littlelogs_panel)
        deletion.register("account", "littlelogs", delete_account_content)
