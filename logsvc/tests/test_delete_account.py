"""Deleting an account (logsvc.deletion): the page, DELETE /api/1/users/$self/ and the admin's action start it, the
real db_worker does it, and afterwards no table, file or export holds anything of the account."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult
from oauth2_provider.models import AccessToken, Application
from PIL import Image
from rest_framework.test import APIClient

from analytics.models import BotHit, Export, Hit, PathDay, Site
from analytics.rollups import roll_up
from analytics.services import CleanHit, record_hits
from conftest import client_with_key, make_key
from events.models import Event, LogMessage
from logsvc.deletion import _delete_rate_limits, request_deletion
from logsvc.models import ApiKey, Deletion, IdempotencyRecord, RateLimitCounter, User
from social import services
from social.models import Activity, Comment, Counter, Follow, Like, Log

# An id no sequence of a test database reaches and names found nowhere else, so that a scan of every column of
# every table for them finds only what belongs to the account.
ZELDA_ID = 90_210_417
ZELDA = "zelda-doomed"
ZELDA_EMAIL = "zelda.mail@example.org"
SELF = "/api/1/users/$self/"


@pytest.fixture(autouse=True)
def _worker_in_the_test(monkeypatch, settings, tmp_path):
    # Between tasks the worker drops connections not in autocommit, as a request does: in a test that would end the
    # test's transaction. Everything else of the worker runs as in production.
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.DELETION_BATCH = 3  # many batches from a few rows


def run_worker(django_capture_on_commit_callbacks) -> None:
    # The callbacks run: the avatar's file is deleted once its row's deletion commits.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "#3366cc").save(out, "PNG")
    return out.getvalue()


def hits(n: int, day: datetime, path: str = "/") -> list[CleanHit]:
    return [
        CleanHit(path=path, title="Page", browser="Firefox 133", created_at=day + timedelta(minutes=i))
        for i in range(n)
    ]


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user(username="bob", email="bob@example.com", password="pw-bob")


@pytest.fixture
def zelda(db, bob) -> User:
    """An account with something in every part of the service, tangled with bob's."""
    zelda = User.objects.create_user(id=ZELDA_ID, username=ZELDA, email=ZELDA_EMAIL, password="pw-zelda")
    zelda.avatar.save("me.png", ContentFile(png()))
    make_key(zelda, "logs:write", "count")
    # littlelogs: her logs (bob comments on and likes one), her comments and like on bob's, follows both ways
    bobs = services.create_log(user=bob, markdown="bob's day #shared")
    for i in range(5):
        log = services.create_log(user=zelda, markdown=f"zelda's log {i} #shared #zelda-only mentions @bob")
    services.add_comment(log=log, user=bob, markdown="nice")
    services.like_log(log=log, user=bob)
    for i in range(4):
        services.add_comment(log=bobs, user=zelda, markdown=f"comment {i} by zelda")
    services.add_comment(log=bobs, user=bob, markdown="thanks, all")  # zelda is notified (comment_after)
    services.like_log(log=bobs, user=zelda)
    services.follow(follower=zelda, followee=bob)
    services.follow(follower=bob, followee=zelda)
    # Logster and Bytelog
    LogMessage.objects.bulk_create(LogMessage(owner=zelda, message=f"m{i} {ZELDA}", severity=3) for i in range(7))
    Event.objects.bulk_create(Event(owner=zelda, name=f"e{i}", data={"who": ZELDA}) for i in range(7))
    # GoatCounter: a site with hits, bot hits, rollups and an export file
    site = Site.objects.create(code="zelda-site", owner=zelda)
    with transaction.atomic():
        record_hits(site, hits(10, datetime(2026, 1, 5, tzinfo=UTC)) + [CleanHit(path="/", bot=3, user_agent=ZELDA)])
    roll_up()
    name = storages["exports"].save(
        "goatcounter-export-zelda-site-20260105T000000Z-1.csv.gz", ContentFile(gzip.compress(b"2Path\n/\n"))
    )
    Export.objects.create(site=site, file=name, finished_at=datetime.now(UTC))
    # What identifies her elsewhere: an OAuth app and token, a session, sign-in failures, rate-limit windows,
    # idempotency records, the admin's log of an edit
    app = Application.objects.create(
        user=zelda,
        name="zelda's app",
        client_type="confidential",
        authorization_grant_type="authorization-code",
        redirect_uris="https://example.org/cb",
    )
    AccessToken.objects.create(
        user=zelda, application=app, token="t-zelda", expires=datetime.now(UTC) + timedelta(days=1), scope="read write"
    )
    Client().force_login(zelda)
    AccessAttempt.objects.create(username=ZELDA, ip_address="192.0.2.1", user_agent="x", failures_since_start=2)
    RateLimitCounter.objects.create(key=f"littlelogs:user:{ZELDA_ID}", window_start=1, expires=datetime.now(UTC))
    IdempotencyRecord.objects.create(
        owner=zelda, key="k1", path="/api/Log", fingerprint="f", status=200, body=b"{}", content_type="application/json"
    )
    LogEntry.objects.create(
        user=bob,
        content_type=ContentType.objects.get_for_model(User),
        object_id=str(ZELDA_ID),
        object_repr=ZELDA,
        action_flag=CHANGE,
        change_message="[]",
    )
    return zelda


