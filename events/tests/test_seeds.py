"""Every example request in the three seeds (shared/seeds/), replayed for the seed's own answer."""

import json
from datetime import UTC, datetime

from rest_framework.test import APIClient

from events.models import Event, LogMessage

# --- logster-api.md --------------------------------------------------------------------------------

LOGSTER_BODY = r"""{
  "Exception": "System.ApplicationException: An unhandled widget exception occurred.",
  "Message": "Uh-oh, something happened.",
  "StackTrace": "   at Logster.Web.Api.Areas.HelpPage.App_Start.HelpPageConfig.Register(HttpConfiguration config) in Program.cs:line 42\r\n",
  "Severity": 4,
  "Category": "Widget Designer",
  "Application": "Your Awesome Application",
  "User": "john-doe"
}"""

LOGSTER_HEADERS = {
    "HTTP_CACHE_CONTROL": "no-cache",
    "HTTP_ORIGIN": "chrome-extension://fhbjgbiflinjbdggehcddcbncdddomop",
    "HTTP_USER_AGENT": "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/47.0.2526.111 Safari/537.36",
    "HTTP_POSTMAN_TOKEN": "<token>",
    "HTTP_ACCEPT": "*/*",
    "HTTP_ACCEPT_ENCODING": "gzip, deflate",
    "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.8",
}


def logster_client(raw_key):
    client = APIClient()
    client.credentials(HTTP_APIKEY=raw_key)
    return client


def test_it_answers_logsters_postman_example_with_a_message_id(alice, alice_key):
    r = logster_client(alice_key).post("/api/Log", LOGSTER_BODY, content_type="application/json", **LOGSTER_HEADERS)
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["MessageId"]
    assert isinstance(body["MessageId"], str) and body["MessageId"].isdigit()
    stored = LogMessage.objects.get(pk=int(body["MessageId"]))
    assert stored.owner == alice
    assert stored.exception == "System.ApplicationException: An unhandled widget exception occurred."
    assert stored.message == "Uh-oh, something happened."
    assert stored.stack_trace == (
        "   at Logster.Web.Api.Areas.HelpPage.App_Start.HelpPageConfig.Register(HttpConfiguration config)"
        " in Program.cs:line 42\r\n"
    )
    assert (stored.severity, stored.category, stored.application, stored.user) == (
        4,
        "Widget Designer",
        "Your Awesome Application",
        "john-doe",
    )


def test_it_answers_logsters_invalid_example_with_the_seeds_body(alice, alice_key):
    body = json.loads(LOGSTER_BODY)
    del body["Message"]
    body["Severity"] = 9
    r = logster_client(alice_key).post("/api/Log", json.dumps(body), content_type="application/json", **LOGSTER_HEADERS)
    assert r.status_code == 400
    assert r["Content-Type"].startswith("application/json")
    assert r.content == (
        b'{"Message":"The request is invalid.","ModelState":{"message.Message":["The Message field is required."],'
        b'"message.Severity":["The field Severity must be between 0 and 6."]}}'
    )
    assert not LogMessage.objects.exists()


# --- bytelog-api.md --------------------------------------------------------------------------------


