"""The denormalised counters behind every page's `count`, and their rebuild."""

from __future__ import annotations

from social import services
from social.models import Counter, Log, Tag
from social.tests.conftest import post


def snapshot() -> dict[tuple[str, int], int]:
    return {(c.kind, c.key): c.value for c in Counter.objects.exclude(value=0)}


def test_they_match_a_recount_after_a_busy_day(alice, bob, charlie):
    logs = [post(alice, "#a @bob"), post(bob, "#a #B @alice @charlie"), post(charlie, "#c")]
    services.add_comment(log=logs[0], user=bob, markdown="hi @charlie")
    services.add_comment(log=logs[0], user=charlie, markdown="me too")
    comment = services.add_comment(log=logs[1], user=alice, markdown="#newtag")
    services.like_log(log=logs[2], user=alice)
    services.follow(follower=alice, followee=charlie)
    services.delete_comment(comment=comment)
    services.delete_log(log=logs[0])
    kept = snapshot()
    services.recount()
    assert snapshot() == kept
    assert kept[("logs", 0)] == 2
    assert kept[("tags", 0)] == Tag.objects.count() == 4


def test_a_second_delete_of_the_same_log_counts_nothing(alice):
    log = post(alice)
    stale = Log.objects.get(pk=log.pk)
    services.delete_log(log=log)
    services.delete_log(log=stale)
    assert Counter.objects.value("logs") == 0
    assert Counter.objects.value("user_logs", alice.pk) == 0


def test_add_creates_and_increments_in_one_statement(db, django_assert_num_queries):
    with django_assert_num_queries(1):
        Counter.objects.add({("logs", 0): 2, ("user_logs", 7): 1, ("tags", 0): 0})
    Counter.objects.add({("logs", 0): -1})
    assert Counter.objects.value("logs") == 1
    assert Counter.objects.value("user_logs", 7) == 1
    assert not Counter.objects.filter(kind="tags").exists()  # a zero change writes nothing
    assert Counter.objects.value("activity", 99) == 0  # a missing counter reads as 0