@pytest.fixture
def bobs_things(bob) -> Iterator[dict[str, int]]:
    site = Site.objects.create(code="bob-site", owner=bob)
    with transaction.atomic():
        record_hits(site, hits(6, datetime(2026, 1, 5, tzinfo=UTC)))
    roll_up()
    LogMessage.objects.create(owner=bob, message="bob's message", severity=3)
    yield {"site": site.pk}


def columns() -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' ORDER BY 1, 2"
        )
        return cursor.fetchall()


def what_names(user_id: int, names: list[str]) -> list[str]:
    """Every table.column, in every table of the database (Django's, the apps', the third parties'), holding the id
    in an integer column, or the id or one of the names in a text or JSON column (a rate-limit bucket, a repr)."""
    patterns = [f"%{n}%" for n in [*names, str(user_id)]]
    found = []
    with connection.cursor() as cursor:
        for table, column, kind in columns():
            if kind in ("integer", "bigint", "smallint"):
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}" = %s', [user_id])
            elif kind in ("text", "character varying", "jsonb", "json", "ARRAY", "tsvector"):
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE ANY(%s)', [patterns])
            else:
                continue
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


def sessions_of(user_id: int) -> int:
    return sum(s.get_decoded().get("_auth_user_id") == str(user_id) for s in Session.objects.all())


def stored(storage: str, folder: str = "") -> list[str]:
    """The files in one of the storages (FILE_STORAGE: PostgreSQL in the tests)."""
    try:
        return storages[storage].listdir(folder)[1]
    except FileNotFoundError:
        return []


def counters_as_recounted() -> tuple[dict, dict]:
    """The counters as kept, and as services.recount() rebuilds them from the rows (zeros left out)."""
    kept = {(c.kind, c.key): c.value for c in Counter.objects.all() if c.value}
    services.recount()
    return kept, {(c.kind, c.key): c.value for c in Counter.objects.all() if c.value}


def test_the_fixture_leaves_her_everywhere(zelda):
    # The scan would find her before: so it can tell when she is gone.
    found = what_names(ZELDA_ID, [ZELDA, ZELDA_EMAIL])
    for column in [
        "logsvc_user.id",
        "logsvc_apikey.user_id",
        "social_log.user_id",
        "social_comment.user_id",
        "social_activity.recipient_id",
        "social_counter.key",
        "events_logmessage.owner_id",
        "events_event.data",
        "analytics_site.owner_id",
        "analytics_bothit.user_agent",
        "oauth2_provider_accesstoken.user_id",
        "axes_accessattempt.username",
        "logsvc_ratelimitcounter.key",
        "django_admin_log.object_repr",
        "logsvc_idempotencyrecord.owner_id",
    ]:
        assert column in found
    assert sessions_of(ZELDA_ID) == 1
    assert stored("default", "avatars") and stored("exports")


