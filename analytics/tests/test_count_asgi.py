"""POST /api/v0/count as the ASGI server serves it (analytics.pixel.post_count, logsvc.asgi): valid hits from a
backend are stored with group commit; every other request is Django's, body and all. Each answer and what it
stored are compared with the Django view's.

The hot path writes through a connection of its own, so these tests commit (transaction=True), as production does.
"""

from __future__ import annotations

import orjson
import pytest
from django.utils import timezone

from analytics import pixel as asgi_pixel
from analytics import sites
from analytics.models import Hit, Site, VisitorPath
from conftest import make_key
from events.tests import test_bytelog_asgi as bytelog_tests
from events.tests.test_bytelog_asgi import call, run
from logsvc.asgi import close_lookup_connections
from logsvc.models import RateLimitCounter

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v0/count"
IP = "203.0.113.77"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-count": ""}
    sites.forget_pixel_sites()
    yield
    asgi_pixel.hits_batcher.forget()  # its loop is gone with the test's asyncio.run
    close_lookup_connections()


@pytest.fixture
def site(alice) -> Site:
    return Site.objects.create(code="alice-blog", owner=alice, ignore_ips=["192.0.2.9"])


def hit(path: str = "/", **fields) -> dict:
    return {"path": path, "ip": IP, "user_agent": UA, **fields}


def stored() -> list[tuple]:
    return list(
        Hit.objects.order_by("path__path", "id").values_list(
            "site__code", "path__path", "path__title", "ref", "first_visit", "browser", "system"
        )
    )


def django_answer(body: bytes, headers: dict[str, str]):
    return bytelog_tests.django_answer(body, headers, URL)


def assert_same(asgi: tuple, django) -> None:
    bytelog_tests.assert_same(asgi, django)
    assert asgi[1].get("x-goatcounter-filter") == django.get("X-Goatcounter-Filter")


BATCH = {"hits": [hit("/a", title="A", ref="https://news.example.com/"), hit("/b"), hit("/a")]}


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        (BATCH, {}),  # the hot path
        ({"no_sessions": True, "hits": [hit("/a"), hit("/a", ip="192.0.2.9"), hit("/wp-login.php")]}, {}),  # filtered
        ({"hits": [hit("/a"), {"title": "no path"}]}, {}),  # a hit at fault: Django's 400, the valid one stored
        ({"hits": []}, {}),  # GoatCounter's {"error": "no hits"}
        ({"hits": [hit("/a")] * 501}, {}),  # too many
        ({"hits": [hit()], "sites": 1}, {}),  # an unknown parameter
        (BATCH, {"Authorization": "Bearer lsk_not_a_real_key_at_all"}),  # Django's 401
        (BATCH, {"Idempotency-Key": "k-1"}),  # Django's, which keeps the answer for retries
        (b'{"hits": [', {}),  # not JSON: Django's 400
    ],
    ids=[
        "batch",
        "filtered",
        "bad-hit",
        "no-hits",
        "too-many",
        "unknown-parameter",
        "bad-key",
        "idempotency",
        "broken",
    ],
)
def test_it_answers_and_stores_as_the_django_view_does(alice, site, body, extra):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice, 'count')}", **extra}
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    django = django_answer(raw, headers)
    rows = stored()
    Hit.objects.all().delete()
    VisitorPath.objects.all().delete()  # so first visits are first again
    if "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = "k-2"  # a key of its own: a reuse would be a replay
    assert_same(run(call(raw, headers, URL))[0], django)
    assert stored() == rows


def test_concurrent_batches_go_through_group_commit_and_are_all_stored(alice, site, monkeypatch):
    submitted = []
    real = asgi_pixel.hits_batcher.submit

    async def submit(item):
        submitted.append(len(item.hits))
        return await real(item)

    monkeypatch.setattr(asgi_pixel.hits_batcher, "submit", submit)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice, 'count')}"}
    bodies = [orjson.dumps({"no_sessions": True, "hits": [hit(f"/r{n}/{i}") for i in range(50)]}) for n in range(8)]
    answers = run(*(call(body, headers, URL) for body in bodies))
    assert [status for status, _, _ in answers] == [202] * 8
    assert submitted == [50] * 8  # all through the hot path
    assert Hit.objects.count() == 400
    assert Hit.objects.filter(path__path__startswith="/r7/").count() == 50


def test_a_key_that_may_not_count_or_acts_for_no_site_is_answered_by_django(alice, charlie):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice, 'export')}"}
    raw = orjson.dumps(BATCH)
    assert_same(run(call(raw, headers, URL))[0], django_answer(raw, headers))  # 403: the scope
    headers["Authorization"] = f"Bearer {make_key(charlie, 'count')}"
    answer = run(call(raw, headers, URL))[0]
    assert answer[0] == 400 and b"create one" in answer[2]  # charlie has no site yet
    assert Hit.objects.count() == 0


def test_the_rate_limit_is_shared_with_django_and_answered_as_it_does(settings, alice, site, time_machine):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-count": "2/3600"}
    time_machine.move_to(timezone.now(), tick=False)  # one "try again in N seconds" for both answers
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice, 'count')}"}
    raw = orjson.dumps({"hits": [hit("/limited")]})
    assert django_answer(raw, headers).status_code == 202
    answers = run(*(call(raw, headers, URL) for _ in range(2)))
    assert sorted(status for status, _, _ in answers) == [202, 429]
    [too_many] = [answer for answer in answers if answer[0] == 429]
    assert_same(too_many, django_answer(raw, headers))
    assert Hit.objects.filter(path__path="/limited").count() == 2
    assert RateLimitCounter.objects.filter(key__startswith="goatcounter-count:key:").get().count == 4


def test_a_site_deleted_before_the_commit_is_answered_by_django(alice, site, monkeypatch):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {make_key(alice, 'count')}"}
    raw = orjson.dumps(BATCH)
    real = asgi_pixel._count_batch

    def then_deleted(request, data):
        found = real(request, data)
        Site.objects.filter(pk=site.pk).delete()
        return found

    monkeypatch.setattr(asgi_pixel, "_count_batch", then_deleted)
    status, _, body = run(call(raw, headers, URL))[0]
    assert status == 400 and b"create one" in body  # Django's answer: alice has no site any more
    assert Hit.objects.count() == 0
