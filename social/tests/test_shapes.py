"""The output functions and the OpenAPI serializers describe the same fields."""

from __future__ import annotations

from social import serializers
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
    log = serializers.logs_with_details(type(log).objects.filter(pk=log.pk)).get()
    body = serializers.log_json(log, request)
    assert set(body) == fields(serializers.LogSerializer)
    assert set(body["user"]) == fields(serializers.UserSerializer)
    assert set(body["comments"][0]) == fields(serializers.CommentSerializer)
    item = serializers.activity_with_details(Activity.objects.all()).get(recipient=alice)
    assert set(serializers.activity_json(item, request)) == fields(serializers.ActivitySerializer)


def test_times_are_whole_seconds_in_utc(alice):
    from datetime import UTC, datetime

    assert serializers.iso(datetime(2015, 11, 2, 0, 23, 27, 123456, tzinfo=UTC)) == "2015-11-02T00:23:27Z"


def test_every_activity_type_has_a_sentence(alice, charlie):
    for kind in Activity.Type:
        item = Activity(type=kind, originator=charlie, recipient=alice)
        assert serializers.activity_text(item).startswith("charlie ")
