"""Every parameter of every operation in /api.json, and every path segment, sent the values that used to reach
the database or the date arithmetic unchecked: a NUL, dates at the edges of what Python and PostgreSQL hold,
integers past PostgreSQL's bigint. The answer is never a 500: a NUL is always refused (4xx), a number past
bigint where an integer is declared is refused, and every refusal is in the family's own envelope.

It runs in-process (Django's test client), so it walks the whole document in seconds; test_contract.py
fuzzes the same document against a real gunicorn.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from rest_framework.test import APIClient

from analytics.models import Domain, Site
from conftest import make_key
from social import services as social
from social.tests.conftest import access_token

NUL = "a\x00b"
HUGE = ("1" + "0" * 30, str(2**63), "-1")
DATES = ("9999-12-31", "0001-01-01", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")

# A value that fits each path parameter, for the segments not under test.
GOOD_PATH_VALUES = {
    "username": "alice",
    "tag": "contract",
    "page": "browsers",
    "id": "Firefox",
    "trace_id": "alice-checkout",
}


def family_of(path: str) -> str:
    for prefix, family in (
        ("/api/Log", "logster"),
        ("/api/v1/", "bytelog"),
        ("/api/1/", "littlelogs"),
        ("/api/v0/", "goatcounter"),
    ):
        if path.startswith(prefix):
            return family
    return "loggator"


def in_envelope(family: str, body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if family == "logster":
        return isinstance(body.get("Message"), str)
    if family == "bytelog":
        return isinstance(body.get("error"), str)
    if family == "loggator":
        return isinstance(body.get("message"), str)
    if family == "goatcounter":
        return ("error" in body) != ("errors" in body)
    return bool(body)  # littlelogs: DRF's {"detail": ...} or field lists


@pytest.fixture
def world(db, alice, settings) -> dict[str, str]:
    """alice's credentials for each family, and one of everything of hers for the path parameters."""
    settings.RATE_LIMITS = {scope: "" for scope in settings.RATE_LIMITS}
    site = Site.objects.create(code="alice-blog", owner=alice)
    Domain.objects.create(site=site, domain="testserver")
    key = make_key(alice)
    site.api_keys.add(*alice.api_keys.all())
    social.create_log(user=alice, markdown="Shipped the #contract tests")
    return {"key": key, "sites_key": make_key(alice, "sites"), "token": access_token(alice)}


def headers_for(path: str, world: dict[str, str]) -> dict[str, str]:
    family = family_of(path)
    if family == "logster":
        return {"HTTP_APIKEY": world["key"]}
    if path.startswith("/api/v0/sites"):
        return {"HTTP_AUTHORIZATION": f"Bearer {world['sites_key']}"}
    if family in ("bytelog", "goatcounter"):
        return {"HTTP_AUTHORIZATION": f"Bearer {world['key']}"}
    if family == "littlelogs":
        return {"HTTP_AUTHORIZATION": f"Bearer {world['token']}"}
    return {}


def fill(template: str, params: dict[str, Any], target: str | None = None, value: str = "") -> str:
    def segment(match: re.Match[str]) -> str:
        name = match[1]
        if name == target:
            return quote(value, safe="")
        schema: dict[str, Any] = next((p.get("schema", {}) for p in params.get(name, [])), {})
        return GOOD_PATH_VALUES.get(name, "1" if schema.get("type") == "integer" else "a" * 16)

    return re.sub(r"\{([^}]+)\}", segment, template)


def out_of_bounds(schema: dict[str, Any], value: str) -> bool:
    """Whether value is a whole number outside the bounds the document declares for an integer parameter."""
    if schema.get("type") != "integer" or not value.lstrip("-").isdigit():
        return False
    number = int(value)
    return number < schema.get("minimum", number) or number > schema.get("maximum", number)