def test_nothing_of_the_account_is_left(zelda, bobs_things, bob, django_capture_on_commit_callbacks):
    bobs_log = Log.objects.get(user=bob)
    before = {
        "comments": Comment.objects.filter(user=bob).count(),
        "bob hits": Hit.objects.filter(site_id=bobs_things["site"]).count(),
    }
    bob_days = list(PathDay.objects.filter(site_id=bobs_things["site"]).values_list("day", "pageviews"))

    client = Client()
    client.force_login(zelda)
    r = client.post("/accounts/delete/", {"confirm": ZELDA})
    assert r.status_code == 200 and b"being deleted" in r.content
    assert not User.objects.get(pk=ZELDA_ID).is_active  # she can't sign in from now on
    assert client.get("/accounts/delete/").status_code == 302  # signed out
    assert not Client().login(username=ZELDA, password="pw-zelda")
    assert DBTaskResult.objects.count() == 1

    run_worker(django_capture_on_commit_callbacks)

    assert what_names(ZELDA_ID, [ZELDA, ZELDA_EMAIL]) == []
    assert sessions_of(ZELDA_ID) == 0
    assert stored("default", "avatars") == []  # the avatar
    assert stored("exports") == []  # the export
    assert not Deletion.objects.exists()
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
    # bob's things are untouched, and his counts right: one log, his comments, his site's hits and days
    assert list(Log.objects.filter(user=bob)) == [bobs_log]
    assert Comment.objects.filter(user=bob).count() == before["comments"] - 1  # the one on her log went with it
    assert Hit.objects.filter(site_id=bobs_things["site"]).count() == before["bob hits"]
    assert list(PathDay.objects.filter(site_id=bobs_things["site"]).values_list("day", "pageviews")) == bob_days
    assert LogMessage.objects.filter(owner=bob).count() == 1
    assert not Like.objects.exists() and not Follow.objects.exists() and not Activity.objects.exists()
    kept, recounted = counters_as_recounted()
    assert kept == recounted
    assert kept[("logs", 0)] == 1 and kept[("user_logs", bob.pk)] == 1
    assert ("activity", bob.pk) not in kept  # his notifications were all of zelda's doing or on her logs


def test_the_api_deletes_the_signed_in_account_once_confirmed(zelda, django_capture_on_commit_callbacks):
    client = APIClient()
    client.force_login(zelda)
    r = client.delete(SELF, {"confirm": "zelda"}, format="json")
    assert r.status_code == 400 and "username" in r.json()["confirm"][0]
    assert User.objects.get(pk=ZELDA_ID).is_active and not Deletion.objects.exists()
    r = client.delete(SELF, {}, format="json")
    assert r.status_code == 400 and not Deletion.objects.exists()
    r = client.delete(f"{SELF}?confirm=zelda")  # the query's, for a client that sends a DELETE no body
    assert r.status_code == 400 and not Deletion.objects.exists()

    r = client.delete(SELF, {"confirm": ZELDA}, format="json")
    assert r.status_code == 202
    assert r.json() | {"requested_at": None} == {
        "status": "deleting",
        "kind": "account",
        "id": ZELDA_ID,
        "before": None,
        "requested_at": None,
        "started_at": None,
        "deleted_rows": 0,
    }
    assert client.get(SELF).status_code in (401, 403)  # signed out
    # Her key fails at once, before the worker has done anything.
    key = make_key(bob_user := User.objects.create_user("someone-else"), "logs:write")
    assert ApiKey.objects.filter(user_id=ZELDA_ID, revoked=None).count() == 0
    assert client_with_key(key).post("/api/Log", {"Message": "hi", "Severity": 1}, format="json").status_code == 200
    assert bob_user.is_active
    run_worker(django_capture_on_commit_callbacks)
    assert not User.objects.filter(pk=ZELDA_ID).exists()
    assert what_names(ZELDA_ID, [ZELDA, ZELDA_EMAIL]) == []


def test_an_apps_token_may_not_delete_the_account(zelda):
    app = Application.objects.get(user=zelda)
    token = AccessToken.objects.create(
        user=zelda, application=app, token="t-write", expires=datetime.now(UTC) + timedelta(days=1), scope="read write"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.token}")
    r = client.delete(SELF, {"confirm": ZELDA}, format="json")
    assert r.status_code == 403 and "session" in r.json()["detail"]
    assert User.objects.get(pk=ZELDA_ID).is_active and not Deletion.objects.exists()


def test_the_page_wants_the_username(zelda):
    client = Client()
    client.force_login(zelda)
    assert client.get("/accounts/delete/").status_code == 200
    r = client.post("/accounts/delete/", {"confirm": "ZELDA-DOOMED"})
    assert r.status_code == 400 and b"not your username" in r.content
    assert User.objects.get(pk=ZELDA_ID).is_active and not Deletion.objects.exists()
    assert Client().get("/accounts/delete/").status_code == 302  # the sign-in page first


def test_a_second_request_starts_nothing(zelda):
    first, started = request_deletion(kind=Deletion.Kind.ACCOUNT, target=ZELDA_ID)
    again, started_again = request_deletion(kind=Deletion.Kind.ACCOUNT, target=ZELDA_ID, requested_by="admin")
    assert started and not started_again and again.pk == first.pk
    assert DBTaskResult.objects.count() == 1


