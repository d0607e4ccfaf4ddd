"""GET /api/1/logs/, /timelines/public/, /logs/user/<username>/ and /logs/tag/<tag>/."""

from __future__ import annotations

import pytest

from social import services
from social.models import Counter, Log
from social.tests.conftest import post


def test_it_lists_every_log_newest_first_without_credentials(anon_client, alice, charlie):
    first = post(alice, "first")
    second = post(charlie, "second")
    r = anon_client.get("/api/1/logs/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    assert [log["id"] for log in body["results"]] == [second.pk, first.pk]
    assert body["next"] is None and body["previous"] is None


def test_it_serves_the_public_timeline_as_the_same_list(anon_client, alice):
    log = post(alice)
    r = anon_client.get("/api/1/timelines/public/")
    assert r.status_code == 200
    assert [item["id"] for item in r.json()["results"]] == [log.pk]


def test_it_pages_with_limit_and_offset(anon_client, alice):
    logs = [post(alice, f"log {n}") for n in range(5)]
    r = anon_client.get("/api/1/logs/?limit=2&offset=2")
    body = r.json()
    assert body["count"] == 5
    assert [log["id"] for log in body["results"]] == [logs[2].pk, logs[1].pk]
    assert body["next"] == "http://testserver/api/1/logs/?limit=2&offset=4"
    assert body["previous"] == "http://testserver/api/1/logs/?limit=2"


def test_it_pages_20_by_default_and_at_most_100(anon_client, alice):
    Log.objects.bulk_create([Log(user=alice, markdown="x", content="<p>x</p>") for _ in range(105)])
    services.recount()  # bulk_create bypasses the services that keep the counters
    assert len(anon_client.get("/api/1/logs/").json()["results"]) == 20
    assert len(anon_client.get("/api/1/logs/?limit=500").json()["results"]) == 100
    assert anon_client.get("/api/1/logs/").json()["count"] == 105


def test_it_still_shows_rows_a_stale_counter_misses(anon_client, alice):
    Log.objects.create(user=alice, markdown="x", content="<p>x</p>")
    r = anon_client.get("/api/1/logs/")
    assert r.json()["count"] == 0
    assert len(r.json()["results"]) == 1


def test_it_builds_https_links_behind_a_proxy(anon_client, alice, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    post(alice)
    post(alice)
    r = anon_client.get("/api/1/logs/?limit=1", HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="testserver")
    assert r.json()["next"] == "https://testserver/api/1/logs/?limit=1&offset=1"


def test_it_takes_the_count_from_the_counter_not_count_star(anon_client, alice, django_assert_num_queries):
    post(alice)
    Counter.objects.filter(kind="logs").update(value=1234)  # proves where the number comes from
    assert anon_client.get("/api/1/logs/").json()["count"] == 1234


@pytest.mark.parametrize("count", [2, 30])
def test_it_runs_a_fixed_number_of_queries_per_page(anon_client, alice, charlie, count, django_assert_num_queries):
    for n in range(count):
        log = post(alice, f"#tag{n % 3} with @charlie")
        services.add_comment(log=log, user=charlie, markdown="nice #tag1 @alice")
        services.like_log(log=log, user=charlie)
    # the counter with the page's ids, the logs with their totals, latest comments and likes, the page's tags and
    # users
    with django_assert_num_queries(3):
        r = anon_client.get("/api/1/logs/?limit=100")
    assert len(r.json()["results"]) == count


def test_it_lists_a_users_logs(anon_client, alice, charlie):
    mine = post(alice)
    post(charlie)
    r = anon_client.get("/api/1/logs/user/alice/")
    assert r.status_code == 200
    assert r.json()["count"] == 1
    assert [log["id"] for log in r.json()["results"]] == [mine.pk]


def test_it_404s_for_an_unknown_user(anon_client, db):
    r = anon_client.get("/api/1/logs/user/nobody/")
    assert r.status_code == 404
    assert r.json() == {"detail": "No User matches the given query."} or "detail" in r.json()


def test_it_lists_a_tags_logs_whatever_the_case(anon_client, alice, charlie):
    tagged = post(alice, "Writing the #HelloCode report")
    also = post(charlie, "more #hellocode")
    post(alice, "untagged")
    r = anon_client.get("/api/1/logs/tag/HELLOCODE/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    assert [log["id"] for log in body["results"]] == [also.pk, tagged.pk]
    assert body["results"][1]["tags"] == ["HelloCode"]


def test_it_404s_for_an_unknown_tag(anon_client, db):
    assert anon_client.get("/api/1/logs/tag/nothing/").status_code == 404


@pytest.mark.parametrize("count", [2, 30])
def test_it_runs_a_fixed_number_of_queries_per_tag_page(anon_client, alice, count, django_assert_num_queries):
    for _ in range(count):
        post(alice, "#same")
    # the tag with its counter and the page's ids, the logs with their totals, the page's tags and users
    with django_assert_num_queries(3):
        r = anon_client.get("/api/1/logs/tag/same/?limit=100")
    assert r.json()["count"] == count


def test_it_redirects_a_missing_slash_with_301(anon_client, db):
    r = anon_client.get("/api/1/logs?limit=5")
    assert r.status_code == 301
    assert r["Location"] == "/api/1/logs/?limit=5"
