"""The output functions and the OpenAPI serializers describe the same fields."""

from __future__ import annotations

from social import pages, serializers
from social.models import Activity
from social.tests.conftest import post


def fields(serializer: type) -> set[str]:
    return set(serializer().fields)


def test_the_documented_shapes_match_what_is_sent(rf, alice, charlie):
    from rest_framework.request import Request

    from social import services

    request = Request(rf.get("/"))
    log = post(alice, "#x @charlie")
    services.add_comment(log=log, user=charlie, markdown="@alice")
    [body] = pages.logs_json([log.pk], request)
    assert set(body) == fields(serializers.LogSerializer)
    assert set(body["user"]) == fields(serializers.UserSerializer)
    assert set(body["comments"][0]) == fields(serializers.CommentSerializer)
    [item] = pages.activity_json([Activity.objects.get(recipient=alice, type="comment").pk], request)
    assert set(item) == fields(serializers.ActivitySerializer)
    assert set(item["log"]) == fields(serializers.LogSerializer)
    assert set(item["comment"]) == fields(serializers.CommentSerializer)


def test_times_are_whole_seconds_in_utc(rf, alice):
    from datetime import UTC, datetime, timedelta, timezone

    from rest_framework.request import Request

    assert serializers.iso(datetime(2015, 11, 2, 0, 23, 27, 123456, tzinfo=UTC)) == "2015-11-02T00:23:27Z"
    # pages have PostgreSQL format them: the same text, cut (not rounded) to the second
    log = post(alice, "late")
    melbourne = timezone(timedelta(hours=11))
    type(log).objects.filter(pk=log.pk).update(created=datetime(2015, 11, 2, 11, 23, 27, 999999, tzinfo=melbourne))
    [body] = pages.logs_json([log.pk], Request(rf.get("/")))
    assert body["created"] == "2015-11-02T00:23:27Z"


def test_every_activity_type_has_a_sentence(alice, charlie):
    for kind in Activity.Type:
        assert pages.activity_text(kind, "charlie", on_comment=False).startswith("charlie ")
    assert (
        pages.activity_text(Activity.Type.MENTION, "charlie", on_comment=True) == "charlie mentioned you in a comment"
    )