def bytelog_client(raw_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def test_it_answers_bytelogs_authentication_example(alice, alice_key):
    r = bytelog_client(alice_key).get("/api/v1/events")
    assert r.status_code == 200
    assert r.json() == {"count": 0, "events": []}
    assert not Event.objects.exists()


def test_it_stores_bytelogs_curl_example(alice, alice_key):
    # The seed's curl body lacks its closing brace; this is the object it means.
    body = '{"id": 1,"name": "click","trace_id": "03775690","date": "2021-07-04 13:34:56","data": {"clicked_on": "sign up button"}}'
    r = bytelog_client(alice_key).post("/api/v1/events", body, content_type="application/json")
    assert r.status_code == 201
    assert r.content == b""
    stored = Event.objects.get()
    assert (stored.owner, stored.client_id, stored.name, stored.trace_id) == (alice, 1, "click", "03775690")
    assert stored.date == datetime(2021, 7, 4, 13, 34, 56, tzinfo=UTC)
    assert stored.data == {"clicked_on": "sign up button"}


def test_it_answers_bytelogs_curl_example_as_written_with_the_seeds_400(alice, alice_key):
    truncated = '{"id": 1,"name": "click","trace_id": "03775690","date": "2021-07-04 13:34:56","data": {"clicked_on": "sign up button"}'
    r = bytelog_client(alice_key).post("/api/v1/events", truncated, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["error"] == "validation error"
    assert not Event.objects.exists()


def test_it_stores_bytelogs_javascript_example_without_a_date(alice, alice_key):
    before = datetime.now(UTC)
    r = bytelog_client(alice_key).post(
        "/api/v1/events",
        json.dumps({"id": 1, "name": "click", "trace_id": "03775690", "data": {"clicked_on": "sign up button"}}),
        content_type="application/json",
    )
    assert r.status_code == 201
    assert r.content == b""
    stored = Event.objects.get()
    assert before <= stored.date <= datetime.now(UTC)
    assert stored.data == {"clicked_on": "sign up button"}


def test_it_stores_bytelogs_body_example(alice, alice_key):
    r = bytelog_client(alice_key).post(
        "/api/v1/events",
        {"id": 5, "name": "paypal_payment", "trace_id": "03758690", "data": {"client_id": "17039485"}},
        format="json",
    )
    assert r.status_code == 201
    stored = Event.objects.get()
    assert (stored.client_id, stored.name, stored.data) == (5, "paypal_payment", {"client_id": "17039485"})


def test_it_answers_bytelogs_get_all_events_example(alice, alice_key):
    client = bytelog_client(alice_key)
    seed = [
        {
            "id": 1,
            "name": "click",
            "trace_id": "03775690",
            "date": "2021-08-15T23:41:41.507Z",
            "data": {"clicked_on": "sign up button"},
        },
        {
            "id": 5,
            "name": "paypal_payment",
            "trace_id": "03758690",
            "date": "2021-08-15T23:43:41.507Z",
            "data": {"client_id": "17039485"},
        },
    ]
    for event in seed:
        assert client.post("/api/v1/events", event, format="json").status_code == 201
    r = client.get("/api/v1/events")
    assert r.status_code == 200
    body = r.json()
    urls = [event.pop("url") for event in body["events"]]
    assert body == {"count": 2, "events": seed}
    uids = dict(Event.objects.values_list("client_id", "uid"))
    assert urls == [f"http://testserver/api/events/{uids[1]}.json", f"http://testserver/api/events/{uids[5]}.json"]


def test_it_answers_bytelogs_start_and_end_parameters(alice, alice_key):
    client = bytelog_client(alice_key)
    client.post("/api/v1/events", {"name": "click", "date": "2021-08-15T23:41:41.507Z"}, format="json")
    r = client.get("/api/v1/events", {"start": "2021-08-15", "end": "2021-08-15"})
    assert r.json()["count"] == 1
    assert client.get("/api/v1/events", {"end": "2021-08-14"}).json()["count"] == 0
    assert client.get("/api/v1/events", {"start": "2021-08-16"}).json()["count"] == 0
    assert Event.objects.count() == 1


def test_it_answers_bytelogs_follow_trace_example(alice, alice_key):
    client = bytelog_client(alice_key)
    seed = [
        {
            "id": 1,
            "name": "click",
            "trace_id": "03775690",
            "date": "2021-08-15T23:45:41.507Z",
            "data": {"clicked_on": "sign up button"},
        },
        {
            "id": 1,
            "name": "click",
            "trace_id": "03775690",
            "date": "2021-08-15T23:45:45.507Z",
            "data": {"clicked_on": "cancel sign up"},
        },
    ]
    assert client.post("/api/v1/events", list(reversed(seed)), format="json").status_code == 201
    r = client.get("/api/v1/events/trace/03775690")
    assert r.status_code == 200
    body = r.json()
    for event in body["events"]:
        assert event.pop("url").startswith("http://testserver/api/events/")
    assert body == {"count": 2, "events": seed}
    assert Event.objects.filter(client_id=1).count() == 2


# --- loggator-api.txt ------------------------------------------------------------------------------


def loggator_event(owner):
    return Event.objects.create(owner=owner, uid="atP6hGVyxPIfHrUr", name="click", trace_id="03775690")


def test_it_answers_loggators_cors_example(alice):
    loggator_event(alice)
    r = APIClient().get("/api/events/atP6hGVyxPIfHrUr.json", HTTP_ORIGIN="http://example.com")
    assert r.status_code == 200
    assert r["Access-Control-Allow-Origin"] in ("*", "http://example.com")
    assert r.json()["id"] == "atP6hGVyxPIfHrUr"
    assert r.json()["name"] == "click"


def test_it_answers_loggators_not_found_example(alice):
    loggator_event(alice)
    r = APIClient().get("/api/events/btP6hGVyxPIfHrUr.json")
    assert r.status_code == 404
    assert r.content == b'{"message":"Not Found"}'
    assert Event.objects.count() == 1


def test_it_answers_loggators_json_p_example(alice):
    loggator_event(alice)
    plain = APIClient().get("/api/events/atP6hGVyxPIfHrUr.json")
    wrapped = APIClient().get("/api/events/atP6hGVyxPIfHrUr.json", {"callback": "foo"})
    assert wrapped.status_code == 200
    assert wrapped.content == b"/**/foo(" + plain.content + b");"  # the same data as the regular API
    assert wrapped["Content-Type"].startswith("application/javascript")


def test_it_answers_loggators_redirect_example(alice):
    loggator_event(alice)
    r = APIClient().get("/api/events/atP6hGVyxPIfHrUr")
    assert r.status_code == 301
    assert r["Location"] == "/api/events/atP6hGVyxPIfHrUr.json"


def test_it_keeps_loggators_promise_of_no_rate_limiting(alice):
    loggator_event(alice)
    client = APIClient()
    responses = [client.get("/api/events/atP6hGVyxPIfHrUr.json") for _ in range(20)]
    assert {r.status_code for r in responses} == {200}
    assert not any("X-Rate-Limit-Limit" in r for r in responses)
