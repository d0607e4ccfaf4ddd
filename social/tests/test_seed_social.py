"""manage.py seed_social: a small data set, checked for consistency (not for realism)."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.db.models import Count, F, Model

from logsvc.models import User
from social.management.commands.seed_social import SEED_EMAIL_DOMAIN, counter_model
from social.models import Activity, Comment, Follow, Like, Log, LogTag, Tag

USERS, LOGS = 40, 600


def seed(**options) -> None:
    call_command("seed_social", users=USERS, logs=LOGS, seed=3, no_progress=True, verbosity=0, **options)


@pytest.fixture
def seeded(db) -> None:
    seed(truncate=True)


def seeded_users():
    return User.objects.filter(email__endswith=f"@{SEED_EMAIL_DOMAIN}")


def table_counts() -> dict[str, int]:
    models: list[type[Model]] = [
        Log,
        LogTag,
        Comment,
        Like,
        Follow,
        Activity,
        Tag,
        Log.mentions.through,
        Comment.mentions.through,
    ]
    return {m._meta.db_table: m._default_manager.count() for m in models} | {"users": seeded_users().count()}


def test_row_counts(seeded):
    assert seeded_users().count() == USERS
    assert Log.objects.count() == LOGS
    assert 100 <= Tag.objects.count() <= 300
    assert LogTag.objects.count() > LOGS // 2
    assert Follow.objects.count() > 0
    assert Comment.objects.count() > 0
    assert Like.objects.count() > 0
    assert Log.mentions.through.objects.count() > 0


def test_every_log_has_a_seeded_user_and_profiles_are_filled(seeded):
    ids = set(seeded_users().values_list("id", flat=True))
    assert set(Log.objects.values_list("user_id", flat=True)) <= ids
    assert not seeded_users().filter(password="").exists()
    assert seeded_users().exclude(bio="").exists()
    assert seeded_users().exclude(location="").exists()


def test_tags_linked_with_the_logs_user_and_time(seeded):
    assert not LogTag.objects.exclude(user_id=F("log__user_id")).exists()
    assert not LogTag.objects.exclude(created=F("log__created")).exists()
    # The #tags written in each log are exactly its LogTag rows.
    linked: dict[int, set[str]] = {}
    for log_id, name in LogTag.objects.values_list("log_id", "tag__name"):
        linked.setdefault(log_id, set()).add(name)
    for log in Log.objects.all():
        assert set(re.findall(r"#(\w+)", log.markdown)) == linked.get(log.id, set()), log.markdown


def test_tag_use_is_skewed(seeded):
    uses = list(LogTag.objects.values("tag").annotate(n=Count("id")).order_by("-n").values_list("n", flat=True))
    assert uses[0] >= 5 * uses[len(uses) // 2]


def test_follow_graph_has_no_self_follows_and_is_skewed(seeded):
    assert not Follow.objects.filter(follower=F("followee")).exists()
    followers = list(Follow.objects.values("followee").annotate(n=Count("id")).values_list("n", flat=True))
    assert max(followers) >= 2 * sorted(followers)[len(followers) // 2]  # small N: everyone follows a third
    assert Follow.objects.values("follower").distinct().count() == USERS  # everyone follows somebody


def test_activity_matches_what_caused_it(seeded):
    assert not Activity.objects.filter(recipient=F("originator")).exists()
    assert Activity.objects.filter(type="follow").count() == Follow.objects.count()
    assert Activity.objects.filter(type="like").count() == Like.objects.count()
    assert not Like.objects.filter(user=F("log__user")).exists()
    assert Activity.objects.filter(type="mention").count() == Log.mentions.through.objects.count()
    assert Activity.objects.filter(type="comment").count() == Comment.objects.exclude(user=F("log__user")).count()
    assert Activity.objects.filter(type="comment_after").exists()
    for activity in Activity.objects.filter(type="like").select_related("log")[:50]:
        assert activity.recipient_id == activity.log.user_id
        assert Like.objects.filter(log=activity.log, user=activity.originator_id).exists()


def test_content_is_what_the_renderer_makes(seeded):
    markdown = pytest.importorskip("social.markdown")
    logs = list(Log.objects.filter(mentions__isnull=False).distinct().order_by("id")[:20])
    logs += list(Log.objects.filter(markdown__contains="#").order_by("id")[:20])
    logs += list(Log.objects.filter(markdown__contains="\n\n").order_by("id")[:10])
    logs += list(Comment.objects.filter(markdown__contains="@").order_by("id")[:10])
    assert len(logs) > 30
    for log in logs:
        assert markdown.render(log.markdown).html == log.content, log.markdown


def test_counters_agree_with_the_rows(seeded):
    Counter = counter_model()
    if Counter is None:
        pytest.skip("no social.Counter model")
    counters = {(c.kind, c.key): c.value for c in Counter.objects.all()}
    assert counters[("logs", 0)] == Log.objects.count()
    assert counters[("tags", 0)] == Tag.objects.count()
    real = {("user_logs", u): n for u, n in Log.objects.values_list("user").annotate(n=Count("id")).order_by()}
    real |= {("tag_logs", t): n for t, n in LogTag.objects.values_list("tag").annotate(n=Count("id")).order_by()}
    real |= {
        ("activity", r): n for r, n in Activity.objects.values_list("recipient").annotate(n=Count("id")).order_by()
    }
    assert {k: v for k, v in counters.items() if k[0] in ("user_logs", "tag_logs", "activity")} == real


def test_twice_with_truncate_gives_the_same_data_set(seeded):
    first = table_counts()
    seed(truncate=True)
    assert table_counts() == first


def test_without_truncate_it_adds_and_the_sequences_follow(seeded):
    first = table_counts()
    seed()
    assert seeded_users().count() == 2 * USERS
    assert Log.objects.count() == 2 * LOGS
    assert Tag.objects.count() == first["social_tag"]  # the same vocabulary, reused
    # New rows from the ORM get ids past the seeded ones.
    user = seeded_users().first()
    assert Log.objects.create(user=user, markdown="x", content="<p>x</p>").id > max(
        Log.objects.exclude(markdown="x").values_list("id", flat=True)
    )
    assert User.objects.create_user("after-seed").id > max(seeded_users().values_list("id", flat=True))
    Counter = counter_model()
    if Counter is not None:
        assert Counter.objects.get(kind="logs", key=0).value == 2 * LOGS  # the seed's; the ORM's log is uncounted
