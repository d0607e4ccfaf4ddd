"""The explorer's histograms from the rollups (events.rollups) say what a direct count of the rows says: rows at the
edges of buckets, back-dated ones, several owners, rows not folded yet, and rows deleted (retention, an account's
deletion, the admin), changed or truncated after they were counted."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import psycopg
import pytest
import time_machine
from django.db import connection
from django.test import Client
from django_tasks_db.models import DBTaskResult

from conftest import client_with_key, make_key
from events import explorer, rollups
from events.deletion import delete_account_data
from events.explorer import BUCKETS, Rolled, floor_to, pieces, rolled_counts
from events.models import Event, EventCount, EventRetention, LogCount, LogMessage, LogRetention, RollupCursor
from events.retention import purge_events, purge_log_messages
from events.rollups import LEVELS, ROLLUPS, roll_up
from logsvc import partitions
from logsvc.groupcommit import conninfo
from logsvc.models import User

NOW = datetime(2026, 3, 2, 12, 0, 30, 250_000, tzinfo=UTC)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # on every level's edge (a day's, 3 hours', 15 minutes', a minute's)
US = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", email="bob@example.org", password="bob-password")


def moments(rng: random.Random) -> list[datetime]:
    """Times on and either side of every level's edges, back-dated ones, and some at random over 10 days."""
    edges = [T0 + timedelta(seconds=span * k) for span in LEVELS for k in (-2, -1, 0, 1)]
    found = [moment + delta for moment in edges for delta in (-US, timedelta(0), US)]
    found += [NOW - timedelta(days=40), NOW - timedelta(days=400), NOW - timedelta(days=1, microseconds=1)]
    found += [NOW - timedelta(seconds=rng.uniform(0, 10 * 86400)) for _ in range(60)]
    found += [NOW - timedelta(seconds=rng.uniform(0, 3600)) for _ in range(30)]
    return found


def add_rows(owners: list[User], rng: random.Random) -> None:
    for owner in owners:
        for moment in moments(rng):
            LogMessage.objects.create(
                owner=owner,
                message="m",
                severity=rng.randint(0, 6),
                application=rng.choice(["shop", "noisy"]),
                created=moment,
            )
            # Events may come from the future too (a client's clock).
            Event.objects.create(
                owner=owner, name=rng.choice(["a", "b"]), date=moment + timedelta(hours=rng.choice([0, 0, 3]))
            )


def direct(model, field: str, owner: User, lo, hi, size, min_severity: int | None) -> Counter:
    rows = model.objects.filter(owner=owner, **{f"{field}__gte": lo, f"{field}__lt": hi})
    if min_severity is not None:
        rows = rows.filter(severity__gte=min_severity)
    counted: Counter = Counter()
    for moment, severity in rows.values_list(field, "severity" if min_severity is not None else field):
        counted[(floor_to(moment, size), severity if min_severity is not None else None)] += 1
    return counted


def check_counts(owners: list[User], rng: random.Random, tries: int = 40) -> None:
    """rolled_counts() equals a direct count for ranges on edges and at random, every bar size, both tables."""
    ranges = [(T0, T0 + timedelta(days=1)), (T0 - US, T0 + US), (T0 - timedelta(days=3, seconds=1), NOW)]
    ranges += [(NOW - timedelta(days=500), NOW + timedelta(days=1))]
    for _ in range(tries):
        a = NOW - timedelta(seconds=rng.uniform(0, 12 * 86400))
        ranges.append((a, a + timedelta(seconds=rng.choice([30, 90, 3600, 86400 * rng.uniform(0, 5)]))))
    for owner in owners:
        for lo, hi in ranges:
            size = rng.choice(BUCKETS)
            severity = rng.choice([0, 0, 3, 5])
            got = rolled_counts(Rolled(ROLLUPS["logs"], owner.pk, severity), "default", lo, hi, size)
            want = direct(LogMessage, "created", owner, lo, hi, size, severity)
            assert Counter({k: v for k, v in got.items() if v}) == want, (owner, lo, hi, size, severity)
            got = rolled_counts(Rolled(ROLLUPS["events"], owner.pk), "default", lo, hi, size)
            assert Counter({k: v for k, v in got.items() if v}) == direct(Event, "date", owner, lo, hi, size, None)