def test_a_deletion_whose_job_failed_is_queued_again(zelda, django_capture_on_commit_callbacks):
    deletion, _ = request_deletion(kind=Deletion.Kind.ACCOUNT, target=ZELDA_ID)
    DBTaskResult.objects.filter(id=deletion.task_id).update(status="FAILED")  # as a job whose worker gave up
    again, started = request_deletion(kind=Deletion.Kind.ACCOUNT, target=ZELDA_ID)
    assert not started and again.task_id != deletion.task_id
    assert DBTaskResult.objects.filter(status="READY").count() == 1
    run_worker(django_capture_on_commit_callbacks)
    assert not User.objects.filter(pk=ZELDA_ID).exists()


def test_the_admin_deletes_accounts_in_the_background(zelda, bob, django_capture_on_commit_callbacks):
    admin = User.objects.create_superuser("root", "root@example.com", "pw-root")
    client = Client()
    client.force_login(admin)
    data = {"action": "delete_accounts", "_selected_action": [ZELDA_ID, admin.pk]}
    r = client.post("/admin/logsvc/user/", data, follow=True)
    assert r.status_code == 200 and b"Deleting 1 account(s)" in r.content and b"Your own account was left" in r.content
    assert not User.objects.get(pk=ZELDA_ID).is_active and User.objects.get(pk=admin.pk).is_active
    r = client.post("/admin/logsvc/user/", data, follow=True)  # again: under way already
    assert b"Deleting 0 account(s)" in r.content and DBTaskResult.objects.count() == 1
    r = client.get(f"/admin/logsvc/deletion/?q={ZELDA_ID}")
    assert r.status_code == 200 and r.context["cl"].result_count == 1
    # Django's own delete, which would load every row of an account in one transaction, is not offered.
    assert b"delete_selected" not in client.get("/admin/logsvc/user/").content
    assert client.post(f"/admin/logsvc/user/{bob.pk}/delete/", {"post": "yes"}).status_code == 403
    run_worker(django_capture_on_commit_callbacks)
    assert what_names(ZELDA_ID, [ZELDA, ZELDA_EMAIL]) == []
    assert User.objects.filter(pk__in=[admin.pk, bob.pk]).count() == 2
    assert not BotHit.objects.exists()


def test_its_rate_limit_windows_in_redis_go_too(settings, db):
    redis = pytest.importorskip("redis")
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    mine = [f"ratelimit:littlelogs:user:{ZELDA_ID}:1", f"ratelimit:goatcounter:key:{ZELDA_ID + 1}:1"]
    others = [f"ratelimit:littlelogs:user:{ZELDA_ID}0:1", f"ratelimit:littlelogs:user:1{ZELDA_ID}:1"]
    for name in mine + others:
        client.set(name, 1, ex=60)
    try:
        deleted = sum(_delete_rate_limits([f"user:{ZELDA_ID}", f"key:{ZELDA_ID + 1}"]))
        assert deleted == 2
        assert [bool(client.exists(name)) for name in mine + others] == [False, False, True, True]
    finally:
        client.delete(*others)


def test_others_words_that_mention_the_account_keep_their_text_but_lose_the_link(
    zelda, bob, django_capture_on_commit_callbacks
):
    log = services.create_log(user=bob, markdown=f"pairing with @{ZELDA} and @bob today")
    comment = services.add_comment(log=log, user=bob, markdown=f"@{ZELDA} thanks")
    assert f'href="/{ZELDA}"' in log.content and f'href="/{ZELDA}"' in comment.content

    client = Client()
    client.force_login(zelda)
    client.post("/accounts/delete/", {"confirm": ZELDA})
    run_worker(django_capture_on_commit_callbacks)

    log.refresh_from_db()
    comment.refresh_from_db()
    # bob's Markdown is his and stays as he wrote it; the HTML no longer links to a profile that is gone (and
    # whose name a new account could take), while his own mention of himself keeps its link
    assert log.markdown == f"pairing with @{ZELDA} and @bob today"
    assert log.content == f'<p>pairing with @{ZELDA} and <a class="content-user" href="/bob">@bob</a> today</p>'
    assert comment.content == f"<p>@{ZELDA} thanks</p>"
    assert list(log.mentions.values_list("username", flat=True)) == ["bob"]
    assert not comment.mentions.exists()
    # her name is left nowhere but in bob's own words
    assert sorted(what_names(ZELDA_ID, [ZELDA, ZELDA_EMAIL])) == [
        "social_comment.content",
        "social_comment.markdown",
        "social_log.content",
        "social_log.markdown",
    ]
