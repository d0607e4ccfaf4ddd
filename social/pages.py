"""littlelogs pages built from rows: logs, comments and activity items as the seed shows them, in a fixed
handful of queries and with no model instances.

A page of 20 logs nests authors, comments with their authors, tags, mentions and likes. Loading them as
models through prefetches cost ~40 ms of CPU a page, most of it in the ORM. Here a page of logs is two queries
of plain rows: the logs with their totals, their tags' and mentions' ids and their latest comments and likes
(as JSON arrays), then the names they refer to, the page's tags and the page's users, each once. Times come
formatted from PostgreSQL, and the page is assembled as dicts: ~5x less CPU for the same bytes
(social/tests/test_answers.py holds them to it; bench/social.py measures them). Each round trip cost ~0.1 ms of
CPU on either side, so a page makes few: it made five.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import Any

import orjson
from django.core.files.storage import FileSystemStorage
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from django.http import HttpRequest
from django.templatetags.static import static
from rest_framework.request import Request

from logsvc.db import prepared_cursor
from logsvc.models import User
from logsvc.storage import DatabaseStorage
from social.models import Activity, Comment, Like, Log, LogTag, Tag

COMMENTS_INLINE = 3
LIKES_INLINE = 20
DEFAULT_AVATAR = "social/avatar.svg"


def iso_sql(column: str) -> str:
    """2015-11-02T00:23:27Z, as the seed writes times (whole seconds, UTC), formatted by PostgreSQL."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


USERS = User._meta.db_table
AVATARS = User._meta.get_field("avatar").storage
TAGS = Tag._meta.db_table


def _ids(through: type[models.Model], owner: str, target: str, alias: str) -> str:
    """The ids of a row's tags or mentioned users, as an array: an index range, no join. Their names and order
    come from the page's one query for tags and one for users (joining tags here made PostgreSQL scan all tags
    once per log: 1.7 ms of database CPU a page, 0.6 ms without)."""
    return f"ARRAY(SELECT x.{target} FROM {through._meta.db_table} x WHERE x.{owner} = {alias}.id)"


def comment_columns(alias: str) -> str:
    return (
        f"{alias}.id, {alias}.log_id, {iso_sql(f'{alias}.created')}, {alias}.user_id, {alias}.content, "
        f"{alias}.source, {_ids(Comment.tags.through, 'comment_id', 'tag_id', alias)}, "
        f"{_ids(Comment.mentions.through, 'comment_id', 'user_id', alias)}"
    )


def _latest(model: type[Comment | Like], limit: int, row: str) -> str:
    """The log's latest `limit` rows of model (an index range), each as `row` of alias r, oldest first, in a JSON
    array (as text, for orjson; NULL when there are none)."""
    return (
        f"(SELECT json_agg({row} ORDER BY r.created, r.id)::text FROM (SELECT * FROM {model._meta.db_table} "
        f"WHERE log_id = l.id ORDER BY created DESC, id DESC LIMIT {int(limit)}) AS r)"
    )


# A like's user is looked up by its primary key (a join had PostgreSQL hash all users once per log); it is
# there: the like goes with its user, and one statement sees one snapshot.
LIKE_ROW = (
    f"json_build_object('user', (SELECT username FROM {USERS} WHERE id = r.user_id), 'created', {iso_sql('r.created')})"
)
LOGS_SQL = (
    f"SELECT l.id, {iso_sql('l.created')}, l.user_id, l.source, l.content, "
    f"{_ids(LogTag, 'log_id', 'tag_id', 'l')}, {_ids(Log.mentions.through, 'log_id', 'user_id', 'l')}, "
    f"(SELECT count(*) FROM {Comment._meta.db_table} WHERE log_id = l.id), "
    f"(SELECT count(*) FROM {Like._meta.db_table} WHERE log_id = l.id), "
    f"{_latest(Comment, COMMENTS_INLINE, f'json_build_array({comment_columns("r")})')}, "
    f"{_latest(Like, LIKES_INLINE, LIKE_ROW)} "
    f"FROM {Log._meta.db_table} l WHERE l.id = ANY(%s::bigint[])"
)
COMMENTS_SQL = f"SELECT {comment_columns('c')} FROM {Comment._meta.db_table} c WHERE c.id = ANY(%s::bigint[])"
USER_COLUMNS = ("id", "username", "first_name", "last_name", "bio", "url", "location", "avatar", "timezone")
# The page's tags and users in one statement, as JSON arrays: tags in the order a row lists them (case-insensitively,
# as the tag list), users in the order of mentions (by username). lower(name) and username are unique, so each
# row's tags and mentions are in the order of the page's.
NAMES_SQL = (
    f"SELECT (SELECT json_agg(json_build_array(id, name) ORDER BY lower(name)) FROM {TAGS} "
    f"WHERE id = ANY(%s::bigint[]))::text, "
    f"(SELECT json_agg(json_build_array({', '.join(USER_COLUMNS)}) ORDER BY username) FROM {USERS} "
    f"WHERE id = ANY(%s::bigint[]))::text"
)
# (no join for the originator's name: it is among the page's users, and joining made PostgreSQL hash all users)
# with the comment a notification is about, as a JSON array of comment_columns (or NULL)
ACTIVITY_SQL = (
    f"SELECT a.id, {iso_sql('a.created')}, a.type, a.originator_id, a.log_id, a.comment_id, "
    f"(SELECT json_build_array({comment_columns('c')})::text FROM {Comment._meta.db_table} c "
    f"WHERE c.id = a.comment_id) FROM {Activity._meta.db_table} a WHERE a.id = ANY(%s::bigint[])"
)

