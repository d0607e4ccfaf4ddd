"""An index for a log's latest likes (a log carries its latest 20 inline), built without locking writes."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("social", "0001_initial")]

    operations = [
        AddIndexConcurrently(
            model_name="like", index=models.Index(fields=["log", "created"], name="like_log_created")
        ),
    ]
