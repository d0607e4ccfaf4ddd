"""Hits and bot hits are partitioned by month (logsvc.partitions): the migration from the plain tables keeps every
row and id, rows land in their month, an old hit is stored (in the default partition, or its own month for an
import), the worker creates the months ahead, and retention drops a whole month while the stats keep its counts."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from analytics import sites
from analytics.importer import Importer
from analytics.models import BotHit, Domain, Hit, Path, Site
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits
from conftest import client_with_key, make_key
from logsvc import partitions, retention
from logsvc.models import RetentionRun

HOST = "stats.alice.example"
NOW = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)
HIT, BOTHIT = Hit._meta.db_table, BotHit._meta.db_table
BEFORE = ("analytics", "0007_site_data_retention_site_hits_deleted_before")
AFTER = ("analytics", "0008_partition_hits")


@pytest.fixture(autouse=True)
def _setup(settings, monkeypatch):
    settings.ALLOWED_HOSTS = ["*"]
    settings.RETENTION_BATCH = 3
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    sites.forget_pixel_sites()
    partitions._known.clear()


@pytest.fixture
def site(alice) -> Site:
    site = Site.objects.create(code="alice-blog", owner=alice, data_retention=31)
    Domain.objects.create(site=site, domain=HOST)
    return site


def store(site: Site, at: datetime, count: int, path: str = "/", **fields) -> None:
    hits = [CleanHit(path=path, created_at=at, visitor=uuid.uuid4(), **fields) for _ in range(count)]
    with transaction.atomic():
        record_hits(site, hits)


def where(table: str) -> dict[int, str]:
    """Each row's id -> the partition it is in."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, tableoid::regclass::text FROM {table}")
        return dict(cursor.fetchall())


def month(year: int, number: int) -> datetime:
    return datetime(year, number, 1, tzinfo=UTC)


def names(table: str) -> list[str]:
    return [p.name for p in partitions.partitions(table)]


def test_hits_land_in_their_months_partition_and_old_ones_in_the_default(site):
    this_month = partitions.month_of(datetime.now(UTC))
    assert partitions.partition_name(HIT, this_month) in names(HIT)  # the migration made it, and the next two
    assert partitions.partition_name(HIT, partitions.add_months(this_month, 2)) in names(HIT)
    store(site, datetime.now(UTC), 2)
    store(site, datetime(2011, 3, 4, tzinfo=UTC), 1)  # an API client's created_at of years ago: stored
    store(site, datetime(2011, 3, 4, tzinfo=UTC), 1, bot=1)
    placed = sorted(where(HIT).values())
    assert placed == sorted([f"{HIT}_default", *[partitions.partition_name(HIT, this_month)] * 2])
    assert list(where(BOTHIT).values()) == [f"{BOTHIT}_default"]
    # Creating the month moves its rows out of the default, ids and all.
    old = Hit.objects.get(created_at__year=2011)
    assert partitions.ensure(HIT, [month(2011, 3)]) == [f"{HIT}_201103"]
    assert where(HIT)[old.pk] == f"{HIT}_201103"
    assert Hit.objects.get(pk=old.pk).created_at == datetime(2011, 3, 4, tzinfo=UTC)
    assert partitions.ensure(HIT, [month(2011, 3)]) == []


def test_the_api_stores_a_hit_of_long_ago(site, alice):
    client = client_with_key(make_key(alice))
    r = client.post(
        "/api/v0/count",
        {"no_sessions": True, "hits": [{"path": "/old", "created_at": "1999-12-31T23:59:59Z"}]},
        format="json",
        HTTP_HOST=HOST,
    )
    assert r.status_code == 202, r.content
    hit = Hit.objects.get()
    assert where(HIT)[hit.pk] == f"{HIT}_default"


def test_an_import_creates_the_months_of_its_hits(site, tmp_path):
    log = tmp_path / "access.log"
    log.write_text(
        '1.2.3.4 - - [10/Jan/2015:13:55:36 +0000] "GET /a HTTP/1.1" 200 2326 "-" "Mozilla/5.0 Firefox/120.0"\n'
        '1.2.3.4 - - [10/Feb/2015:13:55:36 +0000] "GET /b HTTP/1.1" 200 2326 "-" "Mozilla/5.0 Firefox/120.0"\n'
        '1.2.3.4 - - [10/Feb/2015:13:55:37 +0000] "GET /c HTTP/1.1" 200 2326 "-" "Googlebot/2.1"\n'
    )
    with log.open("rb") as source:
        summary = Importer(site, "combined").import_file(source)
    assert summary.imported == 3
    assert sorted(where(HIT).values()) == [f"{HIT}_201501", f"{HIT}_201502"]
    assert list(where(BOTHIT).values()) == [f"{BOTHIT}_201502"]


