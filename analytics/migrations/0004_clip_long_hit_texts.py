"""Hits stored before campaigns and referrers had a byte limit (MAX_CAMPAIGN 256, MAX_REF 2048) are cut to it,
so the rollups can fold them in (a longer pair overflowed PostgreSQL's 2,704-byte index rows)."""

from django.db import migrations

LIMITS = {"campaign": 256, "ref": 2048}


def clip(value: str, limit: int) -> str:
    return value.encode()[:limit].decode(errors="ignore")


def clip_hits(apps, schema_editor):
    Hit = apps.get_model("analytics", "Hit")
    table = Hit._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, campaign, ref FROM {table} WHERE octet_length(campaign) > %s OR octet_length(ref) > %s",
            [LIMITS["campaign"], LIMITS["ref"]],
        )
        rows = cursor.fetchall()
        for hit_id, campaign, ref in rows:
            cursor.execute(
                f"UPDATE {table} SET campaign = %s, ref = %s WHERE id = %s",
                [clip(campaign, LIMITS["campaign"]), clip(ref, LIMITS["ref"]), hit_id],
            )


class Migration(migrations.Migration):
    dependencies = [("analytics", "0003_rollup_failure")]

    operations = [migrations.RunPython(clip_hits, migrations.RunPython.noop)]
