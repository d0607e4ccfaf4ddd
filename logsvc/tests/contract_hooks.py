"""schemathesis hooks for test_contract.py, loaded by the `st` process (SCHEMATHESIS_HOOKS): each family's own
credentials, for alice (who every operation runs as) and for charlie (the peer object_level_authorization
replays alice's reads as).

The credentials come as JSON in CONTRACT_CREDENTIALS: {"alice": {"key": ..., "sites_key": ..., "token": ...}, ...}.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import time
from typing import Any

import schemathesis
from schemathesis.auths import AuthProvider
from schemathesis.wfc.escalation import EscalatingAuthProvider


class FamilyCredentials:
    """One user's credentials, sent the way the operation's family expects them."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials

    def get(self, case: Any, context: Any) -> dict[str, str] | None:
        path = context.operation.path
        if path.startswith("/api/Log"):  # Logster
            return {"ApiKey": self.credentials["key"]}
        if path.startswith("/api/v0/sites"):  # GoatCounter's sites: a key of no site, to act for all of them
            return {"Authorization": f"Bearer {self.credentials['sites_key']}"}
        if path.startswith(("/api/v1/", "/api/v0/")):  # Bytelog, GoatCounter: a key bound to the user's site
            return {"Authorization": f"Bearer {self.credentials['key']}"}
        if path.startswith("/api/1/"):  # littlelogs: an OAuth2 access token
            return {"Authorization": f"Bearer {self.credentials['token']}"}
        return None  # Loggator: public

    def set(self, case: Any, data: dict[str, str], context: Any) -> None:
        case.headers = {**(case.headers or {}), **data}


@schemathesis.hook
def after_load_schema(context: Any, schema: Any) -> None:
    # [auth.wfc] with peers builds this same provider from fixed headers, which are the same for every operation.
    users = json.loads(os.environ["CONTRACT_CREDENTIALS"])
    names = list(users)
    providers: list[AuthProvider[Any]] = [FamilyCredentials(users[name]) for name in names]
    schema.auth.providers.append(EscalatingAuthProvider(providers, names, peers=tuple(names), pinned=names[0]))


# --- What a document can't say: rules across parameters and opaque values ----------------------------------
# The document declares every bound of each parameter on its own; these rules tie a value to another one (or to
# a page the server handed out), and the parameter descriptions state them. A positive case that breaks one is
# not "valid data", so it is brought within the rule; negative cases are left alone.

STATS = ("/api/v0/stats/", "/api/v0/paths")
FRESH = itertools.count(int(time.time()))
NOW = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())  # created_at compared as text: close enough for a year
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF")
BY_NAME = ("true", "1", "on", "yes")


def _is_positive(case: Any) -> bool:
    meta = case.meta
    return meta is not None and not meta.generation.mode.is_negative


def _id_list(value: Any) -> bool:
    return isinstance(value, str) and all(item.strip().isdigit() for item in value.split(",") if item.strip())


def _has_visitor(hit: Any) -> bool:
    return isinstance(hit, dict) and bool(hit.get("session") or (hit.get("user_agent") and hit.get("ip")))


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    # XML carries every value as text: a negative JSON value (a number for a string, null) is the same text
    # once serialized, so the violation does not survive into the request.
    return _is_positive(case) or "xml" not in (case.media_type or "")


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if not _is_positive(case):
        return case
    path, query = case.operation.path, case.query
    if path == "/api/Log" and query:
        query.pop("cursor", None)  # only ever from a previous page's Next link
    if path.startswith(STATS) and query:
        if query.get("start") and query.get("end"):
            query.pop("end", None)  # end: not before start, at most MAX_RANGE_DAYS after it; its default is both
        if str(query.get("path_by_name", "")).lower() not in BY_NAME:
            for name in ("include_paths", "exclude_paths"):
                if name in query and not _id_list(query[name]):
                    query.pop(name)  # path ids, unless path_by_name=true
    if path.endswith("/follow/") and case.path_parameters and case.path_parameters.get("username") == "alice":
        case.path_parameters["username"] = "charlie"  # no one follows themselves
    if not isinstance(case.body, dict):
        return case
    body = case.body = copy.deepcopy(case.body)  # a copy: the generated body may be shared with other cases
    if path.startswith("/api/v0/sites") and isinstance(body.get("code"), str):
        body["code"] = f"{body['code'][:3]}-{next(FRESH)}"  # a site's code is unique: one not taken yet
    if path.startswith("/api/v0/sites") and isinstance(body.get("domains"), list):
        body["domains"] = [f"d{next(FRESH)}.example" for _ in body["domains"]]  # so is a domain, once in a site
    if path.startswith("/api/v0/sites") and isinstance(body.get("cname"), str):
        # GoatCounter's cname is one more domain of the site, within its 20: sent here with domains only, so
        # that a site's domains already stored don't count
        if isinstance(body.get("domains"), list):
            body["cname"] = f"c{next(FRESH)}.example"
            body["domains"] = body["domains"][:19]
        else:
            body.pop("cname")
    if "avatar" in body and not bytes(body["avatar"] or b"").startswith(IMAGE_SIGNATURES):
        body.pop("avatar")  # the document says binary; the server wants an image it can read
    # A hit needs a visitor: a session, or a browser and IP, unless no_sessions says none is tracked.
    for hit in body.get("hits") or [] if path == "/api/v0/count" else []:
        if isinstance(hit, dict) and isinstance(hit.get("created_at"), str) and hit["created_at"] > NOW:
            hit.pop("created_at")  # a hit is not from the future
    if path == "/api/v0/count" and not body.get("no_sessions") and not all(map(_has_visitor, body.get("hits") or [])):
        body["no_sessions"] = True
    return case
