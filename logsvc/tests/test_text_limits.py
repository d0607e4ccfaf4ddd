"""Every stored text has a bound, and every field at its bound, next to all the others at theirs, is stored and
read back everywhere it shows: through each ingestion family, in text PostgreSQL can't compress under its index
and tsvector limits (random letters, 2-, 3- and 4-byte characters, floods of distinct short words).

One past a bound is refused in the family's envelope, or cut where the README says the field is cut.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import random
import re
import uuid
from html import unescape
from urllib.parse import quote

import pytest
from django.core.files.storage import storages
from django.test import Client
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import Application

from analytics import hitinfo, sites
from analytics.models import ROLLUP_MODELS, Domain, Export, Hit, RollupFailure, Site, StatDay
from analytics.rollups import roll_up
from analytics.tasks import run_export
from analytics.validation import MAX_SESSION
from conftest import client_with_key, make_key
from events.models import Event, LogMessage
from events.validation import CLIENT_ID_MAX, EVENT_NAME_MAX, LOGSTER_TEXT_FIELDS, TRACE_ID_MAX
from social.models import Comment, Log
from social.oauth import MAX_REDIRECT_URIS
from social.serializers import BIO_MAX_LENGTH, CONTENT_MAX_LENGTH
from social.tests.conftest import session_client

# Characters of each width, none of them Markdown or URL syntax, so what is stored is what was sent.
ALPHABETS = {
    "ascii": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "latin": "".join(map(chr, range(0xC0, 0x250))).replace("\xd7", "").replace("\xf7", ""),
    "cjk": "".join(map(chr, range(0x4E00, 0x9FA0))),
    "astral": "".join(map(chr, range(0x10000, 0x1005D))),
}
SHAPES = [*ALPHABETS, "short-words"]
# A few examples each, the same ones every run (CI stays deterministic); LIMIT_EXAMPLES=200 for a longer hunt.
EXAMPLES = settings(
    max_examples=int(os.environ.get("LIMIT_EXAMPLES", "4")),
    derandomize="LIMIT_EXAMPLES" not in os.environ,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found: shrinking 1 MB bodies takes minutes
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def text(shape: str, limit: int, rng: random.Random, *, in_bytes: bool = False, prefix: str = "") -> str:
    """As much text of this shape as fits in limit characters (or UTF-8 bytes), prefix first."""
    alphabet = ALPHABETS.get(shape, ALPHABETS["ascii"])
    chars = list(prefix)
    size = len(prefix.encode()) if in_bytes else len(prefix)
    while True:
        if shape == "short-words":  # distinct one- and two-letter words: the densest tsvector
            char = " " if chars and chars[-1] != " " and rng.random() < 0.5 else rng.choice(alphabet)
        else:
            char = " " if chars and chars[-1] != " " and rng.random() < 0.1 else rng.choice(alphabet)
        width = len(char.encode()) if in_bytes else 1
        if size + width > limit:
            break
        chars.append(char)
        size += width
    while chars and chars[-1] == " ":  # the families strip trailing spaces of some fields
        chars.pop()
    return "".join(chars)


shapes = st.sampled_from(SHAPES)
# Random ASCII in a user agent soon spells "bot" or "spider": a bot hit, rightly kept apart from the stats.
ua_shapes = st.sampled_from(["latin", "cjk", "astral"])
seeds = st.integers(0, 2**32)


# --- Logster -------------------------------------------------------------------------------------------------------


@pytest.fixture
def logster(alice):
    return client_with_key(make_key(alice, "logs:write", "logs:read"))


@EXAMPLES
@given(shape=st.fixed_dictionaries({field: shapes for field in LOGSTER_TEXT_FIELDS}), seed=seeds)
@example(shape=dict.fromkeys(LOGSTER_TEXT_FIELDS, "cjk"), seed=1)  # overflowed the tsvector: a 500 once
def test_logster_stores_and_finds_a_message_with_every_field_at_its_cap(logster, shape, seed):
    rng = random.Random(seed)
    needle = f"needle{uuid.uuid4().hex}"  # the examples share one database
    body = {
        field: text(shape[field], limit, rng, prefix=f"{needle} " if field == "Message" else "")
        for field, (_, limit) in LOGSTER_TEXT_FIELDS.items()
    }
    r = logster.post("/api/Log", {**body, "Severity": 4}, format="json")
    assert r.status_code == 200, r.content[:500]
    message_id = r.json()["MessageId"]

    read = logster.get(f"/api/Log/{message_id}").json()
    assert {field: read[field] for field in LOGSTER_TEXT_FIELDS} == body
    found = logster.get("/api/Log", {"q": needle}).json()
    assert [str(item["MessageId"]) for item in found["Messages"]] == [message_id]


@pytest.mark.parametrize("field", list(LOGSTER_TEXT_FIELDS))
def test_logster_refuses_a_field_one_past_its_cap(logster, field):
    limit = LOGSTER_TEXT_FIELDS[field][1]
    r = logster.post("/api/Log", {"Message": "m", "Severity": 1, field: "x" * (limit + 1)}, format="json")
    assert r.status_code == 400
    assert r.json()["ModelState"][f"message.{field}"] == [
        f"The field {field} must be a string with a maximum length of {limit}."
    ]
    assert not LogMessage.objects.exists()


# --- Bytelog and Loggator ------------------------------------------------------------------------------------------


@pytest.fixture
def bytelog(alice):
    return client_with_key(make_key(alice, "events:write", "events:read"))


@EXAMPLES
@given(name=shapes, trace=shapes, client_id=shapes, data=shapes, seed=seeds)
def test_bytelog_stores_lists_traces_and_shares_an_event_at_every_cap(bytelog, name, trace, client_id, data, seed):
    Event.objects.all().delete()  # the examples share one database
    rng = random.Random(seed)
    event = {
        "id": text(client_id, CLIENT_ID_MAX, rng),
        "name": text(name, EVENT_NAME_MAX, rng),
        "trace_id": text(trace, TRACE_ID_MAX, rng).replace(" ", "-"),
        "data": {"note": text(data, 200_000, rng, in_bytes=True)},
    }
    r = bytelog.post("/api/v1/events", event, format="json")
    assert r.status_code == 201, r.content[:500]
    stored = Event.objects.get(trace_id=event["trace_id"])
    assert (stored.client_id, stored.name, stored.data) == (event["id"], event["name"], event["data"])

    listed = bytelog.get("/api/v1/events").json()["events"]
    assert [item["name"] for item in listed if item["trace_id"] == event["trace_id"]] == [event["name"]]
    traced = bytelog.get(f"/api/v1/events/trace/{quote(event['trace_id'], safe='')}")
    assert traced.status_code == 200
    assert [item["data"] for item in traced.json()["events"]] == [event["data"]]
    shared = Client().get(f"/api/events/{stored.uid}.json")
    assert (shared.status_code, shared.json()["name"]) == (200, event["name"])


@pytest.mark.parametrize(("field", "value"), [("name", "n" * (EVENT_NAME_MAX + 1)), ("trace_id", "t" * 65)])
def test_bytelog_refuses_a_field_one_past_its_cap(bytelog, field, value):
    r = bytelog.post("/api/v1/events", {"name": "signup", field: value}, format="json")
    assert r.status_code == 400
    assert r.json()["error"] == "validation error"
    assert not Event.objects.exists()


# --- littlelogs ----------------------------------------------------------------------------------------------------


@pytest.fixture
def alice_session(alice):
    return session_client(alice)


@EXAMPLES
@given(content=shapes, comment=shapes, bio=shapes, seed=seeds)
def test_littlelogs_stores_and_shows_a_log_comment_and_profile_at_their_caps(
    alice_session, content, comment, bio, seed
):
    rng = random.Random(seed)
    markdown = text(content, CONTENT_MAX_LENGTH, rng)
    r = alice_session.post("/api/1/logs/create/", {"content": markdown}, format="json")
    assert r.status_code == 201, r.content[:500]
    log = Log.objects.get(pk=r.json()["id"])
    assert log.markdown == markdown

    remark = text(comment, CONTENT_MAX_LENGTH, rng)
    r = alice_session.post(f"/api/1/logs/{log.pk}/comment/", {"content": remark}, format="json")
    assert r.status_code == 201, r.content[:500]
    assert Comment.objects.get(log=log).markdown == remark

    profile = {
        "first_name": text(bio, 150, rng),
        "last_name": text(bio, 150, rng),
        "location": text(bio, 100, rng),
        "bio": text(bio, BIO_MAX_LENGTH, rng),
    }
    r = alice_session.patch("/api/1/users/$self/", profile, format="json")
    assert r.status_code == 200, r.content[:500]
    assert {name: r.json()[name] for name in profile} == profile

    public = alice_session.get("/api/1/timelines/public/").json()["results"]
    assert log.pk in [item["id"] for item in public]
    assert alice_session.get(f"/api/1/logs/{log.pk}/").status_code == 200


@pytest.mark.parametrize(
    ("url", "field", "limit"),
    [
        ("/api/1/logs/create/", "content", CONTENT_MAX_LENGTH),
        ("/api/1/logs/preview/", "content", CONTENT_MAX_LENGTH),
        ("/api/1/users/$self/", "bio", BIO_MAX_LENGTH),
        ("/api/1/users/$self/", "first_name", 150),
        ("/api/1/users/$self/", "location", 100),
    ],
)
def test_littlelogs_refuses_a_field_one_past_its_cap(alice_session, alice, url, field, limit):
    method = alice_session.patch if "users" in url else alice_session.post
    r = method(url, {field: "x" * (limit + 1)}, format="json")
    assert r.status_code == 400
    assert field in r.json()
    alice.refresh_from_db()
    assert getattr(alice, field, "") != "x" * (limit + 1)
    assert not Log.objects.exists()


@pytest.mark.parametrize(
    "uris",
    [" ".join(f"https://app.example/cb{i}" for i in range(MAX_REDIRECT_URIS + 1)), "https://app.example/" + "x" * 2000],
)
def test_an_oauth_app_has_a_bounded_list_of_redirect_uris(alice, uris):
    browser = Client()
    browser.force_login(alice)
    data = {"name": "Logbook", "client_type": "confidential", "authorization_grant_type": "authorization-code"}
    r = browser.post("/oauth/applications/register/", {**data, "redirect_uris": uris, "client_secret": "s" * 40})
    assert r.status_code == 200
    assert f"Enter at most {MAX_REDIRECT_URIS} redirect URIs" in r.content.decode()
    assert not Application.objects.exists()
    r = browser.post(
        "/oauth/applications/register/",
        {**data, "redirect_uris": "https://app.example/cb", "client_secret": "s" * 40},
    )
    assert r.status_code == 302
    assert Application.objects.get().redirect_uris == "https://app.example/cb"


# --- GoatCounter ---------------------------------------------------------------------------------------------------

HOST = "stats.alice.example"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"


@pytest.fixture
def site(alice, settings, tmp_path) -> Site:
    settings.ALLOWED_HOSTS = ["*"]
    settings.EXPORT_DIR = tmp_path
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-pixel": "1000/1", "goatcounter-count": "1000/1"}
    sites.forget_pixel_sites()
    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain=HOST)
    return site


def forget_hits() -> None:
    """The examples share one database: each starts with no hits and empty rollups."""
    Hit.objects.all().delete()
    for model in ROLLUP_MODELS:
        model.objects.all().delete()


def exported(site: Site) -> list[dict[str, str]]:
    export = Export.objects.create(site=site)
    run_export.call(export.pk)
    export.refresh_from_db()
    assert not export.error
    with gzip.open(storages["exports"].open(export.file), "rt", newline="") as file:
        return list(csv.DictReader(io.StringIO(file.read())))


def assert_shown_everywhere(site: Site, alice, path: str, title: str) -> None:
    """Rolled up without a failure, in the export, and on the dashboard."""
    roll_up()
    assert not RollupFailure.objects.exists()
    assert sum(StatDay.objects.filter(site=site, kind="totals").values_list("pageviews", flat=True)) == 1
    [row] = exported(site)
    assert (row["2Path"], row["Title"]) == (path, title)
    browser = Client()
    browser.force_login(alice)
    page = browser.get(f"/sites/{site.code}/", HTTP_HOST="testserver")
    assert page.status_code == 200
    shown = re.findall(r'class="path-name">(.*?)</span>', page.content.decode(), re.DOTALL)
    assert [unescape(name) for name in shown] == [path]


@EXAMPLES
@given(
    shape=st.fixed_dictionaries({**{name: shapes for name in ("path", "title", "ref", "campaign")}, "ua": ua_shapes}),
    seed=seeds,
)
def test_the_count_api_stores_rolls_up_exports_and_shows_a_hit_at_every_cap(site, alice, shape, seed):
    forget_hits()
    rng = random.Random(seed)
    hit = {
        "path": "/" + text(shape["path"], hitinfo.MAX_PATH - 1, rng, in_bytes=True).replace(" ", "-"),
        "title": text(shape["title"], hitinfo.MAX_TITLE, rng, in_bytes=True),
        "ref": text(shape["ref"], hitinfo.MAX_REF, rng, in_bytes=True).replace(" ", "-"),
        "query": "utm_campaign=" + quote(text(shape["campaign"], 600, rng, in_bytes=True)),
        "user_agent": UA + text(shape["ua"], hitinfo.MAX_USER_AGENT - len(UA), rng, in_bytes=True),
        "session": text("ascii", MAX_SESSION, rng),
    }
    r = client_with_key(make_key(alice, "count")).post("/api/v0/count", {"hits": [hit]}, format="json", HTTP_HOST=HOST)
    assert r.status_code == 202, r.content[:500]
    stored = Hit.objects.select_related("path").get()
    assert (stored.path.path, stored.path.title) == (hit["path"], hit["title"])
    assert len(stored.campaign.encode()) <= hitinfo.MAX_CAMPAIGN and len(stored.ref.encode()) <= hitinfo.MAX_REF
    assert_shown_everywhere(site, alice, hit["path"], hit["title"])


@pytest.mark.parametrize(
    ("field", "limit"),
    [("path", hitinfo.MAX_PATH), ("title", hitinfo.MAX_TITLE), ("ref", hitinfo.MAX_REF), ("session", MAX_SESSION)],
)
def test_the_count_api_refuses_a_field_one_past_its_cap(site, alice, field, limit):
    hit = {"path": "/a", "session": "s", field: "/" + "é" * (limit // 2)}  # limit + 1 bytes
    r = client_with_key(make_key(alice, "count")).post("/api/v0/count", {"hits": [hit]}, format="json", HTTP_HOST=HOST)
    assert r.status_code == 400
    assert f"{field}: may be at most {limit} bytes long" in str(r.json()["errors"])
    assert not Hit.objects.exists()


def test_the_pixel_cuts_a_long_campaign_and_referrer_and_the_stats_go_on(site, alice):
    """The finding: 1,900 characters of campaign and of referrer stopped the stats of every site."""
    rng = random.Random(1)
    campaign, ref = text("ascii", 1900, rng).replace(" ", ""), "https://ex.example.com/" + text("ascii", 1900, rng)
    query = f"p=/landing&t=Landing&q={quote('utm_campaign=' + campaign)}&r={quote(ref)}"
    r = Client().get(f"/count?{query}", HTTP_HOST=HOST, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.7")
    assert r.status_code == 200 and "X-Goatcounter" not in r
    stored = Hit.objects.get()
    assert stored.campaign == campaign[: hitinfo.MAX_CAMPAIGN]
    assert stored.ref == ref.removeprefix("https://")
    assert_shown_everywhere(site, alice, "/landing", "Landing")
    assert StatDay.objects.get(site=site, kind="campaigns").name == campaign[: hitinfo.MAX_CAMPAIGN]


@EXAMPLES
@given(shape=shapes, ua_shape=ua_shapes, seed=seeds)
def test_the_pixel_cuts_title_referrer_campaign_and_user_agent_at_their_caps(site, alice, shape, ua_shape, seed):
    forget_hits()
    rng = random.Random(seed)
    long = {name: text(shape, 3000, rng, in_bytes=True) for name in ("t", "r", "c")}
    long["ua"] = text(ua_shape, 3000, rng, in_bytes=True)
    query = f"p=/p{seed}&t={quote(long['t'])}&r={quote(long['r'])}&q={quote('utm_campaign=' + quote(long['c']))}"
    ua = UA + long["ua"]
    r = Client().get(f"/count?{query}", HTTP_HOST=HOST, HTTP_USER_AGENT=ua, REMOTE_ADDR=f"203.0.113.{seed % 250}")
    assert r.status_code == 200, r.headers.get("X-Goatcounter")
    stored = Hit.objects.select_related("path").get()
    assert stored.path.title == hitinfo.clip(long["t"], hitinfo.MAX_TITLE)
    assert len(stored.ref.encode()) <= hitinfo.MAX_REF
    assert stored.campaign == hitinfo.clip(long["c"].strip(), hitinfo.MAX_CAMPAIGN)
    assert len(stored.browser) <= hitinfo.MAX_BROWSER and len(stored.system) <= hitinfo.MAX_SYSTEM
    assert_shown_everywhere(site, alice, f"/p{seed}", stored.path.title)


def test_every_text_column_has_a_bound_at_intake():
    """A new unbounded text column fails here until it gets a documented cap (and a line in the README)."""
    from django.apps import apps
    from django.db import models

    known = {
        # model.field: where its cap is enforced
        "analytics.Path.path": "hitinfo.MAX_PATH (refused)",
        "analytics.Path.title": "hitinfo.MAX_TITLE (API: refused; pixel: cut)",
        "analytics.Hit.ref": "hitinfo.MAX_REF (API: refused; pixel: cut)",
        "analytics.Hit.campaign": "hitinfo.MAX_CAMPAIGN (cut)",
        "analytics.BotHit.path": "hitinfo.MAX_PATH (refused)",
        "analytics.BotHit.user_agent": "hitinfo.MAX_USER_AGENT (API: refused; pixel: cut)",
        "analytics.Export.error": "written by the worker",
        "analytics.RollupFailure.error": "written by the worker",
        "analytics.Import.error": "written by the worker",
        "analytics.Import.errors": "importer.MAX_ERRORS lines of importer.MAX_ERROR_LENGTH bytes",
        "analytics.RefDay.ref": "Hit.ref",
        "analytics.StatDay.name": "Hit fields above",
        "analytics.StatDay.detail": "Hit fields above",
        "events.LogMessage.message": "LOGSTER_TEXT_FIELDS",
        "events.LogMessage.exception": "LOGSTER_TEXT_FIELDS",
        "events.LogMessage.stack_trace": "LOGSTER_TEXT_FIELDS",
        "social.Log.markdown": "CONTENT_MAX_LENGTH",
        "social.Log.content": "rendered from markdown",
        "social.Comment.markdown": "CONTENT_MAX_LENGTH",
        "social.Comment.content": "rendered from markdown",
        "logsvc.User.bio": "BIO_MAX_LENGTH",
        "logsvc.RetentionRun.error": "written by the worker",
        "logsvc.Deletion.error": "written by the worker",
    }
    unbounded = {
        f"{model._meta.label}.{field.name}"
        for model in apps.get_models()
        if model._meta.app_label in ("analytics", "events", "social", "logsvc")
        for field in model._meta.get_fields()
        if isinstance(field, models.TextField) and not isinstance(field, models.GeneratedField)
    }
    assert unbounded - set(known) == set()


# --- Pages: a page stops at PAGE_MAX_BYTES, and paging on reads every item once ----------------------------------


def test_a_logster_page_stops_at_its_byte_budget_and_next_goes_on(settings, logster):
    settings.PAGE_MAX_BYTES = 1_000_000
    big = "e" * 200_000
    for n in range(12):
        assert (
            logster.post("/api/Log", {"Message": f"m{n}", "Severity": 1, "Exception": big}, format="json").status_code
            == 200
        )
    seen, url, pages = [], "/api/Log?limit=1000", 0
    while url:
        r = logster.get(url)
        assert r.status_code == 200 and len(r.content) < 1_300_000
        seen += [item["Message"] for item in r.json()["Messages"]]
        url, pages = r.json()["Next"], pages + 1
    assert seen == [f"m{n}" for n in reversed(range(12))]
    assert pages == 3  # 5 + 5 + 2 messages of 200 kB


def test_a_single_message_bigger_than_the_budget_still_has_its_page(settings, logster):
    settings.PAGE_MAX_BYTES = 1_000
    assert logster.post("/api/Log", {"Message": "x" * 5_000, "Severity": 1}, format="json").status_code == 200
    assert logster.post("/api/Log", {"Message": "y" * 5_000, "Severity": 1}, format="json").status_code == 200
    first = logster.get("/api/Log").json()
    assert [m["Message"][0] for m in first["Messages"]] == ["y"] and first["Next"]
    second = logster.get(first["Next"]).json()
    assert [m["Message"][0] for m in second["Messages"]] == ["x"] and second["Next"] is None


@pytest.mark.parametrize("url", ["/api/v1/events?limit=1000", "/api/v1/events/trace/t1?limit=1000"])
def test_a_bytelog_page_stops_at_its_byte_budget_and_the_offset_goes_on(settings, bytelog, url):
    settings.PAGE_MAX_BYTES = 1_000_000
    events = [{"id": n, "name": "big", "trace_id": "t1", "data": {"blob": "d" * 200_000}} for n in range(12)]
    for half in (events[:6], events[6:]):
        assert bytelog.post("/api/v1/events", half, format="json").status_code == 201
    seen, offset = [], 0
    while True:
        r = bytelog.get(f"{url}&offset={offset}")
        assert r.status_code == 200 and r.json()["count"] == 12 and len(r.content) < 1_300_000
        page = [event["id"] for event in r.json()["events"]]
        if not page:
            break
        seen, offset = seen + page, offset + len(page)
    assert seen == list(range(12))
