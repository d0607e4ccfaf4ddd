"""Each event knows the size of its data, so a page of events can stop at PAGE_MAX_BYTES."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0002_search_first_chars'),
    ]

    operations = [
        migrations.AddField(
            model_name='event',
            name='size',
            field=models.PositiveIntegerField(default=0, editable=False, help_text="Bytes of data's JSON, for paging."),
        ),
        # Events stored before: their JSON's length as PostgreSQL writes it (near enough to orjson's).
        migrations.RunSQL(
            "UPDATE events_event SET size = octet_length(data::text) WHERE size = 0",
            migrations.RunSQL.noop,
        ),
    ]
