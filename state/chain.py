"""The hash chain over the event log: each entry's hash covers its content
and the previous entry's hash, so an edited or removed entry breaks every
hash after it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from .tables import DEFAULT_TENANT, Event

GENESIS = "0" * 64


def entry_hash(prev_hash: str, event: Event) -> str:
    fields = [prev_hash, event.at.isoformat(), event.connection, event.receipt_id, event.source_id, event.kind,
              event.data]
    if event.tenant != DEFAULT_TENANT:  # an entry moved to another company's trail breaks; old chains keep their hashes
        fields.append(event.tenant)
    body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def verify_chain(events: Iterable[Event]) -> list[ChainBreak]:
    """Walk the log in order; report every entry whose link or hash is wrong."""
    breaks: list[ChainBreak] = []
    prev = GENESIS
    expected_seq = None
    for ev in events:
        assert ev.seq is not None
        if expected_seq is not None and ev.seq != expected_seq:
            breaks.append(ChainBreak(ev.seq, f"entries {expected_seq}..{ev.seq - 1} are missing"))
        if ev.prev_hash != prev:
            breaks.append(ChainBreak(ev.seq, "does not link to the previous entry"))
        if entry_hash(ev.prev_hash, ev) != ev.hash:
            breaks.append(ChainBreak(ev.seq, "content does not match its hash (edited)"))
        prev, expected_seq = ev.hash, ev.seq + 1
    return breaks
