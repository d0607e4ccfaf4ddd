"""littlelogs' part of deleting an account (logsvc.deletion): its logs, comments, likes, follows and activity, a
batch at a time, with the counters of everyone else put right in each batch's transaction (as social.services
does for one log or comment)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from django.db import transaction
from django.db.models import Count, Q

from logsvc.deletion import batch_size, delete_in_batches
from logsvc.models import Deletion, User
from social.markdown import render
from social.models import Activity, Comment, Counter, Follow, Like, Log, LogTag

Kind = Counter.Kind


def _activity_counted(activity: Tally[tuple[str, int]], rows: object) -> None:
    for recipient, n in rows:  # type: ignore[attr-defined]
        activity[(Kind.ACTIVITY, recipient)] -= n


def delete_account_content(deletion: Deletion) -> Iterator[int]:
    user_id = deletion.target
    yield from _delete_logs(user_id)
    yield from _delete_comments(user_id)
    # What the account did to others' logs and to them: their notifications of it, counted off theirs.
    while True:
        with transaction.atomic():
            ids = list(
                Activity.objects.select_for_update()
                .filter(originator_id=user_id)
                .exclude(recipient_id=user_id)
                .values_list("id", flat=True)[: batch_size()]
            )
            if not ids:
                break
            changes: Tally[tuple[str, int]] = Tally()
            _activity_counted(
                changes,
                Activity.objects.filter(id__in=ids).values_list("recipient_id").annotate(n=Count("id")).order_by(),
            )
            deleted = Activity.objects.filter(id__in=ids).delete()[0]
            Counter.objects.add(dict(changes))
        yield deleted
    yield from delete_in_batches(Like._meta.db_table, "user_id = %s", [user_id])
    yield from delete_in_batches(Follow._meta.db_table, "follower_id = %s OR followee_id = %s", [user_id, user_id])
    yield from delete_in_batches(Activity._meta.db_table, "recipient_id = %s", [user_id])
    yield from _unlink_mentions(user_id)
    with transaction.atomic():
        yield Counter.objects.filter(Q(kind=Kind.USER_LOGS) | Q(kind=Kind.ACTIVITY), key=user_id).delete()[0]


def _delete_logs(user_id: int) -> Iterator[int]:
    """The account's logs, with others' comments, likes and notifications on them (by cascade), counted off."""
    while True:
        with transaction.atomic():
            # The row locks keep a comment or like from landing on a log between its count and its delete.
            ids = list(
                Log.objects.select_for_update()
                .filter(user_id=user_id)
                .order_by("id")
                .values_list("id", flat=True)[: batch_size()]
            )
            if not ids:
                return
            changes: Tally[tuple[str, int]] = Tally({(Kind.LOGS, 0): -len(ids), (Kind.USER_LOGS, user_id): -len(ids)})
            for tag_id, n in (
                LogTag.objects.filter(log_id__in=ids).values_list("tag_id").annotate(n=Count("id")).order_by()
            ):
                changes[(Kind.TAG_LOGS, tag_id)] -= n
            _activity_counted(
                changes,
                Activity.objects.filter(log_id__in=ids).values_list("recipient_id").annotate(n=Count("id")).order_by(),
            )
            deleted = Log.objects.filter(id__in=ids).delete()[0]
            Counter.objects.add(dict(changes))
        yield deleted


def _delete_comments(user_id: int) -> Iterator[int]:
    """The account's comments on others' logs, with their notifications, counted off."""
    while True:
        with transaction.atomic():
            ids = list(
                Comment.objects.select_for_update()
                .filter(user_id=user_id)
                .order_by("id")
                .values_list("id", flat=True)[: batch_size()]
            )
            if not ids:
                return
            changes: Tally[tuple[str, int]] = Tally()
            _activity_counted(
                changes,
                Activity.objects.filter(comment_id__in=ids)
                .values_list("recipient_id")
                .annotate(n=Count("id"))
                .order_by(),
            )
            deleted = Comment.objects.filter(id__in=ids).delete()[0]
            Counter.objects.add(dict(changes))
        yield deleted


def _unlink_mentions(user_id: int) -> Iterator[int]:
    """Others' logs and comments that mention the account keep the words their authors wrote, but their HTML is
    rendered again without the link to a profile that is going (and whose name a new account could take)."""
    username = User.objects.filter(pk=user_id).values_list("username", flat=True).first() or ""
    for model in (Log, Comment):
        through = model.mentions.through
        while True:
            with transaction.atomic():
                ids = list(
                    through.objects.filter(user_id=user_id).order_by("id").values_list("id", flat=True)[: batch_size()]
                )
                if not ids:
                    break
                for item in model.objects.select_for_update().filter(
                    pk__in=through.objects.filter(id__in=ids).values(f"{model._meta.model_name}_id")
                ):
                    item.content = render(item.markdown, unlinked=frozenset({username.lower()})).html
                    item.save(update_fields=["content"])
                yield through.objects.filter(id__in=ids).delete()[0]
