"""littlelogs writes that span models: each one updates its rows, its Activity and its Counters in one
transaction, so a notification or a page count never disagrees with what was committed."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.utils import timezone

from logsvc.models import User
from social.markdown import Rendered, render
from social.models import Activity, Comment, Counter, Follow, Like, Log, LogTag, Tag

Kind = Counter.Kind
Changes = dict[tuple[str, int], int]


def ensure_tags(names: Iterable[str]) -> tuple[list[Tag], int]:
    """The tags with these names (case-insensitively), creating missing ones as written the first
    time; also returns how many were created."""
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(name.lower(), name)
    if not wanted:
        return [], 0
    written = sorted(wanted.values())  # one insert order, so concurrent posts don't deadlock
    table = Tag._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (name, created) SELECT name, %s FROM unnest(%s::text[]) AS name "
            "ON CONFLICT DO NOTHING RETURNING id",
            [timezone.now(), written],
        )
        created = len(cursor.fetchall())
    # lower() in PostgreSQL, as the unique index has it, not Python's str.lower()
    lowered = RawSQL("SELECT lower(name) FROM unnest(%s::text[]) AS name", (written,))
    tags: list[Tag] = list(Tag.objects.alias(lower_name=Lower("name")).filter(lower_name__in=lowered))
    return tags, created


def _notify(*, originator: User, kinds: dict[int, str], log: Log | None, comment: Comment | None = None) -> Changes:
    """One Activity per recipient (never the originator); returns the counter changes."""
    kinds.pop(originator.pk, None)
    Activity.objects.bulk_create(
        [
            Activity(recipient_id=recipient, type=kind, originator=originator, log=log, comment=comment)
            for recipient, kind in kinds.items()
        ]
    )
    return {(Kind.ACTIVITY, recipient): 1 for recipient in kinds}


def _activity_removed(activity: Iterable[tuple[int, int]]) -> Changes:
    return {(Kind.ACTIVITY, recipient): -count for recipient, count in activity}


@transaction.atomic
def create_log(*, user: User, markdown: str, source: str = "", rendered: Rendered | None = None) -> Log:
    """rendered: render(markdown), when the caller has it already (ContentSerializer renders to validate)."""
    rendered = rendered or render(markdown)
    log = Log.objects.create(user=user, markdown=markdown, content=rendered.html, source=source)
    tags, new_tags = ensure_tags(rendered.tags)
    LogTag.objects.bulk_create([LogTag(log=log, tag=tag, user=user, created=log.created) for tag in tags])
    mentioned = list(User.objects.filter(username__in=rendered.mentions))
    log.mentions.set(mentioned)
    changes: Changes = {(Kind.LOGS, 0): 1, (Kind.USER_LOGS, user.pk): 1, (Kind.TAGS, 0): new_tags}
    changes.update({(Kind.TAG_LOGS, tag.pk): 1 for tag in tags})
    changes.update(_notify(originator=user, kinds={m.pk: Activity.Type.MENTION for m in mentioned}, log=log))
    Counter.objects.add(changes)
    return log


@transaction.atomic
def delete_log(*, log: Log) -> None:
    # The row lock makes a second, concurrent delete of the same log a no-op instead of a double count.
    if not Log.objects.select_for_update().filter(pk=log.pk).exists():
        return
    changes: Changes = {(Kind.LOGS, 0): -1, (Kind.USER_LOGS, log.user_id): -1}
    changes.update(
        {(Kind.TAG_LOGS, tag): -1 for tag in LogTag.objects.filter(log=log).values_list("tag_id", flat=True)}
    )
    # Its activity (mentions, comments, likes) goes with it, by cascade.
    activity = Activity.objects.filter(log=log).values_list("recipient_id").annotate(n=Count("id")).order_by()
    changes.update(_activity_removed(activity))
    log.delete()
    Counter.objects.add(changes)


@transaction.atomic
def add_comment(*, log: Log, user: User, markdown: str, source: str = "", rendered: Rendered | None = None) -> Comment:
    """Notifies the log's author (comment), whoever it mentions (mention) and earlier commenters
    (comment_after): one notification per person, in that order of precedence."""
    rendered = rendered or render(markdown)
    comment = Comment.objects.create(log=log, user=user, markdown=markdown, content=rendered.html, source=source)
    tags, new_tags = ensure_tags(rendered.tags)
    comment.tags.set(tags)
    mentioned = list(User.objects.filter(username__in=rendered.mentions))
    comment.mentions.set(mentioned)
    kinds: dict[int, str] = {log.user_id: Activity.Type.COMMENT}
    for person in mentioned:
        kinds.setdefault(person.pk, Activity.Type.MENTION)
    earlier = Comment.objects.filter(log=log).exclude(pk=comment.pk).values_list("user_id", flat=True).distinct()
    for commenter in earlier:
        kinds.setdefault(commenter, Activity.Type.COMMENT_AFTER)
    changes = _notify(originator=user, kinds=kinds, log=log, comment=comment)
    Counter.objects.add({**changes, (Kind.TAGS, 0): new_tags})
    return comment


@transaction.atomic
def delete_comment(*, comment: Comment) -> None:
    if not Comment.objects.select_for_update().filter(pk=comment.pk).exists():
        return
    activity = Activity.objects.filter(comment=comment).values_list("recipient_id").annotate(n=Count("id")).order_by()
    changes = _activity_removed(activity)
    comment.delete()
    Counter.objects.add(changes)


@transaction.atomic
def like_log(*, log: Log, user: User) -> Like:
    """Liking twice is harmless: the first like (and its one notification) stands."""
    like, created = Like.objects.get_or_create(log=log, user=user)
    if created:
        Counter.objects.add(_notify(originator=user, kinds={log.user_id: Activity.Type.LIKE}, log=log))
    return like


@transaction.atomic
def unlike_log(*, log: Log, user: User) -> None:
    Like.objects.filter(log=log, user=user).delete()


@transaction.atomic
def follow(*, follower: User, followee: User) -> Follow:
    """Following twice is harmless; following yourself is a ValidationError."""
    if follower.pk == followee.pk:
        raise ValidationError("You can't follow yourself.")
    relation, created = Follow.objects.get_or_create(follower=follower, followee=followee)
    if created:
        Counter.objects.add(_notify(originator=follower, kinds={followee.pk: Activity.Type.FOLLOW}, log=None))
    return relation


@transaction.atomic
def unfollow(*, follower: User, followee: User) -> None:
    Follow.objects.filter(follower=follower, followee=followee).delete()


def recount() -> None:
    """Rebuilds every counter from the rows (after deletes that bypassed these services, e.g. a user
    deleted in the admin). Takes a full scan of each table: for maintenance windows, not requests."""
    changes: Tally[tuple[str, int]] = Tally()
    changes[(Kind.LOGS, 0)] = Log.objects.count()
    changes[(Kind.TAGS, 0)] = Tag.objects.count()
    for user_id, n in Log.objects.values_list("user_id").annotate(n=Count("id")).order_by():
        changes[(Kind.USER_LOGS, user_id)] = n
    for tag_id, n in LogTag.objects.values_list("tag_id").annotate(n=Count("id")).order_by():
        changes[(Kind.TAG_LOGS, tag_id)] = n
    for recipient_id, n in Activity.objects.values_list("recipient_id").annotate(n=Count("id")).order_by():
        changes[(Kind.ACTIVITY, recipient_id)] = n
    with transaction.atomic():
        Counter.objects.all().delete()
        Counter.objects.bulk_create([Counter(kind=kind, key=key, value=n) for (kind, key), n in changes.items()])
