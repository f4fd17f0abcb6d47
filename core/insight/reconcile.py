"""Reconciliation CRM ↔ ledger at amount level, one connection at a time.

Three views meet here: the CRM as it is now (the snapshots, overlaid with the
changes the CRM reports since the stored cursor, read without writing), the
receipts the state store issued, and the ledger read back through its
``LedgerReadBack`` capability. Every disagreement is one ``Drift`` naming the
invoice, the ledger document and what a person does about it. pouracquit
never re-books or deletes on its own here: a drift is for a person.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import structlog

from pouracquit.common.errors import ConfigError, PouracquitError
from pouracquit.common.model import Invoice, InvoiceStatus
from pouracquit.connectors.base import LedgerBooking, LedgerReadBack
from pouracquit.state.tables import Snapshot

from ..intake import paid_on
from ..pipeline import idempotency_key
from ..service import Service
from ..sync import intake_policy
from .facts import Issued, credited, issued, snapshots

# What each kind of drift means, as the report prints it beside the lines.
KINDS: dict[str, str] = {
    "paid_not_booked": "paid in the CRM, no booking in the ledger",
    "booked_not_attached": "booked in the ledger, no receipt on the CRM record",
    "amount_differs": "amounts differ by at least a cent",
    "paid_in_ledger_open_in_crm": "paid in the ledger, open in the CRM",
    "deleted_in_ledger": "booking deleted in the ledger",
    "voided_in_ledger": "booking voided in the ledger",
}
KEY_PREFIX = idempotency_key("")  # what every order key pouracquit writes starts with
RECONCILED = "reconciled"  # the audit-trail entry each reconciliation leaves
SHOW = "see it with `pouracquit receipts show {}`"
log = structlog.get_logger("pouracquit.reconcile")


@dataclass(frozen=True)
class Drift:
    connection: str
    kind: str
    source_id: str
    number: str
    ledger_ref: str
    detail: str
    fix: str

    def line(self) -> str:
        where = f"invoice {self.number or self.source_id}" + (f" (ledger {self.ledger_ref})" if self.ledger_ref else "")
        return f"{self.connection}: {self.kind}: {where}: {self.detail}. Fix: {self.fix}"


@dataclass
class Reconciliation:
    connection: str
    since: date | None
    receipts: int = 0
    bookings: int = 0
    drifts: list[Drift] = field(default_factory=list)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"connection": self.connection, "since": self.since.isoformat() if self.since else None,
                "receipts_checked": self.receipts, "ledger_documents": self.bookings, "error": self.error,
                "drifts": [asdict(d) for d in self.drifts]}


@dataclass(frozen=True)
class CrmState:
    """One CRM invoice as it is now."""

    status: str
    amount_paid: Decimal
    currency: str

    @classmethod
    def of(cls, item: Snapshot | Invoice) -> CrmState:
        if isinstance(item, Invoice):
            return cls(item.status.value, item.amount_paid.amount, item.currency)
        return cls(item.status, item.amount_paid, item.currency)


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {currency}"


class _Comparison:
    """One connection's three views and the drifts found between them so far."""

    def __init__(self, connection: str, receipts: list[Issued], crm: dict[str, CrmState],
                 bookings: Iterable[LedgerBooking], since: date | None) -> None:
        self.connection, self.receipts, self.crm = connection, receipts, crm
        self.by_ref = {b.ref: b for b in bookings}
        self.in_period = [i for i in receipts if since is None or paid_on(i.invoice) >= since]
        self.latest = {i.receipt.source_id: i for i in self.in_period if i.receipt.kind == "receipt"}
        self.drifts: list[Drift] = []

    def add(self, kind: str, item: Issued | None, ref: str, detail: str, fix: str, *, source_id: str = "",
            number: str = "") -> None:
        if item is not None:
            source_id, number = item.receipt.source_id, item.receipt.number or item.invoice.number
        self.drifts.append(Drift(self.connection, kind, source_id, number, ref, detail, fix))

    def bookings_gone_or_off(self) -> None:
        """Each booked receipt or credit note against its ledger document."""
        for item in self.in_period:
            r = item.receipt
            if not (r.book and r.status == "done" and r.ledger_id):
                continue
            what, states = r.kind.replace("_", " "), _money(r.amount, r.currency)
            booking = self.by_ref.get(r.ledger_id)
            if booking is None or booking.state != "booked":
                voided = booking is not None and booking.state == "voided"
                self.add("voided_in_ledger" if voided else "deleted_in_ledger", item, r.ledger_id,
                         f"the {what} of {states} is {'voided' if voided else 'no longer'} in the ledger",
                         f"book it again by hand in the ledger if the payment stands ({SHOW.format(r.id)}), "
                         "otherwise cancel the payment in the CRM so that a credit note follows")
            elif booking.amount != r.amount or booking.currency != r.currency:
                self.add("amount_differs", item, r.ledger_id,
                         f"the ledger holds {_money(booking.amount, booking.currency)}, the {what} states {states}",
                         f"correct the document in the ledger to {states} ({SHOW.format(r.id)})")

    def crm_moved(self) -> None:
        """Each receipted invoice against the CRM now: reopened, or paid a different amount."""
        minus = credited(self.receipts)
        for sid, item in self.latest.items():
            r, now = item.receipt, self.crm.get(sid)
            if r.status != "done" or now is None:
                continue
            net = r.amount - minus.get(r.id, Decimal("0"))
            booked = self.by_ref.get(r.ledger_id or "")
            if now.status != InvoiceStatus.PAID.value and net > 0:
                if booked is not None and booked.state == "booked" and booked.paid > 0:
                    self.add("paid_in_ledger_open_in_crm", item, booked.ref,
                             f"receipt {r.number} states {_money(net, r.currency)} paid, the CRM invoice is "
                             f"{now.status}", "mark the invoice paid in the CRM if the money arrived; if it was "
                             "refunded, record the refund in the CRM so that a credit note follows")
            elif now.status == InvoiceStatus.PAID.value and now.amount_paid != net:
                self.add("amount_differs", item, r.ledger_id or "",
                         f"the CRM says {_money(now.amount_paid, now.currency)} paid, receipt {r.number} and its "
                         f"booking state {_money(net, r.currency)}", "correct the paid amount in the CRM; if the "
                         "payment really changed, record the refund or the extra payment in the CRM and sync")

    def paid_unbooked(self) -> None:
        """Paid in the CRM with no receipt, or with one that stopped before the ledger."""
        issued_for = {i.receipt.source_id for i in self.receipts if i.receipt.kind == "receipt"}
        for sid, now in sorted(self.crm.items()):
            if now.status == InvoiceStatus.PAID.value and sid not in issued_for:
                self.add("paid_not_booked", None, "", f"paid {_money(now.amount_paid, now.currency)} in the CRM, "
                         "no receipt issued", f"pouracquit sync --connection {self.connection}", source_id=sid)
        for sid, item in self.latest.items():
            r, now = item.receipt, self.crm.get(sid)
            if r.book and r.status != "done" and not r.ledger_id and now is not None \
                    and now.status == InvoiceStatus.PAID.value:
                self.add("paid_not_booked", item, "", f"receipt {r.id} is {r.status} at step {r.step}"
                         + (f": {r.last_error}" if r.last_error else ""),
                         f"pouracquit receipts retry {r.id}" if r.status == "failed"
                         else f"pouracquit sync --connection {self.connection}")

    def booked_unowned(self) -> None:
        """Ledger documents whose receipt is not done, or that carry a key no receipt owns."""
        known = {idempotency_key(i.receipt.id): i for i in self.receipts}
        owners = {i.receipt.ledger_id: i for i in self.receipts if i.receipt.ledger_id}
        for booking in self.by_ref.values():
            owner = owners.get(booking.ref) or known.get(booking.key)
            if booking.state != "booked" or (owner is not None and owner.receipt.status == "done"):
                continue
            amount = _money(booking.amount, booking.currency)
            if owner is not None:
                self.add("booked_not_attached", owner, booking.ref,
                         f"booked {amount}, receipt {owner.receipt.id} is {owner.receipt.status} at step "
                         f"{owner.receipt.step}", f"pouracquit receipts retry {owner.receipt.id}")
            elif booking.key.startswith(KEY_PREFIX):
                self.add("booked_not_attached", None, booking.ref,
                         f"{amount} booked with key {booking.key}, which no receipt of this store carries",
                         "check whether the state store was restored from an older copy; void the document in "
                         "the ledger if it is a duplicate", number=booking.number)


