"""What the admin page shows and does, read from the store and the archive:
blocking work, run on the server's thread pool."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pouracquit.common.errors import PermanentError
from pouracquit.core.archive import Archive
from pouracquit.core.audit import document_matches
from pouracquit.core.pipeline import Pipeline
from pouracquit.core.service import Service
from pouracquit.state.tables import Event, Receipt

from ..status import connection_status, readiness

STATUSES = ("pending", "done", "failed", "quarantined")
RETRYABLE = frozenset({"failed", "quarantined", "pending"})
LIST_LIMIT = 100


def lag_seconds(last_success: str | None, now: datetime) -> int | None:
    """Seconds since the cursor last advanced successfully."""
    return None if last_success is None else int((now - datetime.fromisoformat(last_success)).total_seconds())


def connections(service: Service) -> list[dict[str, Any]]:
    """/status's view of each connection, with its health and cursor lag."""
    now = datetime.now(UTC)
    reasons = readiness(service, now).reasons
    out = []
    for name, data in connection_status(service).items():
        out.append({**data, "name": name, "unhealthy": reasons.get(name) if data["enabled"] else None,
                    "lag": lag_seconds(data["last_success_at"], now)})
    return out


def search(service: Service, text: str, connection: str | None, status: str | None) -> list[Receipt]:
    return service.store.search_receipts(text.strip(), connection, status, limit=LIST_LIMIT)


@dataclass(frozen=True)
class Trail:
    seq: int | None
    at: datetime
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ReceiptView:
    receipt: Receipt
    archive_ok: bool
    trail: list[Trail]

    @property
    def retryable(self) -> bool:
        r = self.receipt
        return r.status in ("failed", "quarantined") or (r.status == "pending" and bool(r.last_error))


def _trail(event: Event) -> Trail:
    return Trail(event.seq, event.at, event.kind, json.loads(event.data))


def receipt_view(service: Service, receipt_id: str) -> ReceiptView | None:
    """One receipt by its exact id, its archive check and its audit trail."""
    receipt = service.store.receipt(receipt_id)
    if receipt is None or receipt.id != receipt_id:
        return None
    return ReceiptView(receipt=receipt, archive_ok=document_matches(service.store, receipt, service.settings.archive),
                       trail=[_trail(e) for e in service.store.events(receipt.id)])


def pdf(service: Service, receipt_id: str) -> tuple[str, bytes] | None:
    """(file name, content) of a receipt's archived document, checked against its
    hash; None when it has none or the archive lost or altered it."""
    receipt = service.store.receipt(receipt_id)
    if receipt is None or receipt.id != receipt_id or not receipt.document_sha256 or not receipt.document_name:
        return None
    try:
        return receipt.document_name, Archive(service.settings.archive).read(receipt.document_sha256)
    except (OSError, PermanentError):
        return None


def retry(service: Service, receipt_id: str) -> str:
    """What ``receipts retry`` does, on a person's order from the page: the
    receipt is due again with fresh attempts, and worked at once. The outcome
    ("done", "retrying", "failed", "busy"...), or "unchanged" for a receipt
    that is done or unknown."""
    with service.store.unit() as u:
        found = u.session.get(Receipt, receipt_id, with_for_update=True)
        if found is None or found.status not in RETRYABLE:
            return "unchanged"
        row = u.update_receipt(found.id, None, status="pending", attempts=0, next_attempt_at=datetime.now(UTC))
        u.log(row.connection, "retry_requested", receipt_id=row.id, source_id=row.source_id, step=row.step,
              by="admin page")
    conn = service.settings.connection(row.connection)
    outcome, _ = Pipeline(service.wiring(conn), service.owner).process(row.id)
    return outcome
