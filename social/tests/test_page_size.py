"""What one response can carry is bounded, whatever is posted: the class of pages that grow without bound.

A log embeds at most COMMENTS_INLINE comments and LIKES_INLINE likes (with comments_count and likes_count;
the rest are paged at /logs/<id>/comments/ and /likes/), every body renders to at most RENDERED_MAX_LENGTH
characters, and a profile's bio holds at most BIO_MAX_LENGTH. Here everyone posts the worst they can
(bodies that render to the most JSON bytes, 150-character names, full bios of 4-byte characters), and the
log detail, the public timeline and the activity timeline stay under the bounds stated in the README.
"""

from __future__ import annotations

import orjson
import pytest

from logsvc.models import User
from social import services
from social.markdown import RENDERED_MAX_LENGTH, RenderedTooLarge, render
from social.serializers import BIO_MAX_LENGTH, COMMENTS_INLINE, CONTENT_MAX_LENGTH, LIKES_INLINE

# One body as JSON: RENDERED_MAX_LENGTH characters, of which the input's (at most CONTENT_MAX_LENGTH) may
# take up to 4 bytes each.
BODY_MAX_BYTES = RENDERED_MAX_LENGTH + 3 * CONTENT_MAX_LENGTH  # 60,000
# A user as JSON: names of 150 and a bio of BIO_MAX_LENGTH 4-byte characters, a 200-character URL, ...
USER_MAX_BYTES = 4 * (150 + 150 + 150 + BIO_MAX_LENGTH + 100) + 200 + 600  # 7,000
# A log: its body and its inline comments (each with a user), its author, its likes (150-char usernames),
# and its tags and mentions (each tag link costs more HTML than its name, so they fit in the body's share).
LOG_MAX_BYTES = (1 + COMMENTS_INLINE) * (BODY_MAX_BYTES + USER_MAX_BYTES) + LIKES_INLINE * 300 + BODY_MAX_BYTES
ACTIVITY_ITEM_MAX_BYTES = LOG_MAX_BYTES + BODY_MAX_BYTES + 2 * USER_MAX_BYTES
PAGE = 20  # the default limit


def worst_bodies() -> list[str]:
    """Markdown of at most CONTENT_MAX_LENGTH characters that renders to the most JSON bytes: escapes that
    grow (`&` → `&amp;`), 4-byte characters, quotes (`\\"` in JSON), controls (U+FFFD), tags."""
    candidates = [
        "&" * ((RENDERED_MAX_LENGTH - 7) // 5),
        "😀" * CONTENT_MAX_LENGTH,
        '"' * CONTENT_MAX_LENGTH,
        "\x01" * CONTENT_MAX_LENGTH,
        "😀&" * ((RENDERED_MAX_LENGTH - 7) // 6),
        "#日本 " * 300 + "😀" * (CONTENT_MAX_LENGTH - 1200),
    ]
    fitting = []
    for text in candidates:
        assert len(text) <= CONTENT_MAX_LENGTH
        try:
            fitting.append((len(orjson.dumps(render(text).html)), text))
        except RenderedTooLarge:
            continue
    return [text for _, text in sorted(fitting, reverse=True)]


@pytest.fixture
def worst(db) -> str:
    [best, *_] = worst_bodies()
    return best


def big_user(name: str) -> User:
    username = (name * 150)[:150]
    return User.objects.create_user(
        username, first_name="😀" * 150, last_name="😀" * 150, bio="😀" * BIO_MAX_LENGTH, location="😀" * 100
    )


def size(client, url: str) -> int:
    r = client.get(url)
    assert r.status_code == 200, r.content[:200]
    return len(r.content)


def size_but_ids(client, url: str) -> int:
    """The body's size with every id as 0: new rows' ids may have more digits (99 -> 100) on a busy database."""

    def zeroed(value):
        if isinstance(value, dict):
            return {key: 0 if key == "id" else zeroed(item) for key, item in value.items()}
        return [zeroed(item) for item in value] if isinstance(value, list) else value

    return len(orjson.dumps(zeroed(client.get(url).json())))


def test_a_worst_body_is_as_large_as_the_bounds_allow(db):
    bodies = worst_bodies()
    assert len(bodies) >= 4
    assert max(len(orjson.dumps(render(text).html)) for text in bodies) <= BODY_MAX_BYTES


def test_the_bio_is_bounded(alice_session):
    r = alice_session.patch("/api/1/users/$self/", {"bio": "x" * (BIO_MAX_LENGTH + 1)}, format="json")
    assert r.status_code == 400 and list(r.json()) == ["bio"]
    assert alice_session.patch("/api/1/users/$self/", {"bio": "x" * BIO_MAX_LENGTH}, format="json").status_code == 200


def test_a_log_stops_growing_with_its_comments_and_likes(anon_client, worst):
    victim, commenter = big_user("v"), big_user("c")
    log = services.create_log(user=victim, markdown=worst)
    url = f"/api/1/logs/{log.pk}/"
    for _ in range(COMMENTS_INLINE):
        services.add_comment(log=log, user=commenter, markdown=worst)
    for number in range(LIKES_INLINE):
        services.like_log(log=log, user=big_user(f"a{number}"))
    full = size(anon_client, url)
    full_but_ids = size_but_ids(anon_client, url)

    for _ in range(7):
        services.add_comment(log=log, user=commenter, markdown=worst)
    for number in range(10):
        services.like_log(log=log, user=big_user(f"b{number}"))

    body = anon_client.get(url).json()
    assert len(body["comments"]) == COMMENTS_INLINE and body["comments_count"] == COMMENTS_INLINE + 7
    assert len(body["likes"]) == LIKES_INLINE and body["likes_count"] == LIKES_INLINE + 10
    assert size_but_ids(anon_client, url) <= full_but_ids + 2  # only the counts' digits
    assert full <= LOG_MAX_BYTES


def test_the_timelines_stay_under_their_bound_with_the_worst_posts(alice, worst):
    """Every log on a page of the public timeline and every item of the victim's activity carries the
    worst: the pages are under PAGE times their item's bound (~14 MB before: 40 comments made 9 MB)."""
    from social.tests.conftest import session_client

    victim, commenter = big_user("v"), big_user("c")
    victim_session = session_client(victim)
    for _ in range(PAGE):
        log = services.create_log(user=victim, markdown=worst)
        for _ in range(COMMENTS_INLINE + 1):
            services.add_comment(log=log, user=commenter, markdown=worst)  # notifies the victim
        for number in range(LIKES_INLINE):
            services.like_log(log=log, user=commenter if number == 0 else alice)

    detail = size(victim_session, f"/api/1/logs/{log.pk}/")
    public = size(victim_session, "/api/1/timelines/public/")
    activity = size(victim_session, "/api/1/timelines/activity/")

    assert detail <= LOG_MAX_BYTES
    assert public <= PAGE * LOG_MAX_BYTES
    assert activity <= PAGE * ACTIVITY_ITEM_MAX_BYTES
    print(f"worst case: log {detail:,} B, public page {public:,} B, activity page {activity:,} B")
