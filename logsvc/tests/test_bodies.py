"""Request bodies: 413 past the cap (before and after gzip), gzip accepted, 400 / 411 / 415, nothing stored."""

from __future__ import annotations

import gzip
import json
from functools import cache

import pytest

from events.models import Event, LogMessage

LOGSTER = "/api/Log"
BYTELOG = "/api/v1/events"
XML = "<LogMessage><Message>{}</Message><Severity>3</Severity></LogMessage>"


@cache
def gzip_bomb() -> bytes:
    """50 MB of zeros in about 50 kB."""
    return gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)


@pytest.fixture
def small_bodies(settings) -> None:
    settings.BODY_MAX_BYTES = 1000


def message_json(size: int) -> bytes:
    body = json.dumps({"Message": "", "Severity": 3})
    return json.dumps({"Message": "x" * (size - len(body)), "Severity": 3}).encode()


# --- the size cap ---------------------------------------------------------------------------------


def test_it_refuses_a_json_body_over_the_cap_in_logsters_envelope(api_client, small_bodies):
    r = api_client.post(LOGSTER, message_json(1001), content_type="application/json")
    assert r.status_code == 413
    assert r.json() == {
        "Message": "The request body is 1001 bytes; the limit is 1000 bytes. Send fewer items per request."
    }
    assert not LogMessage.objects.exists()


def test_it_accepts_a_body_of_exactly_the_cap(api_client, alice, small_bodies):
    r = api_client.post(LOGSTER, message_json(1000), content_type="application/json")
    assert r.status_code == 200
    assert alice.log_messages.count() == 1


def test_it_refuses_an_xml_body_over_the_cap(api_client, small_bodies):
    body = XML.format("x" * 1000).encode()
    r = api_client.post(LOGSTER, body, content_type="application/xml")
    assert r.status_code == 413
    assert r.json()["Message"].startswith(f"The request body is {len(body)} bytes; the limit is 1000 bytes.")
    assert not LogMessage.objects.exists()


def test_it_accepts_an_xml_body_under_the_cap(api_client, alice, small_bodies):
    r = api_client.post(LOGSTER, XML.format("hello").encode(), content_type="application/xml")
    assert r.status_code == 200
    assert alice.log_messages.get().message == "hello"


def test_it_refuses_a_bytelog_body_over_the_cap_in_its_envelope(api_client, small_bodies):
    body = json.dumps([{"name": "click", "data": {"n": n}} for n in range(100)]).encode()
    r = api_client.post(BYTELOG, body, content_type="application/json")
    assert r.status_code == 413
    assert set(r.json()) == {"error"}
    assert r.json()["error"].startswith(f"The request body is {len(body)} bytes")
    assert not Event.objects.exists()


def test_it_checks_the_cap_before_the_key(client, small_bodies, db):
    r = client.post(LOGSTER, message_json(5000), content_type="application/json")
    assert r.status_code == 413
    assert not LogMessage.objects.exists()


# --- gzip -----------------------------------------------------------------------------------------