def compare(connection: str, receipts: list[Issued], crm: dict[str, CrmState],
            bookings: Iterable[LedgerBooking], *, since: date | None = None) -> list[Drift]:
    """The drifts between what was issued, the CRM now and the ledger now."""
    found = _Comparison(connection, receipts, crm, bookings, since)
    found.bookings_gone_or_off()
    found.crm_moved()
    found.paid_unbooked()
    found.booked_unowned()
    return found.drifts


def crm_now(service: Service, name: str, stored: dict[str, Snapshot]) -> dict[str, CrmState]:
    """The snapshots overlaid with what the CRM changed since the stored cursor (read only).
    An invoice paid before the connection's start date is left out (remembered so with no
    receipt version, or not seen yet): no receipt is owed for it unless ``backfill`` makes one."""
    state = service.store.connection_states().get(name)
    start = intake_policy(service, name, dry_run=True).start_date
    source = service.wiring(service.settings.connection(name)).source
    out = {sid: CrmState.of(s) for sid, s in stored.items() if not (s.status == "paid" and s.paid_version == 0)}
    for page in source.changes(state.cursor if state else None):
        for invoice in page.invoices:
            snap = stored.get(invoice.source_id)
            if snap is not None and snap.status == "paid" and snap.paid_version == 0:
                continue
            if snap is None and start is not None and invoice.fully_paid and paid_on(invoice) < start:
                continue
            out[invoice.source_id] = CrmState.of(invoice)
    return out


