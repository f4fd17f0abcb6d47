"""Intake: a page of CRM invoices → snapshots, payment events and outbox
rows, in one transaction with the cursor that moves past the page."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

import structlog

from pouracquit.connectors.base import Page
from pouracquit.state.store import Unit
from pouracquit.state.tables import Receipt, Snapshot

from .diff import PaymentEvent, Seen, diff
from .model import Invoice, InvoiceStatus

log = structlog.get_logger("pouracquit.intake")

FLAGS = frozenset({PaymentEvent.REFUNDED, PaymentEvent.VOIDED, PaymentEvent.CHANGED_AFTER_PAID})


@dataclass
class PlannedReceipt:
    source_id: str
    number: str
    customer: str
    amount: str


@dataclass
class IntakeReport:
    seen: int = 0
    events: Counter[str] = field(default_factory=Counter)
    planned: list[PlannedReceipt] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


def seen_of(snapshot: Snapshot | None) -> Seen | None:
    if snapshot is None:
        return None
    return Seen(
        status=InvoiceStatus(snapshot.status),
        amount_paid=snapshot.amount_paid,
        fully_paid=snapshot.status == InvoiceStatus.PAID and snapshot.amount_paid == snapshot.gross_total,
        fingerprint=snapshot.fingerprint,
        paid_version=snapshot.paid_version,
    )


def snapshot_of(connection: str, invoice: Invoice, paid_version: int) -> Snapshot:
    return Snapshot(
        connection=connection,
        source_id=invoice.source_id,
        status=invoice.status.value,
        amount_paid=invoice.amount_paid.amount,
        gross_total=invoice.gross_total.amount,
        currency=invoice.currency,
        fingerprint=invoice.content_fingerprint(),
        paid_version=paid_version,
        modified_at=invoice.modified_at,
    )


def new_receipt(connection: str, invoice: Invoice, version: int) -> Receipt:
    return Receipt(
        id=uuid.uuid4().hex[:20],
        connection=connection,
        source_id=invoice.source_id,
        payment_version=version,
        invoice_json=invoice.model_dump_json(),
        amount=invoice.gross_total.amount,
        currency=invoice.currency,
        customer=invoice.customer.name,
    )


def take_page(u: Unit | None, connection: str, page: Page, report: IntakeReport,
              dry_snapshots: dict[str, Snapshot] | None = None) -> None:
    """Record one page. With ``u`` None (dry run) nothing is written: the
    snapshots live in ``dry_snapshots`` and receipts only in the plan."""
    for invoice in page.invoices:
        report.seen += 1
        sid = invoice.source_id
        stored = dry_snapshots.get(sid) if u is None and dry_snapshots is not None else None
        if u is not None:
            stored = u.snapshot(connection, sid)
        version = stored.paid_version if stored else 0
        for event in diff(seen_of(stored), invoice):
            report.events[event.value] += 1
            if event is PaymentEvent.PAID:
                version += 1
                report.planned.append(PlannedReceipt(
                    sid, invoice.number or "(allocated)", invoice.customer.name, str(invoice.gross_total),
                ))
                if u is not None and not u.receipt_exists(connection, sid, version):
                    receipt = new_receipt(connection, invoice, version)
                    u.save(receipt)
                    u.log(connection, "payment_detected", receipt_id=receipt.id, source_id=sid,
                          amount=str(invoice.gross_total), paid_at=invoice.last_payment.paid_at
                          if invoice.last_payment else None)
            elif u is not None:
                u.log(connection, event.value, source_id=sid, amount_paid=str(invoice.amount_paid))
            if event in FLAGS and version > 0:  # a receipt exists: a person should look
                log.warning("invoice changed after its receipt", connection=connection, source_id=sid,
                            event=event.value)
        fresh = snapshot_of(connection, invoice, version)
        if u is None:
            if dry_snapshots is not None:
                dry_snapshots[sid] = fresh
            continue
        if stored is None:
            u.save(fresh)
        else:
            for name in ("status", "amount_paid", "gross_total", "currency", "fingerprint", "paid_version",
                         "modified_at", "seen_at"):
                setattr(stored, name, getattr(fresh, name))
            u.save(stored)
        u.release(connection, sid)
    for sid, reason in page.rejected:
        report.rejected[sid] = reason
        if u is not None:
            u.quarantine(connection, sid, reason)
    if u is not None and page.cursor is not None:
        u.connection_state(connection).cursor = page.cursor
