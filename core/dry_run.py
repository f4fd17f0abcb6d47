"""The dry run's unit of work: intake writes into memory, reads fall through to the store.

``sync --dry-run`` takes every page through the same intake as a sync, so the plan it
prints is what a sync would do; only here nothing reaches the state store. Reads see
this run's own writes first (a record met twice, a receipt planned earlier in the
run), then what the store holds, read-only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt, Snapshot

ReceiptKey = tuple[str, str, str, int]  # connection, CRM id, kind, version


class DryUnit:
    """An in-memory ``IntakeUnit`` over a read-only view of ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.snapshots: dict[tuple[str, str], Snapshot] = {}
        self.receipts: dict[ReceiptKey, Receipt] = {}
        self.cursors: dict[str, str] = {}
        self.quarantined: dict[tuple[str, str], str] = {}

    def snapshot(self, connection: str, source_id: str) -> Snapshot | None:
        key = (connection, source_id)
        return self.snapshots[key] if key in self.snapshots else self.store.snapshot(connection, source_id)

    def put_snapshot(self, fresh: Snapshot) -> None:
        self.snapshots[(fresh.connection, fresh.source_id)] = fresh

    def receipt_of(self, connection: str, source_id: str, version: int, kind: str = "receipt") -> Receipt | None:
        planned = self.receipts.get((connection, source_id, kind, version))
        return planned or self.store.receipt_of(connection, source_id, version, kind)

    def receipt_exists(self, connection: str, source_id: str, version: int, kind: str = "receipt") -> bool:
        return self.receipt_of(connection, source_id, version, kind) is not None

    def save(self, row: Receipt) -> None:
        self.receipts[(row.connection, row.source_id, row.kind, row.payment_version)] = row

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # like the store's savepoint: a record that fails leaves none of its writes behind
        kept = copy.copy(self.snapshots), copy.copy(self.receipts)
        try:
            yield
        except BaseException:
            self.snapshots, self.receipts = kept
            raise

    def set_cursor(self, connection: str, cursor: str) -> None:
        self.cursors[connection] = cursor

    def quarantine(self, connection: str, source_id: str, reason: str) -> None:
        self.quarantined[(connection, source_id)] = reason

    def release(self, connection: str, source_id: str) -> None:
        self.quarantined.pop((connection, source_id), None)

    def log(self, connection: str, kind: str, *, receipt_id: str | None = None,
            source_id: str | None = None, **data: Any) -> None:
        """A dry run leaves no trace in the audit trail: it changed nothing."""