def _ledger_since(receipts: list[Issued], since: date | None) -> date | None:
    """How far back the ledger is read for the receipts paid since ``since``: a document is
    dated its payment's day, or its invoice's (an Invoice booked with its payments), never before."""
    if since is None:
        return None
    return min([since, *(i.invoice.issue_date for i in receipts if paid_on(i.invoice) >= since)])


def reconcile_connection(service: Service, name: str, since: date | None = None) -> Reconciliation:
    """Compare one connection's CRM, store and ledger; vendor failures become ``error``."""
    conn = service.settings.connection(name)
    result = Reconciliation(connection=name, since=since)
    ledger = service.wiring(conn).ledger
    if not isinstance(ledger, LedgerReadBack):
        result.error = f"the {conn.ledger.vendor} ledger cannot be read back"
        return result
    try:
        receipts = list(issued(service.store, name))
        crm = crm_now(service, name, snapshots(service.store, name))
        bookings = list(ledger.paid_state(_ledger_since(receipts, since)))
    except ConfigError:
        raise
    except PouracquitError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    result.receipts, result.bookings = len(receipts), len(bookings)
    result.drifts = compare(name, receipts, crm, bookings, since=since)
    return result


def record(service: Service, result: Reconciliation) -> None:
    """Leave the outcome in the audit trail: what /metrics reports and a person can look back on."""
    with service.store.unit() as u:
        u.log(result.connection, RECONCILED, drifts=len(result.drifts), error=result.error or None,
              kinds=dict(Counter(d.kind for d in result.drifts)), receipts=result.receipts,
              ledger_documents=result.bookings)
    for drift in result.drifts:
        log.warning("ledger out of step with the CRM", connection=result.connection, drift=drift.kind,
                    invoice=drift.number or drift.source_id, ledger_ref=drift.ledger_ref, fix=drift.fix)
    if result.error:
        log.error("reconciliation failed", connection=result.connection, error=result.error)


def reconcile_and_record(service: Service, name: str) -> Reconciliation:
    """The daily job: reconcile everything the connection holds, then record it."""
    result = reconcile_connection(service, name)
    record(service, result)
    return result


def drift_samples(service: Service) -> list[tuple[dict[str, str], float]]:
    """Per connection, the drifts its last reconciliation found (NaN when it could not
    run); a connection never reconciled has no sample."""
    samples = []
    for conn in service.connections():
        events = service.store.events(kind=RECONCILED, connection=conn.name)
        if events:
            data = json.loads(events[-1].data)
            samples.append(({"connection": conn.name}, math.nan if data.get("error") else float(data["drifts"])))
    return samples