def cases(schema: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any], str]]:
    """(method, url, family, parameter, kind, value) for every parameter of every operation and every value."""
    found = []
    for template, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params: dict[str, list[dict[str, Any]]] = {}
            for parameter in operation.get("parameters", []):
                params.setdefault(parameter["name"], []).append(parameter)
            declared = [p for p in operation.get("parameters", []) if p["in"] in ("query", "path")]
            for parameter in declared:
                name, where = parameter["name"], parameter["in"]
                kind = {name: parameter.get("schema", {})}
                for value in (NUL, *HUGE, *DATES):
                    if where == "path":
                        url = fill(template, params, name, value)
                    else:
                        url = f"{fill(template, params)}?{urlencode({name: value})}"
                    found.append((method.upper(), url, family_of(template), name, kind, value))
            # A NUL in a literal segment of the path, too (the router never sees an operation for it).
            literal = fill(template, params)
            found.append(
                (
                    method.upper(),
                    literal.rstrip("/") + "/%00" + ("/" if literal.endswith("/") else ""),
                    family_of(template),
                    "(path)",
                    {"(path)": {}},
                    NUL,
                )
            )
    return found


def test_no_parameter_of_any_operation_gets_a_500(world):
    client = Client(raise_request_exception=False)
    schema = client.get("/api.json").json()
    failures = []
    for method, url, family, name, schema_of, value in cases(schema):
        response = None
        try:
            with transaction.atomic():  # a request that breaks the transaction must not break the next ones
                response = client.generic(method, url, **headers_for(url, world))
        except DatabaseError:
            pass
        assert response is not None
        status = response.status_code
        body = response.json() if response.get("Content-Type", "").startswith("application/json") else None
        problem = None
        if status >= 500:
            problem = "a server error"
        elif "\x00" in value and not 400 <= status < 500:
            problem = "a NUL was not refused"
        elif out_of_bounds(schema_of[name], value) and not 400 <= status < 500:
            problem = "a number outside the declared bounds was not refused"
        elif status >= 400 and status not in (301, 308) and not in_envelope(family, body):
            problem = "not the family's envelope"
        if problem:
            failures.append(f"{method} {url} ({name}={value!r}): {status} {problem}: {response.content[:200]!r}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


@pytest.mark.parametrize("start", ["9999-12-31", "0001-01-01", "0001-01-01T00:00:00+14:00", "a\x00b"])
def test_the_dashboard_answers_dates_it_cannot_show_with_its_default_range(client, alice, start):
    site = Site.objects.create(code="alice-blog", owner=alice)
    client.force_login(alice)
    client.raise_request_exception = False
    response = client.get(f"/sites/{site.code}/", {"start": start, "end": start})
    # As for any range it can't show (analytics/tests/test_dashboard.py): the default one, and why.
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    assert "showing the last 30 days instead" in response.content.decode()


def test_a_zone_only_python_knows_is_refused_everywhere(settings, alice):
    """Debian's zone files include "localtime", which Python lists and PostgreSQL's own zone data (the embedded
    server's) lacks: the contract fuzzing sent it as stats' tz and got a 500 on the embedded server."""
    settings.ALLOWED_HOSTS = ["*"]
    site = Site.objects.create(code="zones", owner=alice)
    Domain.objects.create(site=site, domain="zones.example")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(alice)}")
    for url in ("/api/v0/stats/total", "/api/v0/stats/hits"):
        r = api.get(url, {"tz": "localtime"}, HTTP_HOST="zones.example")
        assert r.status_code == 400 and list(r.json()["errors"]) == ["tz"]
    r = api.patch(f"/api/v0/sites/{site.pk}", {"settings": {"timezone": "localtime"}}, format="json")
    assert r.status_code == 400
    site.refresh_from_db()
    assert site.timezone == "UTC"
    browser = APIClient()
    browser.force_login(alice)
    r = browser.patch("/api/1/users/$self/", {"timezone": "localtime"}, format="json")
    assert r.status_code == 400 and "timezone" in r.json()
    assert b'"localtime"' not in APIClient().get("/api.json").content  # nor offered in the document's lists