def check_rollup_tables() -> None:
    """Every level's buckets hold exactly the rows at or below the cursor, and no empty bucket is kept."""
    for model, rows, field, group in (
        (LogCount, LogMessage, "created", ("severity",)),
        (EventCount, Event, "date", ()),
    ):
        name = "logs" if model is LogCount else "events"
        folded = RollupCursor.objects.filter(name=name).values_list("last_id", flat=True).first() or 0
        want: Counter = Counter()
        for owner_id, moment, *more in rows.objects.filter(id__lte=folded).values_list("owner_id", field, *group):
            for span in LEVELS:
                want[(owner_id, span, floor_to(moment, timedelta(seconds=span)), *more)] += 1
        got = {tuple(key): n for *key, n in model.objects.values_list("owner_id", "span", "bucket", *group, "n")}
        assert got == dict(want)


def test_a_range_is_whole_buckets_and_minute_ends_that_cover_it_once():
    rng = random.Random(1)
    for _ in range(2000):
        lo = T0 + timedelta(seconds=rng.uniform(-40 * 86400, 40 * 86400))
        if rng.random() < 0.3:
            lo = floor_to(lo, timedelta(seconds=rng.choice(LEVELS)))
        hi = lo + timedelta(seconds=rng.choice([0.5, 59, 61, 3600, 86400, 20 * 86400]) * rng.random() * 2)
        size = rng.choice(BUCKETS)
        edges, runs = pieces(lo, hi, size)
        parts = sorted([*edges, *((run.start, run.end) for run in runs)])
        assert parts[0][0] == lo and parts[-1][1] == hi
        assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))  # no gap, no overlap
        assert all(b - a < timedelta(minutes=1 if runs else 2) for a, b in edges)  # the rows count minutes' parts
        for run in runs:
            assert size % run.span == timedelta(0)
            assert floor_to(run.start, run.span) == run.start and floor_to(run.end, run.span) == run.end
        assert len(runs) <= 2 * len(LEVELS)


def test_the_histogram_counts_what_the_rows_say_through_folds_deletions_and_changes(alice, bob, charlie):
    rng = random.Random(7)
    owners = [alice, bob, charlie]
    add_rows(owners, rng)
    check_counts(owners, rng)  # nothing folded: all counted from the rows
    roll_up()
    assert RollupCursor.objects.get(name="logs").last_id == LogMessage.objects.latest("id").pk
    assert RollupCursor.objects.get(name="events").last_id == Event.objects.latest("id").pk
    check_rollup_tables()
    check_counts(owners, rng)
    add_rows(owners, rng)  # not folded yet, some back-dated
    check_counts(owners, rng)
    roll_up()
    check_rollup_tables()
    add_rows([alice, bob], rng)  # some of these go before they are folded

    # Retention: alice keeps "noisy" 1 day, bob's events 2 days
    LogRetention.objects.create(owner=alice, application="noisy", days=1)
    EventRetention.objects.create(owner=bob, days=2)
    assert purge_log_messages(NOW) > 0
    assert purge_events(NOW) > 0
    # The admin: some deleted, some moved in time or made more severe
    for model in (LogMessage, Event):
        ids = list(model.objects.values_list("id", flat=True))
        model.objects.filter(id__in=rng.sample(ids, 40)).delete()
    LogMessage.objects.filter(id__in=rng.sample(list(LogMessage.objects.values_list("id", flat=True)), 30)).update(
        severity=6
    )
    moved = rng.sample(list(Event.objects.values_list("id", flat=True)), 30)
    Event.objects.filter(id__in=moved).update(date=T0 - timedelta(days=2))
    check_rollup_tables()
    check_counts(owners, rng)

    # Charlie's account is deleted: its part in the rollups goes with its rows
    for _ in delete_account_data(SimpleNamespace(target=charlie.pk)):
        pass
    assert not LogCount.objects.filter(owner=charlie).exists()
    assert not EventCount.objects.filter(owner=charlie).exists()
    roll_up()
    check_rollup_tables()
    check_counts(owners, rng)
    bob.delete()  # the cascade (as the admin's deletion of a user)
    check_rollup_tables()

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction: no deferred check may wait
        cursor.execute("TRUNCATE events_logmessage, events_event")
    assert not LogCount.objects.exists() and not EventCount.objects.exists()
    add_rows([alice], rng)
    check_counts([alice], rng, tries=10)
    roll_up()
    check_rollup_tables()
    check_counts([alice], rng, tries=10)


