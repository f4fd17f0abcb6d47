"""Intake: a page of CRM invoices → snapshots, payment events and outbox
rows, in one transaction with the cursor that moves past the page.

Each record is taken in on its own savepoint: whatever goes wrong with one
record (a value the store refuses, a bug of ours) quarantines that record
with the reason, and the rest of the page and the cursor go on. A record that
could stop the page would stop the connection for good, since the next sync
reads the same page again.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

import structlog
from sqlalchemy.exc import DataError, IntegrityError

from pouracquit.common.errors import BadRecord, ConfigError, one_line
from pouracquit.common.model import Invoice, InvoiceStatus
from pouracquit.common.rates import with_exchange_rate
from pouracquit.connectors.base import Page
from pouracquit.state.tables import Receipt, Snapshot

from .credit import PARIS, credit_invoice
from .diff import PaymentEvent, Seen, diff
from .limits import check_limits

log = structlog.get_logger("pouracquit.intake")

FLAGS = frozenset({PaymentEvent.REFUNDED, PaymentEvent.VOIDED, PaymentEvent.CHANGED_AFTER_PAID})
CREDITED = frozenset({PaymentEvent.REFUNDED, PaymentEvent.VOIDED})


@dataclass(frozen=True)
class IntakePolicy:
    """What a connection does with money going back after a receipt:
    ``credit_note`` issues a facture d'avoir, ``flag`` only records the event."""

    refunds: Literal["credit_note", "flag"] = "credit_note"
    language: Literal["fr", "en"] = "fr"
    # paid before this day: no receipt (the history before pouracquit), unless backfilled
    start_date: date | None = None


class IntakeUnit(Protocol):
    """What intake writes through: the state store's ``Unit`` in a sync, an
    in-memory ``DryUnit`` (core/dry_run.py) in a dry run, which keeps every write
    to itself so the plan is what a real sync would do."""

    def snapshot(self, connection: str, source_id: str) -> Snapshot | None: ...
    def put_snapshot(self, fresh: Snapshot) -> None: ...
    def receipt_of(self, connection: str, source_id: str, version: int, kind: str = "receipt") -> Receipt | None: ...
    def receipt_exists(self, connection: str, source_id: str, version: int, kind: str = "receipt") -> bool: ...
    def save(self, row: Receipt) -> None: ...
    def savepoint(self) -> AbstractContextManager[None]: ...
    def set_cursor(self, connection: str, cursor: str) -> None: ...
    def quarantine(self, connection: str, source_id: str, reason: str) -> None: ...
    def release(self, connection: str, source_id: str) -> None: ...
    def log(self, connection: str, kind: str, *, receipt_id: str | None = None,
            source_id: str | None = None, **data: Any) -> object: ...


@dataclass
class PlannedReceipt:
    source_id: str
    number: str
    customer: str
    amount: str
    kind: str = "receipt"


@dataclass
class IntakeReport:
    seen: int = 0
    events: Counter[str] = field(default_factory=Counter)
    planned: list[PlannedReceipt] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    # events that need a person to look, one line each: (source id, what happened)
    notices: list[tuple[str, str]] = field(default_factory=list)
    before_start: int = 0


def paid_on(invoice: Invoice) -> date:
    """The day (in France) an invoice was paid in full: its last payment's."""
    last = invoice.last_payment
    return (last.paid_at if last else invoice.modified_at).astimezone(PARIS).date()


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


def new_receipt(connection: str, invoice: Invoice, version: int, *, kind: str = "receipt",
                original: str | None = None) -> Receipt:
    return Receipt(
        id=uuid.uuid4().hex[:20],
        connection=connection,
        source_id=invoice.source_id,
        kind=kind,
        payment_version=version,
        original_receipt_id=original,
        invoice_json=invoice.model_dump_json(),
        amount=invoice.gross_total.amount,
        currency=invoice.currency,
        customer=invoice.customer.name,
    )


@contextmanager
def one_record(u: IntakeUnit, connection: str, source_id: str, report: IntakeReport) -> Iterator[None]:
    """Take one record in; a failure quarantines it instead of stopping the page."""
    try:
        with u.savepoint():
            yield
    except ConfigError:
        raise
    except (BadRecord, DataError, IntegrityError) as exc:
        reason = str(exc) if isinstance(exc, BadRecord) else " ".join(str(exc.orig).split())[:500]
        _quarantine(u, connection, source_id, reason, report)
    except Exception as exc:  # one record's surprise must not stop the connection
        log.exception("record quarantined by an unexpected error", connection=connection, source_id=source_id)
        _quarantine(u, connection, source_id, f"unexpected {type(exc).__name__} while taking it in: {exc}", report)


def _quarantine(u: IntakeUnit, connection: str, source_id: str, reason: str, report: IntakeReport) -> None:
    reason = one_line(reason)
    report.rejected[source_id] = reason
    # an id longer than the store's column is itself a reason to quarantine: keep what fits
    u.quarantine(connection, source_id[:200], reason)


