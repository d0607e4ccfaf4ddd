"""An index of PathHour by site, path and hour, with the counts: stats/hits reads its paths' hours from it alone.
Built CONCURRENTLY, so the rollups go on writing while a big table is indexed."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("analytics", "0009_imported_keys_visits")]

    operations = [
        AddIndexConcurrently(
            model_name="pathhour",
            index=models.Index(
                fields=["site", "path", "hour"], include=("visitors", "pageviews"), name="analytics_pathhour_path"
            ),
        ),
    ]
