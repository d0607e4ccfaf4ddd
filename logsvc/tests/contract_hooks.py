"""schemathesis hooks for test_contract.py, loaded by the `st` process (SCHEMATHESIS_HOOKS): each family's own
credentials, for alice (who every operation runs as) and for charlie (the peer object_level_authorization
replays alice's reads as).

The credentials come as JSON in CONTRACT_CREDENTIALS: {"alice": {"key": ..., "sites_key": ..., "token": ...}, ...}.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
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
    providers = [FamilyCredentials(users[name]) for name in names]
    schema.auth.providers.append(EscalatingAuthProvider(providers, names, peers=tuple(names), pinned=names[0]))
