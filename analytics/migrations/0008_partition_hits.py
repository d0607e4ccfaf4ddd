"""Hits and bot hits become partitioned by month of created_at (logsvc.partitions): every row, id and the id
sequence's position kept; the months of the rows there are, this month and the next two are created, and a
default partition takes any other. Django's state is unchanged (its `id` primary key is (id, created_at) in the
database)."""

from django.db import migrations

from logsvc.partitions import partition_table, unpartition_table

TABLES = [("analytics_hit", "created_at"), ("analytics_bothit", "created_at")]


def forward(apps, schema_editor):
    for table, column in TABLES:
        partition_table(schema_editor, table, column)


def backward(apps, schema_editor):
    for table, column in TABLES:
        unpartition_table(schema_editor, table, column)


class Migration(migrations.Migration):
    dependencies = [("analytics", "0007_site_data_retention_site_hits_deleted_before")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
