"""Logster's and Bytelog's part of deleting an account (logsvc.deletion): its log messages and events, a batch at a
time (their (owner, ...) indexes find them); Loggator's public reads of the events go with them."""

from __future__ import annotations

from collections.abc import Iterator

from events.models import Event, LogMessage
from logsvc.deletion import delete_in_batches
from logsvc.models import Deletion


def delete_account_data(deletion: Deletion) -> Iterator[int]:
    for model in (LogMessage, Event):
        yield from delete_in_batches(model._meta.db_table, "owner_id = %s", [deletion.target])
