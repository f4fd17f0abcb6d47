"""What the admin page shows and does, read from the store and the archive:
blocking work, run on the server's thread pool."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from pouracquit.common.errors import ConfigError, PermanentError, PouracquitError
from pouracquit.core.archive import Archive
from pouracquit.core.audit import document_matches
from pouracquit.core.insight.labels import Language
from pouracquit.core.insight.render import payments_html, reconcile_html
from pouracquit.core.pipeline import Pipeline
from pouracquit.core.service import Service
from pouracquit.state.tables import Event, Receipt

from ..report_cmd import BadParameter, check_request, payments_report, reconcile_all
from ..served import Served
from ..status import connection_status, deployment_status

log = structlog.get_logger("pouracquit.admin")
STATUSES = ("pending", "done", "failed", "quarantined")
REPORTS = ("payments", "reconcile")
RETRYABLE = frozenset({"failed", "quarantined", "pending"})
LIST_LIMIT = 100


def connections(service: Service) -> list[dict[str, Any]]:
    """/status's view of each connection (freshness, cursor, disconnections, problems)."""
    return [{**status, "name": name} for name, status in connection_status(service).items()]


def companies(served: Served) -> list[dict[str, Any]]:
    """A deployment's companies as /status summarises them, by name."""
    return [{**summary, "name": name} for name, summary in deployment_status(served)["tenants"].items()]


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
    invoice: dict[str, Any]  # what the CRM said when the payment was seen (dates, payments)

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
                       trail=[_trail(e) for e in service.store.events(receipt.id)],
                       invoice=json.loads(receipt.invoice_json))


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


def retry(service: Service, receipt_id: str, work: bool = True) -> str | None:
    """What ``receipts retry`` does, on a person's order from the page: the
    receipt is due again with fresh attempts, and worked at once. The outcome
    ("done", "retrying", "failed", "busy"...), None for a receipt this company
    does not have, "unchanged" for one that is done, "config_error" when the connection's settings are
    refused (the receipt waits, due, for them to be fixed). Without ``work``
    (a fleet's admin server: its workers do the work) it is only made due: "queued"."""
    with service.store.unit() as u:
        found = u.session.get(Receipt, receipt_id, with_for_update=True)
        if found is None:
            return None
        if found.status not in RETRYABLE:
            return "unchanged"
        row = u.requeue(found.id, by="admin page")
    if not work:
        return "queued"
    try:
        wiring = service.wiring(service.settings.connection(row.connection))
        outcome, _ = Pipeline(wiring, service.owner).process(row.id)
    except ConfigError as exc:
        log.warning("retry from the admin page stopped on the configuration", receipt_id=row.id, reason=str(exc))
        return "config_error"
    return outcome


def report(service: Service, kind: str, start: str | None, end: str | None, connection: str | None,
           language: Language = "en") -> tuple[str, str]:
    """(HTML fragment, "") of one report, or ("", why not): a bad parameter, or a
    vendor that could not be read. Parameters are checked as ``pouracquit report`` checks them."""
    try:
        request = check_request(service.settings, start=start, end=end if kind == "payments" else None,
                                connection=connection, fmt="html")
        if kind == "payments":
            return payments_html(payments_report(service, request), standalone=False, language=language), ""
        return reconcile_html(reconcile_all(service, request), standalone=False, language=language), ""
    except (BadParameter, PouracquitError) as exc:  # ConfigError included: one line on the page, not a 500
        return "", str(exc)