def test_it_accepts_a_gzipped_json_body(api_client, alice):
    body = gzip.compress(json.dumps({"Message": "zipped", "Severity": 2}).encode())
    r = api_client.post(LOGSTER, body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 200
    message = alice.log_messages.get()
    assert message.message == "zipped"
    assert r.json() == {"MessageId": str(message.pk)}


def test_it_accepts_a_gzipped_xml_body(api_client, alice):
    body = gzip.compress(XML.format("zipped xml").encode())
    r = api_client.post(LOGSTER, body, content_type="application/xml", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 200
    assert alice.log_messages.get().message == "zipped xml"


def test_it_accepts_a_gzipped_bytelog_batch_larger_than_the_cap_once_inflated(api_client, alice, small_bodies):
    raw = json.dumps([{"name": "click", "trace_id": "t1"} for _ in range(100)]).encode()
    body = gzip.compress(raw)
    assert len(body) < 1000 < len(raw)
    r = api_client.post(BYTELOG, body, content_type="application/json", HTTP_CONTENT_ENCODING="x-gzip")
    assert r.status_code == 201
    assert alice.events.filter(trace_id="t1").count() == 100


def test_it_accepts_content_encoding_identity(api_client, alice):
    r = api_client.post(
        BYTELOG, b'{"name": "plain"}', content_type="application/json", HTTP_CONTENT_ENCODING="identity"
    )
    assert r.status_code == 201
    assert alice.events.get().name == "plain"


def test_it_refuses_a_gzip_bomb(api_client, settings):
    settings.BODY_MAX_DECOMPRESSED_BYTES = 1024 * 1024
    r = api_client.post(LOGSTER, gzip_bomb(), content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 413
    assert r.json() == {"Message": "The body inflates past the limit of 1048576 bytes. Send fewer items per request."}
    assert not LogMessage.objects.exists()


def test_it_refuses_a_gzip_bomb_at_bytelog(api_client, settings):
    settings.BODY_MAX_DECOMPRESSED_BYTES = 1024 * 1024
    r = api_client.post(BYTELOG, gzip_bomb(), content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 413
    assert r.json() == {"error": "The body inflates past the limit of 1048576 bytes. Send fewer items per request."}
    assert not Event.objects.exists()


def test_it_inflates_up_to_exactly_the_limit(api_client, alice, settings):
    raw = json.dumps({"name": "edge", "data": {"pad": "x" * 500}}).encode()
    settings.BODY_MAX_DECOMPRESSED_BYTES = len(raw)
    r = api_client.post(BYTELOG, gzip.compress(raw), content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 201
    settings.BODY_MAX_DECOMPRESSED_BYTES = len(raw) - 1
    r = api_client.post(BYTELOG, gzip.compress(raw), content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 413
    assert alice.events.count() == 1


@pytest.mark.parametrize(
    "body",
    [b'{"Message": "not zipped", "Severity": 1}', gzip.compress(b'{"Message": "cut", "Severity": 1}')[:-12]],
    ids=["not-gzip", "truncated"],
)
def test_it_refuses_invalid_gzip_with_400(api_client, body):
    r = api_client.post(LOGSTER, body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 400
    assert r.json() == {
        "Message": "The request is invalid.",
        "ModelState": {"message": ["The body is not valid gzip, though Content-Encoding says it is."]},
    }
    assert not LogMessage.objects.exists()


def test_it_refuses_invalid_gzip_in_bytelogs_envelope(api_client):
    r = api_client.post(BYTELOG, b"\x1f\x8bnonsense", content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert r.status_code == 400
    assert r.json() == {
        "error": "validation error",
        "details": {"body": ["The body is not valid gzip, though Content-Encoding says it is."]},
    }
    assert not Event.objects.exists()


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br"])
def test_it_refuses_other_encodings_with_415(api_client, encoding):
    r = api_client.post(LOGSTER, b"...", content_type="application/json", HTTP_CONTENT_ENCODING=encoding)
    assert r.status_code == 415
    assert r.json() == {"Message": f"Content-Encoding {encoding!r} is not supported: send the body as is, or gzip it."}
    assert not LogMessage.objects.exists()


# --- length ---------------------------------------------------------------------------------------


def test_it_refuses_a_chunked_body_without_length_with_411(api_client):
    r = api_client.generic(
        "POST",
        BYTELOG,
        b'{"name": "chunked"}',
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert r.status_code == 411
    assert r.json() == {"error": "Send the request with a Content-Length header, not chunked."}
    assert not Event.objects.exists()


def test_it_refuses_a_chunked_logster_body_with_411(api_client):
    r = api_client.generic(
        "POST",
        LOGSTER,
        b'{"Message": "chunked", "Severity": 1}',
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert r.status_code == 411
    assert r.json() == {"Message": "Send the request with a Content-Length header, not chunked."}
    assert not LogMessage.objects.exists()


def test_it_refuses_a_content_length_that_is_not_a_number(api_client):
    r = api_client.generic("POST", BYTELOG, b'{"name": "x"}', content_type="application/json", CONTENT_LENGTH="ten")
    assert r.status_code == 400
    assert r.json() == {
        "error": "validation error",
        "details": {"Content-Length": ["The Content-Length header is not a number."]},
    }
    assert not Event.objects.exists()