ACTIVITY_TEXT = {
    Activity.Type.COMMENT: "{} commented on your log",
    Activity.Type.COMMENT_AFTER: "{} commented after you on a log",
    Activity.Type.LIKE: "{} liked your log",
    Activity.Type.FOLLOW: "{} followed you",
    Activity.Type.MENTION: "{} mentioned you in a log",
}


def activity_text(kind: str, originator: str, on_comment: bool) -> str:
    if kind == Activity.Type.MENTION and on_comment:
        return f"{originator} mentioned you in a comment"
    return ACTIVITY_TEXT[Activity.Type(kind)].format(originator)


@functools.lru_cache(maxsize=10_000)
def _stored_avatar_url(name: str) -> str:
    """A stored avatar's URL (under MEDIA_URL): always the same for a name (a page asked for ~25 of them, and
    making each was a sixth of the page's CPU)."""
    return AVATARS.url(name)


@receiver(setting_changed)
def _forget_avatar_urls(**kwargs: Any) -> None:
    _stored_avatar_url.cache_clear()  # tests that change MEDIA_URL


def avatar_urls(request: Request | HttpRequest) -> Callable[[str], str]:
    """name -> the avatar's absolute URL (the seed always gives one: a default picture when the user has none)."""
    default = request.build_absolute_uri(static(DEFAULT_AVATAR))
    # Object storage may sign its URLs for a while: only the local disk's and PostgreSQL's are remembered.
    stored_url = _stored_avatar_url if isinstance(AVATARS, (FileSystemStorage, DatabaseStorage)) else AVATARS.url
    return lambda name: request.build_absolute_uri(stored_url(name)) if name else default


def user_dict(row: Sequence[Any], avatar_url: Callable[[str], str]) -> dict[str, Any]:
    """A profile from its USER_COLUMNS values."""
    pk, username, first_name, last_name, bio, url, location, avatar, tz = row
    return {
        "id": pk,
        "username": username,
        "first_name": first_name,
        "last_name": last_name,
        "bio": bio,
        "url": url,
        "location": location,
        "avatar": avatar_url(avatar),
        "timezone": tz,
    }


BIGINT = range(-(2**63), 2**63)


def _rows(sql: str, *ids: Iterable[int]) -> list[tuple[Any, ...]]:
    """The rows of sql for these ids (one list a parameter); an id no bigint can hold (a log id from a URL) is no
    row, not an error."""
    with prepared_cursor() as cursor:
        cursor.execute(sql, [[pk for pk in each if pk in BIGINT] for each in ids])
        return cursor.fetchall()


