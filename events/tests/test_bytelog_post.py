"""POST /api/v1/events: register Bytelog events, one or a JSON array (stored by COPY)."""

from datetime import UTC, datetime

import pytest
import time_machine

from conftest import client_with_key, make_key
from events.models import Event

URL = "/api/v1/events"
NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def event(**fields):
    return {"id": 1, "name": "click", "trace_id": "03775690", "data": {"clicked_on": "sign up button"}, **fields}


def stored_values():
    return list(Event.objects.order_by("id").values("client_id", "name", "trace_id", "date", "data"))


# --- owner, outsider, no key, scope --------------------------------------------------------------


def test_it_stores_the_seed_example(api_client, alice):
    r = api_client.post(URL, event(date="2021-07-04 13:34:56"), format="json")
    assert r.status_code == 201
    assert r.content == b""
    stored = Event.objects.get()
    assert stored.owner == alice
    assert (stored.client_id, stored.name, stored.trace_id) == (1, "click", "03775690")
    assert stored.data == {"clicked_on": "sign up button"}
    assert stored.date.isoformat() == "2021-07-04T13:34:56+00:00"
    assert len(stored.uid) == 16


def test_it_stores_an_outsiders_event_as_his_own(charlie_client, alice, charlie):
    r = charlie_client.post(URL, event(), format="json")
    assert r.status_code == 201
    assert Event.objects.get().owner == charlie
    assert not Event.objects.owned_by(alice).exists()


def test_it_rejects_a_missing_key(anon_client, db):
    r = anon_client.post(URL, event(), format="json")
    assert r.status_code == 401
    assert set(r.json()) == {"error"}
    assert not Event.objects.exists()


def test_it_rejects_an_unknown_key(db):
    r = client_with_key("lsk_not-a-real-key-at-all-000000").post(URL, event(), format="json")
    assert r.status_code == 401
    assert set(r.json()) == {"error"}
    assert not Event.objects.exists()


def test_it_rejects_a_key_without_the_events_write_scope(alice):
    r = client_with_key(make_key(alice, "events:read", "logs:write")).post(URL, event(), format="json")
    assert r.status_code == 403
    assert "events:write" in r.json()["error"]
    assert not Event.objects.exists()


# --- fields ----------------------------------------------------------------------------------------


def test_it_does_not_need_or_key_on_the_client_id(api_client):
    assert api_client.post(URL, event(id=1), format="json").status_code == 201
    assert api_client.post(URL, event(id=1), format="json").status_code == 201
    assert api_client.post(URL, event(id="abc-7"), format="json").status_code == 201
    without_id = event()
    del without_id["id"]
    assert api_client.post(URL, without_id, format="json").status_code == 201
    assert [v["client_id"] for v in stored_values()] == [1, 1, "abc-7", None]
    assert len(set(Event.objects.values_list("uid", flat=True))) == 4


def test_it_needs_only_a_name(api_client):
    r = api_client.post(URL, {"name": "ping"}, format="json")
    assert r.status_code == 201
    assert stored_values()[0] | {"date": None} == {
        "client_id": None,
        "name": "ping",
        "trace_id": "",
        "date": None,
        "data": {},
    }


@time_machine.travel(NOW, tick=False)
def test_it_dates_an_event_without_a_date_now(api_client):
    r = api_client.post(URL, event(), format="json")
    assert r.status_code == 201
    assert Event.objects.get().date == NOW
    assert api_client.get(URL).json()["events"][0]["date"] == "2026-03-04T05:06:07.890Z"


@time_machine.travel(NOW, tick=False)
def test_it_dates_an_event_with_a_null_date_now(api_client):
    assert api_client.post(URL, event(date=None), format="json").status_code == 201
    assert Event.objects.get().date == NOW


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2021-07-04 13:34:56", datetime(2021, 7, 4, 13, 34, 56, tzinfo=UTC)),
        ("2021-07-04T13:34:56Z", datetime(2021, 7, 4, 13, 34, 56, tzinfo=UTC)),
        ("2021-07-04T13:34:56.507Z", datetime(2021, 7, 4, 13, 34, 56, 507000, tzinfo=UTC)),
        ("2021-07-04T15:34:56+02:00", datetime(2021, 7, 4, 13, 34, 56, tzinfo=UTC)),
        ("2021-07-04T08:04:56.250-05:30", datetime(2021, 7, 4, 13, 34, 56, 250000, tzinfo=UTC)),
        ("2021-07-04", datetime(2021, 7, 4, tzinfo=UTC)),
    ],
)
def test_it_reads_iso_8601_and_the_seeds_form(api_client, sent, stored):
    r = api_client.post(URL, event(date=sent), format="json")
    assert r.status_code == 201
    assert Event.objects.get().date == stored


