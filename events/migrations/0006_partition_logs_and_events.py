"""Log messages (by created) and events (by their date, as Bytelog lists them and retention keeps them) become
partitioned by month (logsvc.partitions): every row, id and the id sequence's position kept; the months of the
rows there are, this month and the next two are created, and a default partition takes any other. Django's
state is unchanged: the primary keys are (id, created) and (id, date) in the database, and the event's uid is
unique with its date (uid is 96 random bits; its index still finds an event by uid alone)."""

from django.db import migrations

from logsvc.partitions import partition_table, unpartition_table

TABLES = [("events_logmessage", "created"), ("events_event", "date")]


def forward(apps, schema_editor):
    for table, column in TABLES:
        partition_table(schema_editor, table, column)


def backward(apps, schema_editor):
    for table, column in TABLES:
        unpartition_table(schema_editor, table, column)


class Migration(migrations.Migration):
    dependencies = [("events", "0005_eventretention_logretention")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