class Page:
    """What one response shows, read relation by relation: ask for the logs and comments it needs (fetch_logs,
    fetch_comments), then for the names they refer to (fetch_names: the page's tags and users, once each), then
    build the dicts (log, comment, user)."""

    def __init__(self, request: Request | HttpRequest) -> None:
        self.request = request
        self.logs: dict[int, tuple[Any, ...]] = {}
        self.comments: dict[int, Sequence[Any]] = {}
        self.latest_comments: dict[int, list[Sequence[Any]]] = {}
        self.latest_likes: dict[int, list[dict[str, str]]] = {}
        self.user_ids: set[int] = set()
        self.user_rows: dict[int, Sequence[Any]] = {}  # by username
        self.users: dict[int, dict[str, Any]] = {}  # the profiles shown, made on first use (mentions need names only)
        self.tag_ids: set[int] = set()
        self.tags: dict[int, str] = {}  # by lower(name)
        self.tag_order: dict[int, int] = {}
        self.user_order: dict[int, int] = {}

    # --- reading ---

    def fetch_logs(self, ids: Iterable[int]) -> None:
        """The logs, with their latest comments and likes."""
        wanted = sorted(set(ids) - self.logs.keys())
        if not wanted:
            return
        for row in _rows(LOGS_SQL, wanted):
            self.logs[row[0]] = row
            self.user_ids.add(row[2])
            self.tag_ids.update(row[5])
            self.user_ids.update(row[6])
            if row[9]:
                self.latest_comments[row[0]] = orjson.loads(row[9])
                for comment in self.latest_comments[row[0]]:
                    self.add_comment_refs(comment)
            if row[10]:
                self.latest_likes[row[0]] = orjson.loads(row[10])

    def fetch_comments(self, ids: Iterable[int]) -> None:
        wanted = sorted(set(ids) - self.comments.keys())
        if not wanted:
            return
        for row in _rows(COMMENTS_SQL, wanted):
            self.comments[row[0]] = row
            self.add_comment_refs(row)

    def add_comment_refs(self, row: Sequence[Any]) -> None:
        self.user_ids.add(row[3])
        self.tag_ids.update(row[6])
        self.user_ids.update(row[7])

    def fetch_names(self) -> None:
        """The page's users and tags, once each (after the rows that name them)."""
        if self.tag_ids or self.user_ids:
            [(tags, users)] = _rows(NAMES_SQL, sorted(self.tag_ids), sorted(self.user_ids))
            self.tags = dict(orjson.loads(tags)) if tags else {}
            self.user_rows = {row[0]: row for row in orjson.loads(users)} if users else {}
        self.tag_order = {pk: n for n, pk in enumerate(self.tags)}
        self.user_order = {pk: n for n, pk in enumerate(self.user_rows)}

    @cached_property
    def avatar_url(self) -> Callable[[str], str]:
        return avatar_urls(self.request)

    def user(self, pk: int) -> dict[str, Any] | None:
        """The profile of a user of the page, None for one deleted while the page was read."""
        if pk not in self.users and pk in self.user_rows:
            self.users[pk] = user_dict(self.user_rows[pk], self.avatar_url)
        return self.users.get(pk)

    def tag_names(self, ids: list[int]) -> list[str]:
        if not ids:
            return []
        found = sorted([pk for pk in ids if pk in self.tags], key=self.tag_order.__getitem__)
        return [self.tags[pk] for pk in found]

    def usernames(self, ids: list[int]) -> list[str]:
        if not ids:
            return []
        found = sorted([pk for pk in ids if pk in self.user_rows], key=self.user_order.__getitem__)
        return [self.user_rows[pk][1] for pk in found]

    # --- building (None for a row whose author was deleted while the page was read) ---

    def comment(self, row: Sequence[Any]) -> dict[str, Any] | None:
        pk, _, created, user_id, content, source, tags, mentions = row
        user = self.user(user_id)
        if user is None:
            return None
        return {
            "id": pk,
            "created": created,
            "user": user,
            "content": content,
            "source": source or None,
            "tags": self.tag_names(tags),
            "mentions": self.usernames(mentions),
        }

    def log(self, pk: int) -> dict[str, Any] | None:
        """The seed's log, with its latest COMMENTS_INLINE comments and LIKES_INLINE likes, oldest first, and
        how many there are in all."""
        if pk not in self.logs or (user := self.user(self.logs[pk][2])) is None:
            return None
        _, created, _, source, content, tags, mentions, comments_count, likes_count = self.logs[pk][:9]
        comments = (self.comment(row) for row in self.latest_comments.get(pk, ()))
        return {
            "id": pk,
            "created": created,
            "user": user,
            "source": source or None,
            "content": content,
            "comments": [comment for comment in comments if comment],
            "comments_count": comments_count,
            "tags": self.tag_names(tags),
            "mentions": self.usernames(mentions),
            "likes": self.latest_likes.get(pk, []),
            "likes_count": likes_count,
        }


def logs_json(ids: Sequence[int], request: Request | HttpRequest) -> list[dict[str, Any]]:
    """The logs of these ids that exist, in this order."""
    page = Page(request)
    page.fetch_logs(ids)
    page.fetch_names()
    return [log for log in map(page.log, ids) if log]


def comments_json(ids: Sequence[int], request: Request) -> list[dict[str, Any]]:
    page = Page(request)
    page.fetch_comments(ids)
    page.fetch_names()
    return [comment for pk in ids if pk in page.comments and (comment := page.comment(page.comments[pk]))]


def activity_json(ids: Sequence[int], request: Request) -> list[dict[str, Any]]:
    """Notifications with their originator, whole log and whole comment."""
    page = Page(request)
    rows = _rows(ACTIVITY_SQL, ids)
    page.user_ids.update(row[3] for row in rows)
    page.fetch_logs(row[4] for row in rows if row[4])
    for row in rows:
        if row[6]:
            page.comments[row[5]] = comment = orjson.loads(row[6])
            page.add_comment_refs(comment)
    page.fetch_names()
    found = {row[0]: row for row in rows}
    items = []
    for pk in ids:
        if pk not in found:
            continue
        _, created, kind, originator_id, log_id, comment_id, _ = found[pk]
        originator = page.user(originator_id)
        log = page.log(log_id) if log_id else None
        comment = page.comment(page.comments[comment_id]) if comment_id in page.comments else None
        if not originator or (log_id and not log) or (comment_id and not comment):
            continue  # deleted while the page was read: its notification goes with it
        items.append(
            {
                "id": pk,
                "created": created,
                "type": kind,
                "content": activity_text(kind, originator["username"], comment_id is not None),
                "originator": originator,
                "log": log,
                "comment": comment,
            }
        )
    return items