@pytest.mark.parametrize(
    "date",
    [
        "yesterday",
        "2021-13-01 00:00:00",
        "2021-02-30",
        "",
        1625405696,
        ["2021-07-04"],
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    ],
)
def test_it_rejects_a_bad_date(api_client, date):
    r = api_client.post(URL, event(date=date), format="json")
    assert r.status_code == 400
    assert r.json()["error"] == "validation error"
    assert list(r.json()["details"]) == ["date"]
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"clicked_on": "sign up button"},
        {"nested": {"list": [1, 2.5, True, None, {"deep": ["x"]}]}, "emoji": "😀", "quote": "\"'\\"},
        [1, "two", {"three": 3}],
        "just text",
        42,
        3.25,
        True,
        None,
        {},
        [],
    ],
)
def test_it_stores_any_json_as_data(api_client, data):
    r = api_client.post(URL, event(data=data), format="json")
    assert r.status_code == 201
    assert Event.objects.get().data == data
    assert api_client.get(URL).json()["events"][0]["data"] == data


def test_it_stores_json_null_data_not_sql_null(api_client):
    assert api_client.post(URL, event(data=None), format="json").status_code == 201
    assert Event.objects.filter(data__isnull=True).count() == 0  # SQL NULL would break the NOT NULL column
    assert Event.objects.get().data is None


def test_it_reads_a_numeric_trace_id_as_text(api_client):
    assert api_client.post(URL, event(trace_id=3775690), format="json").status_code == 201
    assert Event.objects.get().trace_id == "3775690"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"trace_id": ["t"]}, "trace_id"),
        ({"trace_id": "t" * 65}, "trace_id"),
        ({"trace_id": "a\x00b"}, "trace_id"),
        ({"id": True}, "id"),
        ({"id": 1.5}, "id"),
        ({"id": {"a": 1}}, "id"),
        ({"id": "i" * 65}, "id"),
        ({"id": "a\x00b"}, "id"),
        ({"data": {"k": "a\x00b"}}, "data"),
        ({"data": {"k\x00": 1}}, "data"),
        ({"data": "x" * 262_144}, "data"),
    ],
)
def test_it_rejects_a_bad_field(api_client, fields, field):
    r = api_client.post(URL, event(**fields), format="json")
    assert r.status_code == 400
    assert r.json()["error"] == "validation error"
    assert list(r.json()["details"]) == [field]
    assert not Event.objects.exists()


def test_it_rejects_a_missing_name(api_client):
    r = api_client.post(URL, {"id": 1, "trace_id": "t"}, format="json")
    assert r.status_code == 400
    assert r.json() == {"error": "validation error", "details": {"name": ["This field is required."]}}
    assert not Event.objects.exists()


def test_it_accepts_a_backslash_u0000_that_is_text(api_client):
    data = {"path": "C:\\u0000dir"}  # a backslash, then "u0000": not a NUL
    assert api_client.post(URL, event(data=data), format="json").status_code == 201
    assert Event.objects.get().data == data


def test_it_accepts_data_at_the_size_limit(api_client):
    data = "x" * (262_144 - 2)  # 262,144 bytes once quoted
    assert api_client.post(URL, event(data=data), format="json").status_code == 201
    assert Event.objects.get().data == data


