"""Logster's search vector covers each field's first 32,768 characters, so it never overflows a tsvector."""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0001_initial'),
    ]

    # PostgreSQL 15 can't change a generated column's expression: the column (and its index) are made anew.
    operations = [
        migrations.RemoveIndex(model_name="logmessage", name="logmessage_search"),
        migrations.RemoveField(model_name="logmessage", name="search"),
        migrations.AddField(
            model_name="logmessage",
            name="search",
            field=models.GeneratedField(db_persist=True, expression=django.contrib.postgres.search.SearchVector(models.Func(django.db.models.functions.text.Left(models.F('message'), 32768), models.Value('./\\'), models.Value('   '), function='translate', output_field=models.TextField()), models.Func(django.db.models.functions.text.Left(models.F('exception'), 32768), models.Value('./\\'), models.Value('   '), function='translate', output_field=models.TextField()), models.Func(django.db.models.functions.text.Left(models.F('stack_trace'), 32768), models.Value('./\\'), models.Value('   '), function='translate', output_field=models.TextField()), config='english'), output_field=django.contrib.postgres.search.SearchVectorField()),
        ),
        migrations.AddIndex(
            model_name="logmessage",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search"], name="logmessage_search"),
        ),
    ]
