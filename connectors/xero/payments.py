"""Invoice payments as Xero Payments: one per payment the CRM recorded, each
with its own date, amount and reference, each written exactly once.

A payment's Idempotency-Key is derived from the receipt key and its rank
(the first keeps ``<key>:payment``, the key of the single payment pouracquit
sent before it booked payments one by one, so a receipt in flight across an
upgrade is not paid twice). Before writing, the invoice's booked payments
(``Invoice.Payments``, spec#/components/schemas/Invoice) are matched to the
plan by date and amount, so a replay writes only what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pouracquit.common.errors import PermanentError
from pouracquit.common.model import Invoice, Payment
from pouracquit.connectors.base import ReceiptOrder
from pouracquit.mappings import lookup

from .format import REFERENCE_MAX, amount, booking_day


@dataclass(frozen=True)
class PlannedPayment:
    key: str  # the Idempotency-Key of its write
    day: date
    amount: Decimal
    reference: str


def payment_text(mapping: Mapping[str, Any], payment: Payment, fallback: str) -> str:
    """What starts a Payment's Reference: the method's words, then the payment's own reference."""
    words = lookup(mapping["payment_methods"], payment.method.value, "payment_methods")
    return " ".join(part for part in (str(words), payment.reference) if part)[:REFERENCE_MAX] or fallback


def plan(order: ReceiptOrder, mapping: Mapping[str, Any]) -> list[PlannedPayment]:
    """The Xero payments that settle ``order``'s invoice, oldest first. When the CRM's
    payments do not add up to the total (or one is not positive), one payment of the
    total on the day of the last one settles it, as before payments were booked one by one."""
    invoice: Invoice = order.invoice
    total = invoice.gross_total.rounded().amount
    payments = sorted(invoice.payments, key=lambda p: p.paid_at)
    amounts = [p.amount.rounded().amount for p in payments]
    if not payments or sum(amounts, Decimal(0)) != total or any(a <= 0 for a in amounts):
        last = invoice.last_payment
        assert last is not None  # the ledger checks there is one
        return [PlannedPayment(f"{order.key}:payment", booking_day(last), total,
                               payment_text(mapping, last, order.number))]
    return [PlannedPayment(f"{order.key}:payment" + (f":{rank}" if rank > 1 else ""), booking_day(p), a,
                           payment_text(mapping, p, order.number))
            for rank, (p, a) in enumerate(zip(payments, amounts, strict=True), 1)]


def _xero_day(value: Any) -> date | None:
    """``/Date(1772668800000+0000)/`` (or an ISO date) as a date."""
    text = str(value or "")
    if text.startswith("/Date("):
        return datetime.fromtimestamp(int(text[6:19]) / 1000, UTC).date()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def unbooked(planned: Sequence[PlannedPayment], booked: Sequence[Mapping[str, Any]]) -> list[PlannedPayment]:
    """The planned payments not among ``booked``, matched by date and amount."""
    pool = [(_xero_day(row.get("Date")), Decimal(str(row.get("Amount") or 0))) for row in booked]
    left = []
    for p in planned:
        if (p.day, p.amount) in pool:
            pool.remove((p.day, p.amount))
        else:
            left.append(p)
    return left


def missing(planned: Sequence[PlannedPayment], booked: Sequence[Mapping[str, Any]], due: Decimal,
            number: str) -> list[PlannedPayment]:
    """The planned payments not among ``booked`` (the invoice's Payments), checked against what
    Xero says is still due: a difference means someone else paid part of it."""
    left = unbooked(planned, booked)
    if sum((p.amount for p in left), Decimal(0)) != due:
        raise PermanentError(f"Xero invoice {number} has payments pouracquit did not book "
                             f"({due} still due, {sum((p.amount for p in left), Decimal(0))} to pay): "
                             f"settle it by hand")
    return left


def body(p: PlannedPayment, invoice_id: str, bank_account: str) -> dict[str, Any]:
    """spec#/components/schemas/Payment for one planned payment of invoice ``invoice_id``."""
    return {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": bank_account}, "Date": p.day.isoformat(),
            "Amount": amount(p.amount), "Reference": p.reference}