@pytest.mark.parametrize("body", [b'{"name": "click",', b'"click"', b"[1, 2]", b"null"])
def test_it_rejects_a_body_that_is_not_events(api_client, body):
    r = api_client.post(URL, body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["error"] == "validation error"
    assert r.json()["details"]
    assert not Event.objects.exists()


def test_it_rejects_an_unsupported_content_type(api_client):
    r = api_client.post(URL, "<event><name>click</name></event>", content_type="application/xml")
    assert r.status_code == 415
    assert set(r.json()) == {"error"}
    assert not Event.objects.exists()


def test_it_stores_a_retry_with_the_same_idempotency_key_once(api_client):
    first = api_client.post(URL, [event(), event()], format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    second = api_client.post(URL, [event(), event()], format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == second.status_code == 201
    assert second.content == b""
    assert Event.objects.count() == 2


# --- batches (COPY) --------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_it_stores_a_batch_with_every_field_intact(api_client, alice):
    items = [
        {"id": 1, "name": "click", "trace_id": "t1", "date": "2021-07-04 13:34:56", "data": {"a": 1}},
        {"id": "str-id", "name": "view", "trace_id": "t1", "date": "2021-07-04T15:34:56.5+02:00", "data": None},
        {"name": "nested", "data": {"n": {"l": [1, {"x": None}], "t": "tab\there\nnewline \\N back\\slash"}}},
        {"id": 1, "name": "ünïcødé 😀", "trace_id": 42, "data": ["list", 2, 3.5, False]},
        {"id": 99, "name": "text", "trace_id": "tab\tin trace", "data": "just a string"},
        {"name": "number", "data": 0},
    ]
    r = api_client.post(URL, items, format="json")
    assert r.status_code == 201
    assert r.content == b""
    assert stored_values() == [
        {
            "client_id": 1,
            "name": "click",
            "trace_id": "t1",
            "date": datetime(2021, 7, 4, 13, 34, 56, tzinfo=UTC),
            "data": {"a": 1},
        },
        {
            "client_id": "str-id",
            "name": "view",
            "trace_id": "t1",
            "date": datetime(2021, 7, 4, 13, 34, 56, 500000, tzinfo=UTC),
            "data": None,
        },
        {
            "client_id": None,
            "name": "nested",
            "trace_id": "",
            "date": NOW,
            "data": {"n": {"l": [1, {"x": None}], "t": "tab\there\nnewline \\N back\\slash"}},
        },
        {"client_id": 1, "name": "ünïcødé 😀", "trace_id": "42", "date": NOW, "data": ["list", 2, 3.5, False]},
        {"client_id": 99, "name": "text", "trace_id": "tab\tin trace", "date": NOW, "data": "just a string"},
        {"client_id": None, "name": "number", "trace_id": "", "date": NOW, "data": 0},
    ]
    events = Event.objects.all()
    assert {e.owner_id for e in events} == {alice.pk}
    assert {e.created for e in events} == {NOW}
    assert len({e.uid for e in events}) == 6
    assert all(len(e.uid) == 16 for e in events)
    assert Event.objects.filter(client_id__isnull=True).count() == 2  # no id is SQL NULL, as one event stores it
    assert Event.objects.filter(data__isnull=True).count() == 0  # data null is JSON null


def test_it_stores_a_batch_of_one(api_client):
    r = api_client.post(URL, [event(data=None)], format="json")
    assert r.status_code == 201
    assert stored_values()[0]["data"] is None


def test_it_stores_a_batch_of_1000(api_client, alice):
    r = api_client.post(URL, [event(id=i, name=f"e{i}") for i in range(1000)], format="json")
    assert r.status_code == 201
    assert Event.objects.owned_by(alice).count() == 1000
    assert sorted(Event.objects.values_list("client_id", flat=True)) == list(range(1000))


def test_it_rejects_a_batch_of_1001(api_client):
    r = api_client.post(URL, [event()] * 1001, format="json")
    assert r.status_code == 400
    assert r.json()["error"] == "validation error"
    assert list(r.json()["details"]) == ["batch"]
    assert not Event.objects.exists()


def test_it_rejects_an_empty_batch(api_client):
    r = api_client.post(URL, [], format="json")
    assert r.status_code == 400
    assert list(r.json()["details"]) == ["batch"]
    assert not Event.objects.exists()


def test_it_stores_nothing_of_a_batch_with_a_bad_item(api_client):
    items = [event(id=i) for i in range(5)]
    items[1] = {"id": 1, "date": "2021-07-04 13:34:56"}
    items[3] = event(date="not a date")
    items[4] = "click"
    r = api_client.post(URL, items, format="json")
    assert r.status_code == 400
    assert r.json() == {
        "error": "validation error",
        "details": {
            "1": {"name": ["This field is required."]},
            "3": {"date": ["Use ISO 8601, such as 2021-07-04T13:34:56Z, or 2021-07-04 13:34:56 (read as UTC)."]},
            "4": {"non_field_errors": ["An event must be a JSON object with at least a name."]},
        },
    }
    assert not Event.objects.exists()
