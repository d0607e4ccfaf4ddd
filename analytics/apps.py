from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics (GoatCounter)"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from analytics import deletion as site_deletion
        from analytics import geoip, tasks
        from analytics.dashboard import sites_panel
        from analytics.models import BotHit, Domain, Hit, Site
        from analytics.retention import purge_hits
        from analytics.rollups import health_check
        from analytics.sites import forget_pixel_sites
        from logsvc import cleanup, deletion, frontdoor, health, partitions, retention

        for hits in (Hit, BotHit):
            partitions.register(hits._meta.db_table, "created_at")
        health.register("rollups", health_check)
        health.register("geoip", geoip.health_check)
        cleanup.register("analytics", tasks.prune)
        retention.register("hits", purge_hits)
        frontdoor.register("sites", 10, sites_panel)
        start = site_deletion.start_deleting
        deletion.register("account", "sites", site_deletion.delete_account_sites, start=start)
        deletion.register("site", "site", site_deletion.delete_site_step, start=start)
        deletion.register("hits", "hits", site_deletion.delete_hits_before)

        for model in (Site, Domain):
            post_save.connect(forget_pixel_sites, sender=model, dispatch_uid=f"forget-{model.__name__}-saved")
            post_delete.connect(forget_pixel_sites, sender=model, dispatch_uid=f"forget-{model.__name__}-deleted")
