"""What a credit note (facture d'avoir) credits, as an invoice of its own.

A refund or a cancellation after the receipt is never an edit of the receipt:
it is a new document with its own number that refers to the original. Its
content is derived from the receipt as it was issued (the stored invoice),
not from the CRM's current record, which may have changed since.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from pouracquit.common.errors import PermanentError, RetryableError
from pouracquit.common.model import CreditReference, Invoice, InvoiceStatus, Line, Payment, VatBucket
from pouracquit.common.money import CENT, Money, round_cents
from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt

PARIS = ZoneInfo("Europe/Paris")
_PARTIAL = {
    "fr": "Remboursement partiel, TVA {rate} %",
    "en": "Partial refund, VAT {rate} %",
}


def issue_date(receipt: Receipt, invoice: Invoice) -> date:
    """The document's issue date (BT-2): the CRM invoice's own date when the CRM
    numbered it (the facture acquittée is that invoice, stamped paid); the day
    pouracquit took the payment in when pouracquit numbers it, credit notes
    always."""
    if receipt.kind == "receipt" and invoice.number:
        return invoice.issue_date
    return receipt.created_at.astimezone(PARIS).date()


def original_of(store: Store, receipt: Receipt) -> Receipt:
    """The receipt a credit note credits."""
    assert receipt.original_receipt_id is not None
    original = store.receipt(receipt.original_receipt_id)
    if original is None:
        raise PermanentError(f"the receipt this credit note credits ({receipt.original_receipt_id}) is gone")
    return original


def credit_reference(store: Store, receipt: Receipt) -> CreditReference:
    """The invoice a credit note credits, as its receipt printed it; the credit
    note waits (RetryableError) while that receipt is not numbered yet."""
    original = original_of(store, receipt)
    if original.number is None:
        raise RetryableError(f"waiting for receipt {original.id}, which this credit note credits, to be numbered")
    stated = Invoice.model_validate_json(original.invoice_json)
    reason = json.loads(receipt.credits_json or "{}").get("reason", "refund")
    return CreditReference(number=original.number, issue_date=issue_date(original, stated), reason=reason)


def credit_invoice(
    original: Invoice, amount: Decimal, on: datetime, *, language: Literal["fr", "en"] = "fr"
) -> Invoice:
    """The credited part of ``original`` (VAT included ``amount``) as an invoice
    paid back on ``on``: the original lines when all of it is credited, else
    one line per VAT rate, the amount shared in proportion to each rate's total.

    A partial amount that no net base can reach exactly at its rate (VAT is
    rounded per rate, BR-CO-17) comes out at the nearest cent.
    """
    gross = original.gross_total.amount
    if not Decimal("0") < amount <= gross:
        raise ValueError(f"a credit of {amount} does not fit an invoice of {gross}")
    lines = original.lines if amount == gross else _shared_lines(original, amount, language)
    last = original.last_payment
    credited = Invoice.model_validate({
        **original.model_dump(exclude={"lines", "payments", "amount_paid", "status", "number", "due_date",
                                       "issue_date", "supply_date"}),
        "number": "",
        "issue_date": on.astimezone(PARIS).date(),
        "supply_date": original.supply_date or original.issue_date,
        "lines": [line.model_dump() for line in lines],
        "status": InvoiceStatus.PAID,
        "amount_paid": Money(amount=Decimal("0"), currency=original.currency),
    })
    total = credited.gross_total
    refund = Payment(amount=total, paid_at=on, method=last.method if last else "other", reference="")
    return credited.model_copy(update={"payments": (refund,), "amount_paid": total})


def _shared_lines(original: Invoice, amount: Decimal, language: str) -> list[Line]:
    buckets = original.vat_breakdown()
    gross = original.gross_total.amount
    lines: list[Line] = []
    left = amount
    for i, bucket in enumerate(buckets):
        share = left if i == len(buckets) - 1 else round_cents(amount * (bucket.base + bucket.tax) / gross)
        left -= share
        if share == 0:
            continue
        kind = next((ln.kind for ln in original.lines
                     if ln.vat_rate.normalize() == bucket.rate and ln.vat_exemption == bucket.exemption), "services")
        lines.append(Line(
            description=_PARTIAL.get(language, _PARTIAL["fr"]).format(rate=f"{bucket.rate.normalize():f}"),
            quantity=Decimal("1"), unit_price=_net_for(share, bucket), vat_rate=bucket.rate,
            vat_exemption=bucket.exemption, kind=kind,
        ))
    return lines


def _net_for(share: Decimal, bucket: VatBucket) -> Decimal:
    """The net base whose total with its VAT is ``share``, or the nearest one."""
    guess = round_cents(share / (1 + bucket.rate / 100))
    candidates = [guess + k * CENT for k in (0, -1, 1, -2, 2)]
    return min(candidates, key=lambda net: abs(net + round_cents(net * bucket.rate / 100) - share))