def take_page(u: IntakeUnit, connection: str, page: Page, report: IntakeReport,
              policy: IntakePolicy | None = None) -> None:
    """Record one page: snapshots, outbox rows, quarantines and the cursor past it."""
    policy = policy or IntakePolicy()
    for invoice in page.invoices:
        report.seen += 1
        with one_record(u, connection, invoice.source_id, report):
            _take(u, connection, invoice, report, policy)
    for sid, reason in page.rejected:
        _quarantine(u, connection, sid, reason, report)
    if page.cursor is not None:
        u.set_cursor(connection, page.cursor)


def _take(u: IntakeUnit, connection: str, invoice: Invoice, report: IntakeReport, policy: IntakePolicy) -> None:
    check_limits(invoice, datetime.now(PARIS).date())  # before anything of it is written
    sid = invoice.source_id
    stored = u.snapshot(connection, sid)
    version = stored.paid_version if stored else 0
    credit_version = stored.credit_version if stored else 0
    credited = stored.credited if stored else Decimal("0")
    paid_before = stored.amount_paid if stored else Decimal("0")
    for event in diff(seen_of(stored), invoice):
        report.events[event.value] += 1
        if event is PaymentEvent.PAID and policy.start_date and paid_on(invoice) < policy.start_date:
            report.before_start += 1  # remembered as paid with no receipt: `backfill` can still make one
            continue
        if event is PaymentEvent.PAID:
            version, credit_version, credited = version + 1, 0, Decimal("0")
            report.planned.append(PlannedReceipt(
                sid, invoice.number or "(allocated)", invoice.customer.name, str(invoice.gross_total)))
            if not u.receipt_exists(connection, sid, version):
                # the euro rate is fixed once, here: the document and the ledger then agree on it
                receipt = new_receipt(connection, with_exchange_rate(invoice), version)
                u.save(receipt)
                last = invoice.last_payment
                u.log(connection, "payment_detected", receipt_id=receipt.id, source_id=sid,
                      amount=str(invoice.gross_total), paid_at=last.paid_at if last else None)
            continue
        u.log(connection, event.value, source_id=sid, amount_paid=str(invoice.amount_paid))
        if version == 0 or event not in FLAGS:
            continue  # no receipt was issued: nothing printed is contradicted
        if event in CREDITED and policy.refunds == "credit_note":
            original = u.receipt_of(connection, sid, version)  # the receipt being credited, as it was issued
            amount = _to_credit(invoice, event, paid_before, credited, stored, original)
            if amount > 0:
                credit_version, credited = credit_version + 1, credited + amount
                _queue_credit(u, connection, invoice, event, version, credit_version, amount, report, policy,
                              original)
                continue
        report.notices.append((sid, f"{event.value} after its receipt was issued: check it in the CRM"))
        # the structlog event is the message; the payment event goes under its own key
        log.warning("invoice changed after its receipt", connection=connection, source_id=sid,
                    payment_event=event.value)
    fresh = snapshot_of(connection, invoice, version)
    fresh.credit_version, fresh.credited = credit_version, credited
    u.put_snapshot(fresh)
    u.release(connection, sid)


def _to_credit(invoice: Invoice, event: PaymentEvent, paid_before: Decimal, credited: Decimal,
               stored: Snapshot | None, original: Receipt | None) -> Decimal:
    """How much of the receipt the event takes back (VAT included), never more
    than what the receipt stated and earlier credit notes left."""
    receipted = original.amount if original is not None else stored.gross_total if stored else Decimal("0")
    left = receipted - credited
    if event is PaymentEvent.VOIDED:
        return left
    return min(paid_before - invoice.amount_paid.amount, left)


def _queue_credit(u: IntakeUnit, connection: str, invoice: Invoice, event: PaymentEvent, version: int,
                  credit_version: int, amount: Decimal, report: IntakeReport, policy: IntakePolicy,
                  original: Receipt | None) -> None:
    sid = invoice.source_id
    report.planned.append(PlannedReceipt(sid, "(credit note)", invoice.customer.name,
                                         f"{amount} {invoice.currency}", kind="credit_note"))
    if u.receipt_exists(connection, sid, credit_version, kind="credit_note"):
        return
    if original is None:
        raise BadRecord(f"receipt {version} of this invoice is missing from the state store")
    stated = Invoice.model_validate_json(original.invoice_json)
    credit = credit_invoice(stated, amount, invoice.modified_at, language=policy.language)
    reason = "cancellation" if event is PaymentEvent.VOIDED else "refund"
    receipt = new_receipt(connection, credit, credit_version, kind="credit_note", original=original.id)
    # the rest of the reference (the original's number and date) is fixed when the credit note is numbered
    receipt.credits_json = json.dumps({"reason": reason})
    u.save(receipt)
    u.log(connection, "credit_note_queued", receipt_id=receipt.id, source_id=sid, credits=original.id,
          amount=str(credit.gross_total), reason=reason)