def run_worker() -> None:
    DBTaskResult.objects.filter(task_path=retention.run_retention.module_path, status="READY").delete()
    assert retention.schedule(delay=0)
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)


def total(client, start: str, end: str) -> tuple[int, int]:
    r = client.get("/api/v0/stats/total", {"start": start, "end": end}, HTTP_HOST=HOST)
    assert r.status_code == 200
    return r.json()["total"], r.json()["total_pageviews"]


def test_the_worker_creates_the_months_ahead_and_retention_drops_a_whole_month(site, alice, settings):
    stats = client_with_key(make_key(alice, "stats"))
    partitions.ensure(HIT, [month(2030, 3), month(2030, 5)])
    store(site, datetime(2030, 3, 10, tzinfo=UTC), 5, path="/march", browser="Firefox 131")
    store(site, datetime(2030, 5, 20, tzinfo=UTC), 2, path="/may")  # after the cut (May 15th): kept
    store(site, datetime(2030, 6, 1, tzinfo=UTC), 3, path="/june")  # the default's until the worker makes June
    roll_up()
    with time_machine.travel(NOW, tick=False):
        before = total(stats, "2030-03-01", "2030-06-15")
        run_worker()
        assert total(stats, "2030-03-01", "2030-06-15") == before == (10, 10)
    assert {f"{HIT}_203006", f"{HIT}_203007", f"{HIT}_203008"} <= set(names(HIT))
    assert f"{HIT}_203003" not in names(HIT)  # dropped whole
    assert f"{HIT}_203005" in names(HIT)  # the cut falls in May: its old rows would go one by one
    assert sorted(Hit.objects.values_list("path__path", flat=True)) == ["/june"] * 3 + ["/may"] * 2
    assert set(where(HIT).values()) == {f"{HIT}_203005", f"{HIT}_203006"}  # June's moved out of the default
    assert RetentionRun.objects.get(trigger="worker").deleted["hits"] == 5


def test_a_month_shared_with_a_site_that_keeps_its_hits_is_not_dropped(site, charlie):
    forever = Site.objects.create(code="charlie-site", owner=charlie)  # data_retention 0
    partitions.ensure(HIT, [month(2030, 3)])
    store(site, datetime(2030, 3, 10, tzinfo=UTC), 4)
    store(forever, datetime(2030, 3, 11, tzinfo=UTC), 2)
    roll_up()
    store(site, datetime(2030, 3, 12, tzinfo=UTC), 1)  # not rolled up yet: kept
    with time_machine.travel(NOW, tick=False):
        run_worker()
    assert f"{HIT}_203003" in names(HIT)
    assert Hit.objects.filter(site=forever).count() == 2
    assert Hit.objects.filter(site=site).count() == 1  # deleted row by row instead
    assert RetentionRun.objects.get(trigger="worker").deleted["hits"] == 4


def test_a_month_with_hits_not_yet_rolled_up_is_not_dropped(site):
    partitions.ensure(HIT, [month(2030, 3)])
    store(site, datetime(2030, 3, 10, tzinfo=UTC), 3)
    with time_machine.travel(NOW, tick=False):
        run_worker()
    assert Hit.objects.count() == 3 and f"{HIT}_203003" in names(HIT)


def test_prune_drops_whole_months_of_bot_hits(site, settings):
    settings.BOT_HIT_DAYS = 30
    now = datetime.now(UTC)
    old = partitions.add_months(partitions.month_of(now), -3)
    partitions.ensure(BOTHIT, [old])
    store(site, old + timedelta(days=3), 3, bot=1)
    store(site, now, 1, bot=1)
    out = call_command_output("prune")
    assert "3 old bot hits" in out
    assert partitions.partition_name(BOTHIT, old) not in names(BOTHIT)
    assert BotHit.objects.count() == 1


