"""Stored snapshot vs current record → payment events.

Only a fully paid invoice gets a receipt. A payment in several parts is
tracked as ``partially_paid`` until the balance reaches zero, then one
``paid`` event. Money going back after a receipt (each decrease of the paid
amount, or a void) is ``refunded`` / ``voided``: the intake answers with a
credit note. An edit of what the receipt printed is flagged for a human,
never silently re-receipted.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pouracquit.common.model import Invoice, InvoiceStatus


class PaymentEvent(StrEnum):
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    REFUNDED = "refunded"
    VOIDED = "voided"
    CHANGED_AFTER_PAID = "changed_after_paid"


@dataclass(frozen=True)
class Seen:
    """The diff-relevant part of a stored snapshot."""

    status: InvoiceStatus
    amount_paid: Decimal
    fully_paid: bool
    fingerprint: str
    paid_version: int


def diff(before: Seen | None, now: Invoice) -> list[PaymentEvent]:
    """The events that explain the move from ``before`` to ``now``."""
    was_paid = before is not None and before.fully_paid
    paid_before = before.amount_paid if before else Decimal("0")
    events: list[PaymentEvent] = []
    if now.status is InvoiceStatus.VOID:
        if before is not None and before.status is not InvoiceStatus.VOID:
            events.append(PaymentEvent.VOIDED)
        return events
    receipted = before is not None and before.paid_version > 0
    if now.fully_paid and not was_paid:
        events.append(PaymentEvent.PAID)
    elif (was_paid and not now.fully_paid) or (receipted and now.amount_paid.amount < paid_before):
        # a second partial refund finds the invoice no longer fully paid: still a refund
        events.append(PaymentEvent.REFUNDED)
    elif not now.fully_paid and now.amount_paid.amount > paid_before:
        events.append(PaymentEvent.PARTIALLY_PAID)
    if was_paid and now.fully_paid and before is not None and now.content_fingerprint() != before.fingerprint:
        events.append(PaymentEvent.CHANGED_AFTER_PAID)
    return events