@pytest.fixture
def web(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.mark.parametrize(
    "query",
    [
        "",
        "range=15m",
        "range=1h",
        "range=7d",
        "range=30d",
        "range=all",
        "range=all&severity=5",
        "severity=3",
        "since=2026-03-02T09:00&until=2026-03-02T09:17",
        "since=2026-03-01T08:59&until=2026-03-02T11:01",
        "since=2026-02-20",
    ],
)
def test_the_pages_histograms_are_the_same_from_the_rollups_as_from_the_rows(web, alice, bob, monkeypatch, query):
    rng = random.Random(3)
    add_rows([alice, bob], rng)
    roll_up()
    add_rows([alice, bob], rng)  # and some not folded yet
    event_query = query.replace("since", "start").replace("until", "end").replace("&severity=5", "")
    event_query = "" if event_query.startswith("severity") else event_query
    rolled = (web.get(f"/logs/histogram?{query}").content, web.get(f"/events/histogram?{event_query}").content)
    monkeypatch.setattr(explorer, "rolled_logs", lambda user, params: None)
    monkeypatch.setattr(explorer, "rolled_events", lambda user, params: None)
    counted = (web.get(f"/logs/histogram?{query}").content, web.get(f"/events/histogram?{event_query}").content)
    assert rolled == counted
    assert b"<rect class=" in rolled[0] and b"<rect class=" in rolled[1]


def test_a_search_is_counted_from_its_rows_the_newest_first_up_to_a_cap(web, alice, settings):
    for minutes in range(0, 600, 20):
        LogMessage.objects.create(
            owner=alice, message="disk full", severity=4, created=NOW - timedelta(minutes=minutes)
        )
    LogMessage.objects.create(owner=alice, message="all good", severity=2, created=NOW)
    html = web.get("/logs/histogram?q=disk").content.decode()
    assert "30 messages" in html and "uncounted" not in html
    settings.EXPLORER_HISTOGRAM_MAX_ROWS = 10
    html = web.get("/logs/histogram?q=disk").content.decode()
    assert "More than" in html and 'class="uncounted"' in html
    assert "the bars from 2 Mar" in html and "Narrow the range" in html
    html = web.get("/logs/histogram?q=disk&range=1h").content.decode()
    assert "4 messages" in html and "uncounted" not in html  # under the cap: all of it (the first on the edge)


def insert_in_thread(ready: threading.Event, go: threading.Event, owner_id: int, created: datetime) -> None:
    """As Logster's hot path does (events.asgi.write_items): take an id from the sequence, wait, then insert it."""
    with psycopg.connect(**conninfo()) as conn:
        taken = conn.execute("SELECT nextval(pg_get_serial_sequence('events_logmessage', 'id'))").fetchone()
        assert taken is not None
        (new_id,) = taken
        ready.set()
        go.wait(10)
        conn.execute(
            "INSERT INTO events_logmessage (id, owner_id, message, exception, stack_trace, severity, category,"
            " application, \"user\", created) VALUES (%s, %s, 'late', '', '', 4, '', '', '', %s)",
            [new_id, owner_id, created],
        )


@pytest.mark.django_db(transaction=True)
def test_a_fold_never_passes_an_id_handed_out_but_not_yet_committed_and_holds_up_no_insert(alice, monkeypatch):
    monkeypatch.setattr(rollups, "WAIT_SECONDS", 0.3)
    ready, go = threading.Event(), threading.Event()
    writer = threading.Thread(target=insert_in_thread, args=(ready, go, alice.pk, T0))
    writer.start()
    try:
        assert ready.wait(10)
        # A higher id, committed
        later = LogMessage.objects.create(owner=alice, message="on time", severity=2, created=T0)
        assert roll_up()["logs"] == 0  # it waits for the insert in flight, then gives up for now
        assert RollupCursor.objects.get(name="logs").last_id < later.pk

        monkeypatch.setattr(rollups, "WAIT_SECONDS", 10)
        folded: dict[str, int] = {}
        fold = threading.Thread(target=lambda: folded.update(roll_up()) or connection.close())
        fold.start()
        time.sleep(0.2)
        started = time.monotonic()
        LogMessage.objects.create(owner=alice, message="meanwhile", severity=3, created=T0)
        assert time.monotonic() - started < 1  # the fold waiting makes no insert wait
        assert fold.is_alive()
    finally:
        go.set()
        writer.join()
    fold.join()
    assert folded["logs"] > 0
    got = rolled_counts(Rolled(ROLLUPS["logs"], alice.pk), "default", T0, T0 + timedelta(hours=1), timedelta(hours=1))
    assert got == {(T0, 4): 1, (T0, 3): 1, (T0, 2): 1}
    roll_up()
    assert sorted(LogCount.objects.filter(owner=alice, span=60).values_list("severity", "n")) == [
        (2, 1),
        (3, 1),
        (4, 1),
    ]


@pytest.mark.django_db(transaction=True)
def test_stored_rows_ask_the_worker_for_a_fold(alice, monkeypatch):
    monkeypatch.setattr(rollups.schedule_roll_up, "next_slot", 0.0)
    client = client_with_key(make_key(alice))
    queued = DBTaskResult.objects.filter(task_path="events.rollups.roll_up_explorer")
    assert client.post("/api/v1/events", [{"name": "a"}, {"name": "b"}], format="json").status_code == 201
    assert queued.count() == 1  # at once
    assert client.post("/api/Log", {"Message": "hello", "Severity": 2}, format="json").status_code == 200
    assert queued.count() == 2  # at the next slot, EXPLORER_ROLLUP_SECONDS on: the last rows of a burst
    assert client.post("/api/v1/events", {"name": "c"}, format="json").status_code == 201
    assert queued.count() == 2  # that one will fold this too
    rollups.roll_up_explorer.call()
    assert [row.n for row in LogCount.objects.filter(owner=alice)] == [1] * len(LEVELS)
    assert [row.n for row in EventCount.objects.filter(owner=alice)] == [3] * len(LEVELS)


def test_a_month_dropped_whole_takes_its_buckets_with_it(alice, bob):
    november, december = datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC)
    for model in (LogMessage, Event):
        partitions.ensure(model._meta.db_table, [november, december])
    LogRetention.objects.create(owner=alice, days=60)
    EventRetention.objects.create(owner=alice, days=60)
    # alice's on the month's first and last instants; bob (no rule) on December's first, so December stays
    for owner, moment in ((alice, november), (alice, november + timedelta(days=1)), (alice, december - US)):
        LogMessage.objects.create(owner=owner, message="m", severity=3, created=moment)
        Event.objects.create(owner=owner, name="e", date=moment)
    LogMessage.objects.create(owner=bob, message="m", severity=3, created=december)
    Event.objects.create(owner=bob, name="e", date=december)
    roll_up()
    check_rollup_tables()
    assert LogCount.objects.filter(owner=alice).exists() and EventCount.objects.filter(owner=alice).exists()

    assert (purge_log_messages(NOW), purge_events(NOW)) == (3, 3)

    for model in (LogMessage, Event):
        left = [p.name for p in partitions.partitions(model._meta.db_table)]
        assert partitions.partition_name(model._meta.db_table, november) not in left  # dropped, not deleted
        assert partitions.partition_name(model._meta.db_table, december) in left
    check_rollup_tables()  # the triggers never saw those rows go: the drop took their buckets
    assert not LogCount.objects.filter(owner=alice).exists() and not EventCount.objects.filter(owner=alice).exists()
    check_counts([alice, bob], random.Random(3))