def call_command_output(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_admin_reads_and_changes_a_hit_by_id(site, admin_client):
    store(site, datetime.now(UTC), 1)
    hit = Hit.objects.get()
    r = admin_client.get(f"/admin/analytics/hit/{hit.pk}/change/")
    assert r.status_code == 200
    assert admin_client.get("/admin/analytics/hit/").status_code == 200
    Hit.objects.filter(pk=hit.pk).update(created_at=datetime(2012, 1, 1, tzinfo=UTC))  # moves to the default
    assert where(HIT)[hit.pk] == f"{HIT}_default"
    assert admin_client.post(f"/admin/analytics/hit/{hit.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Hit.objects.exists()


def test_a_lookup_by_id_uses_each_months_index(site):
    store(site, datetime.now(UTC), 1)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a few rows: the planner would read them all
        cursor.execute(f"EXPLAIN SELECT * FROM {HIT} WHERE id = 1")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan and plan.count("Index Cond: (id = 1)") == len(names(HIT)), plan


@pytest.mark.django_db(transaction=True)
def test_the_migration_partitions_a_populated_table(alice):
    """From the plain tables of 0007, with hits of three years and a sequence past the last id, to 0008."""
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    try:
        with connection.cursor() as cursor:
            assert not partitions.is_partitioned(HIT, cursor)
            site = Site.objects.create(code="alice-blog", owner=alice)
            path = Path.objects.create(site=site, path="/")
            cursor.execute(
                f"""INSERT INTO {HIT} (site_id, path_id, first_visit, ref, ref_scheme, campaign, browser, system,
                        location, language, created_at)
                    SELECT %s, %s, true, '', '', '', 'Firefox', '', '', '', %s + n * interval '1 day'
                    FROM generate_series(0, 999) n""",
                [site.pk, path.pk, datetime(2027, 1, 1, tzinfo=UTC)],
            )
            cursor.execute(
                f"INSERT INTO {BOTHIT} (site_id, path, bot, user_agent, created_at) VALUES (%s, '/', 1, '', %s)",
                [site.pk, datetime(2028, 5, 5, tzinfo=UTC)],
            )
            cursor.execute(f"DELETE FROM {HIT} WHERE id = (SELECT max(id) FROM {HIT}) RETURNING id")
            deleted_id = cursor.fetchone()[0]
            before = dict(Hit.objects.values_list("id", "created_at"))
        executor = MigrationExecutor(connection)
        executor.migrate([AFTER])
        with connection.cursor() as cursor:
            assert partitions.is_partitioned(HIT, cursor) and partitions.is_partitioned(BOTHIT, cursor)
            cursor.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                [HIT],
            )
            assert cursor.fetchone()[0] == "PRIMARY KEY (id, created_at)"
            cursor.execute(
                "SELECT count(*) FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%(site_id, id)'",
                [f"{HIT}_202701"],
            )
            assert cursor.fetchone()[0] == 1  # each month has the (site, id) index
        assert dict(Hit.objects.values_list("id", "created_at")) == before
        placed = where(HIT)
        assert {placed[i] for i in before} == {f"{HIT}_{y}{m:02}" for y in (2027, 2028, 2029) for m in range(1, 13)} - {
            f"{HIT}_{y}{m:02}" for y, m in [(2029, 10), (2029, 11), (2029, 12)]
        }
        assert all(placed[i] == partitions.partition_name(HIT, partitions.month_of(at)) for i, at in before.items())
        assert list(where(BOTHIT).values()) == [f"{BOTHIT}_202805"]
        this_month = partitions.month_of(datetime.now(UTC))
        assert partitions.partition_name(HIT, partitions.add_months(this_month, 2)) in names(HIT)
        assert names(HIT)[-1] == f"{HIT}_default"
        # The sequence goes on where it was, past the deleted last id.
        store(site, datetime.now(UTC), 1)
        assert Hit.objects.order_by("-id").first().pk == deleted_id + 1
        # ... and back: the plain table again, with the same rows.
        executor = MigrationExecutor(connection)
        executor.migrate([BEFORE])
        with connection.cursor() as cursor:
            assert not partitions.is_partitioned(HIT, cursor)
            cursor.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                [HIT],
            )
            assert cursor.fetchone()[0] == "PRIMARY KEY (id)"
        assert Hit.objects.count() == 1000
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)  # it VACUUMs
def test_seed_analytics_creates_the_months_of_its_hits(alice):
    call_command("seed_analytics", "--site", "seeded", "--owner", "alice", "--hits", "300", "--days", "100",
                 stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    assert Hit.objects.count() == 300
    assert f"{HIT}_default" not in set(where(HIT).values())
    assert len(set(where(HIT).values())) >= 4  # 100 days span four months at least
