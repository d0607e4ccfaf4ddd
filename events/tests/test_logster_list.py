"""GET /api/Log: one's own log messages, newest first, filtered, searched and paged by cursor."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from conftest import client_with_key, count_queries, make_key
from events.models import LogMessage

URL = "/api/Log"
INVALID = "The request is invalid."
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def add(owner, minutes=0, **fields):
    values = {"message": "something happened", "severity": 3, "created": T0 + timedelta(minutes=minutes)}
    return LogMessage.objects.create(owner=owner, **{**values, **fields})


def ids(response):
    assert response.status_code == 200, response.content
    return [int(m["MessageId"]) for m in response.json()["Messages"]]


def test_it_lists_ones_messages_newest_first(api_client, alice, charlie):
    old = add(alice, 0, message="old", exception="E", stack_trace="S", category="c", application="a", user="u")
    new = add(alice, 5, message="new", severity=6)
    add(charlie, 3, message="charlie's")
    r = api_client.get(URL)
    assert r.status_code == 200
    assert r.json() == {
        "Messages": [
            {
                "MessageId": str(new.pk),
                "Message": "new",
                "Exception": "",
                "StackTrace": "",
                "Severity": 6,
                "Category": "",
                "Application": "",
                "User": "",
                "Created": "2026-01-10T12:05:00.000Z",
            },
            {
                "MessageId": str(old.pk),
                "Message": "old",
                "Exception": "E",
                "StackTrace": "S",
                "Severity": 3,
                "Category": "c",
                "Application": "a",
                "User": "u",
                "Created": "2026-01-10T12:00:00.000Z",
            },
        ],
        "Next": None,
    }
    assert LogMessage.objects.count() == 3


def test_it_shows_an_outsider_none_of_alices_messages(charlie_client, alice, charlie):
    add(alice, 0)
    add(alice, 1)
    r = charlie_client.get(URL)
    assert r.status_code == 200
    assert r.json() == {"Messages": [], "Next": None}
    assert LogMessage.objects.owned_by(alice).count() == 2


def test_it_rejects_a_missing_key(anon_client, alice):
    add(alice)
    r = anon_client.get(URL)
    assert r.status_code == 401
    assert r.json() == {"Message": "Authorization has been denied for this request."}
    assert LogMessage.objects.count() == 1


def test_it_rejects_a_key_without_the_logs_read_scope(alice):
    add(alice)
    r = client_with_key(make_key(alice, "logs:write")).get(URL)
    assert r.status_code == 403
    assert "logs:read" in r.json()["Message"]
    assert "Messages" not in r.json()
    assert LogMessage.objects.count() == 1


def test_it_accepts_the_apikey_header(alice, alice_key):
    message = add(alice)
    client = APIClient()
    client.credentials(HTTP_APIKEY=alice_key)
    assert ids(client.get(URL)) == [message.pk]
    assert LogMessage.objects.count() == 1


# --- filters -------------------------------------------------------------------------------------


def test_it_filters_by_minimum_severity(api_client, alice):
    by_severity = {s: add(alice, s, severity=s).pk for s in range(7)}
    assert ids(api_client.get(URL, {"severity": 4})) == [by_severity[6], by_severity[5], by_severity[4]]
    assert ids(api_client.get(URL, {"severity": 0})) == [by_severity[s] for s in range(6, -1, -1)]


@pytest.mark.parametrize("severity", ["7", "-1", "abc", "4.5"])
def test_it_rejects_a_bad_severity(api_client, alice, severity):
    add(alice)
    r = api_client.get(URL, {"severity": severity})
    assert r.status_code == 400
    assert r.json()["Message"] == INVALID
    assert list(r.json()["ModelState"]) == ["severity"]
    assert LogMessage.objects.count() == 1


@pytest.mark.parametrize("field", ["application", "category", "user"])
def test_it_filters_by_an_exact_field(api_client, alice, charlie, field):
    wanted = add(alice, 1, **{field: "Widget Designer"})
    add(alice, 2, **{field: "Widget"})
    add(alice, 3)
    add(charlie, 4, **{field: "Widget Designer"})
    assert ids(api_client.get(URL, {field: "Widget Designer"})) == [wanted.pk]


def test_it_filters_by_time_since_inclusive_until_exclusive(api_client, alice):
    messages = [add(alice, minutes) for minutes in range(0, 50, 10)]  # 12:00 .. 12:40
    r = api_client.get(URL, {"since": "2026-01-10T12:10:00Z", "until": "2026-01-10T12:30:00Z"})
    assert ids(r) == [messages[2].pk, messages[1].pk]
    # a naive time is UTC; an offset is honoured
    r = api_client.get(URL, {"since": "2026-01-10 12:30:00"})
    assert ids(r) == [messages[4].pk, messages[3].pk]
    r = api_client.get(URL, {"until": "2026-01-10T13:10:00+01:00"})
    assert ids(r) == [messages[0].pk]


@pytest.mark.parametrize("param", ["since", "until"])
def test_it_rejects_a_bad_time(api_client, alice, param):
    add(alice)
    r = api_client.get(URL, {param: "yesterday"})
    assert r.status_code == 400
    assert r.json()["Message"] == INVALID
    assert list(r.json()["ModelState"]) == [param]
    assert LogMessage.objects.count() == 1


def test_it_searches_message_exception_and_stack_trace(api_client, alice, charlie):
    in_message = add(alice, 1, message="The flux capacitor overheated")
    in_exception = add(alice, 2, exception="System.IO.IOException: capacitor unplugged")
    in_trace = add(alice, 3, stack_trace="frobnicator stalled\r\n   at Garage.Spin() in Garage.cs:line 7\r\n")
    add(alice, 4, category="capacitor frobnicator")  # Category isn't searched
    add(charlie, 5, message="charlie's capacitor frobnicator")
    assert ids(api_client.get(URL, {"q": "capacitor"})) == [in_exception.pk, in_message.pk]
    assert ids(api_client.get(URL, {"q": "frobnicator"})) == [in_trace.pk]
    assert ids(api_client.get(URL, {"q": "capacitors"})) == [in_exception.pk, in_message.pk]  # stemmed
    assert ids(api_client.get(URL, {"q": "flux capacitor"})) == [in_message.pk]  # every word
    assert ids(api_client.get(URL, {"q": '"capacitor overheated"'})) == [in_message.pk]  # a phrase
    assert ids(api_client.get(URL, {"q": "capacitor -flux"})) == [in_exception.pk]
    assert ids(api_client.get(URL, {"q": "nowhere"})) == []


def test_it_finds_a_part_of_a_dotted_name_in_a_stack_trace(api_client, alice):
    in_trace = add(alice, stack_trace="   at Garage.Frobnicator.Spin() in C:\\src\\Garage.cs:line 7\r\n")
    door = add(alice, stack_trace="   at Garage.Door.Open() in C:\\src\\Door.cs:line 9\r\n")
    assert ids(api_client.get(URL, {"q": "Frobnicator"})) == [in_trace.pk]
    assert ids(api_client.get(URL, {"q": "Garage.Frobnicator"})) == [in_trace.pk]
    assert ids(api_client.get(URL, {"q": "Door.cs"})) == [door.pk]


def test_it_survives_search_syntax_it_cannot_read(api_client, alice):
    add(alice, message="a & b | c")
    r = api_client.get(URL, {"q": "&|!():*'\"<->"})
    assert r.status_code == 200
    assert r.json()["Messages"] == []
    assert LogMessage.objects.count() == 1


def test_it_combines_filters(api_client, alice):
    wanted = add(alice, 1, severity=5, application="shop", message="payment declined")
    add(alice, 2, severity=2, application="shop", message="payment declined")
    add(alice, 3, severity=5, application="blog", message="payment declined")
    add(alice, 4, severity=5, application="shop", message="all good")
    r = api_client.get(URL, {"severity": 4, "application": "shop", "q": "payment"})
    assert ids(r) == [wanted.pk]


# --- cursor paging --------------------------------------------------------------------------------


def walk(client, url, params=None):
    pages = []
    response = client.get(url, params or {})
    while True:
        pages.append(ids(response))
        next_url = response.json()["Next"]
        if next_url is None:
            return pages
        assert next_url.startswith("http://testserver/api/Log?")
        response = client.get(next_url)


def test_it_pages_by_cursor_through_every_message_once(api_client, alice, charlie):
    # 25 messages, some sharing a created time, so the cursor must break ties by id
    messages = [add(alice, minutes // 3) for minutes in range(25)]
    add(charlie, 100)
    pages = walk(api_client, URL, {"limit": 10})
    assert [len(page) for page in pages] == [10, 10, 5]
    walked = [pk for page in pages for pk in page]
    expected = [m.pk for m in sorted(messages, key=lambda m: (m.created, m.pk), reverse=True)]
    assert walked == expected


def test_it_pages_exactly_a_full_last_page(api_client, alice):
    for minutes in range(10):
        add(alice, minutes)
    pages = walk(api_client, URL, {"limit": 5})
    assert [len(page) for page in pages] == [5, 5]


def test_it_keeps_the_filters_in_the_next_link(api_client, alice):
    wanted = [add(alice, minutes, severity=5 if minutes % 2 else 1) for minutes in range(12)]
    pages = walk(api_client, URL, {"limit": 2, "severity": 4})
    walked = [pk for page in pages for pk in page]
    assert walked == [m.pk for m in reversed(wanted) if m.severity == 5]


def test_it_does_not_lose_a_page_to_new_messages(api_client, alice):
    older = [add(alice, minutes) for minutes in range(4)]
    first = api_client.get(URL, {"limit": 2})
    add(alice, 10)  # arrives while the client pages
    second = api_client.get(first.json()["Next"])
    assert ids(second) == [older[1].pk, older[0].pk]


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "!!!",
        base64.urlsafe_b64encode(b"yesterday|5").decode(),
        base64.urlsafe_b64encode(b"2026-01-10T12:00:00+00:00|five").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_it_rejects_a_bad_cursor(api_client, alice, cursor):
    add(alice)
    r = api_client.get(URL, {"cursor": cursor})
    assert r.status_code == 400
    assert r.json()["Message"] == INVALID
    assert list(r.json()["ModelState"]) == ["cursor"]
    assert LogMessage.objects.count() == 1


def test_it_does_not_fail_on_a_forged_cursor_with_a_huge_id(api_client, alice):
    message = add(alice)
    forged = base64.urlsafe_b64encode(f"2030-01-01T00:00:00+00:00|{10**30}".encode()).decode()
    r = api_client.get(URL, {"cursor": forged})
    assert r.status_code in (200, 400)
    if r.status_code == 200:
        assert ids(r) == [message.pk]
    assert LogMessage.objects.count() == 1


@pytest.mark.parametrize("limit", ["abc", "-1", "0", "1001", "2.5"])
def test_it_rejects_a_bad_limit(api_client, alice, limit):
    add(alice)
    r = api_client.get(URL, {"limit": limit})
    assert r.status_code == 400
    assert r.json()["Message"] == INVALID
    assert list(r.json()["ModelState"]) == ["limit"]
    assert LogMessage.objects.count() == 1


def test_it_pages_100_by_default_and_up_to_1000(api_client, alice):
    LogMessage.objects.bulk_create(
        LogMessage(owner=alice, message=f"m{i}", severity=1, created=T0 + timedelta(seconds=i)) for i in range(150)
    )
    r = api_client.get(URL)
    assert len(ids(r)) == 100
    assert r.json()["Next"] is not None
    r = api_client.get(URL, {"limit": 1000})
    assert len(ids(r)) == 150
    assert r.json()["Next"] is None


# --- cost --------------------------------------------------------------------------------------


@time_machine.travel(T0 + timedelta(days=1), tick=False)
def test_it_runs_the_same_queries_for_5_or_200_messages(api_client, alice, django_assert_max_num_queries):
    def bulk(start, n):
        LogMessage.objects.bulk_create(
            LogMessage(owner=alice, message="m", severity=1, created=T0 + timedelta(seconds=s))
            for s in range(start, start + n)
        )

    bulk(0, 5)
    api_client.get(URL)  # the first request of a key also records its use
    small = count_queries(api_client, f"{URL}?limit=1000")
    bulk(5, 195)
    with django_assert_max_num_queries(small):
        r = api_client.get(f"{URL}?limit=1000")
    assert len(ids(r)) == 200
    assert count_queries(api_client, f"{URL}?limit=50&q=m") == count_queries(api_client, f"{URL}?limit=1000&q=m")
