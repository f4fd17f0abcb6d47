"""Credit notes (factures d'avoir) in Xero: a sales credit note (Type
ACCRECCREDIT, AUTHORISED) numbered as pouracquit numbered it, its Reference
naming the credited invoice; for a refund, the money returned as a Payment
against the credit note (Xero shows it PAID once all of it went back).

Why a Payment: Xero records a cash refund of a credit note as a payment
naming it (spec#/components/schemas/Payment: ``CreditNote``, PaymentType
``ARCREDITPAYMENT``; spec#/paths/~1CreditNotes/get example: a note's
``Payments`` and ``RemainingCredit``). The same is used in bank-transaction
mode rather than a SPEND BankTransaction: a credit note keeps its own number
(CreditNoteNumber, unique per organisation) and tax treatment in Xero's
credit-note reports, and a cancellation, which returns no money, cannot be
a bank transaction at all.

Exactly once, as for receipts: ``Idempotency-Key`` on both writes
(``<key>:creditnote``, ``<key>:refund``), a lookup by CreditNoteNumber
before any create that may repeat an earlier attempt, ownership checked by
the receipt key at the end of the Reference, totals checked both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from pouracquit.common.errors import BadRecord, PermanentError
from pouracquit.common.money import round_cents
from pouracquit.connectors.base import ReceiptOrder

from .directory import Directory
from .format import BOOKING_TZ, NUMBER_MAX, REFERENCE_MAX, amount, booking_day, check_booked, literal
from .payments import payment_text
from .session import DuplicateNumber, XeroApi

# The id record_receipt returns for a credit note: the pipeline hands it back to ``attach``,
# which must know the document's kind (receipts keep their bare Xero ids).
PREFIX = "creditnote:"


def ref_of(credit_note_id: str) -> str:
    return PREFIX + credit_note_id


def credit_note_id(ref: str) -> str | None:
    return ref[len(PREFIX):] if ref.startswith(PREFIX) else None


class CreditNotes:
    """Books the credit-note orders of one ledger."""

    def __init__(self, api: XeroApi, directory: Directory, mapping: Mapping[str, Any],
                 currency_fields: Callable[[ReceiptOrder], dict[str, Any]]) -> None:
        self.api = api
        self.directory = directory
        self.mapping = mapping
        self.currency_fields = currency_fields

    @staticmethod
    def check(order: ReceiptOrder) -> None:
        number = order.number
        if not number or len(number) > NUMBER_MAX or '"' in number or "\\" in number:
            raise BadRecord(f"credit note number {number!r} cannot be a Xero CreditNoteNumber (1 to {NUMBER_MAX} "
                            f"characters, no double quote or backslash: it is looked up by it)")
        if order.credits and order.credits.reason == "refund":
            payment = order.invoice.last_payment
            if payment is None:
                raise BadRecord(f"credit note {number} refunds money but has no payment: the refund needs its date")
            if not 0 < payment.amount.rounded().amount <= order.invoice.gross_total.rounded().amount:
                raise BadRecord(f"credit note {number} refunds {payment.amount}, which is not between nothing and "
                                f"its total {order.invoice.gross_total}")

    @staticmethod
    def _refunded(row: Mapping[str, Any]) -> Decimal:
        return sum((Decimal(str(p.get("Amount") or 0)) for p in row.get("Payments") or []), Decimal(0))

    @staticmethod
    def _to_refund(order: ReceiptOrder) -> Decimal:
        """The money returned: the credit note's payment (check() bounds it by the note's total)."""
        payment = order.invoice.last_payment
        assert payment is not None  # check()
        return payment.amount.rounded().amount

    def _settled(self, order: ReceiptOrder, row: Mapping[str, Any]) -> bool:
        """A refund is booked once the money returned is paid back; a cancellation once approved."""
        if order.credits and order.credits.reason == "refund":
            return self._refunded(row) == self._to_refund(order)
        return True

    def find(self, order: ReceiptOrder) -> str | None:
        row = self._lookup(order)
        return ref_of(str(row["CreditNoteID"])) if row is not None and self._settled(order, row) else None

    def _lookup(self, order: ReceiptOrder) -> dict[str, Any] | None:
        """Ours by number; a note with this number that another receipt (or a person) made is refused."""
        self.check(order)
        where = f'Type=="ACCRECCREDIT" AND CreditNoteNumber=={literal(order.number)}'
        answer = self.api.request("creditnote.find", "GET", "/CreditNotes", params={"where": where})
        rows = [r for r in answer.get("CreditNotes") or [] if r.get("Status") not in ("DELETED", "VOIDED")]
        if not rows:
            return None
        if not str(rows[0].get("Reference") or "").endswith(order.key):
            raise PermanentError(f"CreditNoteNumber {order.number} is already used in Xero by a credit note "
                                 f"pouracquit did not book for this receipt (its Reference does not end with "
                                 f"{order.key})")
        return rows[0]

    def _date(self, order: ReceiptOrder) -> date:
        """The credit note's date: the refund's day, or for a cancellation without one the day
        the CRM recorded it."""
        payment = order.invoice.last_payment
        if payment is not None:
            return booking_day(payment)
        return order.invoice.modified_at.astimezone(BOOKING_TZ).date()

    def body(self, order: ReceiptOrder) -> dict[str, Any]:
        """spec#/components/schemas/CreditNote for ``order``."""
        original = order.credits
        assert original is not None
        cause = "remboursement" if original.reason == "refund" else "annulation"
        reference = (f"Avoir ({cause}) sur facture {original.number} du {original.issue_date:%d/%m/%Y}"
                     [:REFERENCE_MAX - len(order.key) - 1])
        return {
            "Type": "ACCRECCREDIT", "Status": "AUTHORISED", "CreditNoteNumber": order.number,
            # the receipt key ends it: the lookup by number tells our note from a namesake by it
            "Reference": f"{reference} {order.key}",
            "Contact": {"ContactID": self.directory.party_id(order.invoice.customer)},
            "Date": self._date(order).isoformat(), "LineAmountTypes": "Exclusive",
            **self.currency_fields(order),
            "LineItems": self.directory.line_items(order.invoice, discounts=False),
        }

    def record(self, order: ReceiptOrder, may_exist: bool) -> str:
        self.check(order)
        row = self._lookup(order) if may_exist else None
        if row is None:
            body = self.body(order)
            try:
                answer = self.api.request("creditnote.create", "PUT", "/CreditNotes", json={"CreditNotes": [body]},
                                          params={"unitdp": 4}, idempotency_key=f"{order.key}:creditnote")
                row = answer["CreditNotes"][0]
            except DuplicateNumber:
                row = self._lookup(order)
                if row is None:
                    raise
        check_booked("CreditNote", order, row)
        original = order.credits
        assert original is not None
        remaining = Decimal(str(row.get("RemainingCredit") or 0))
        if original.reason == "refund" and not self._settled(order, row):
            if self._refunded(row) != 0 or remaining != round_cents(Decimal(str(row.get("Total")))):
                # allocated to an invoice or refunded in part by someone else: the money is not ours to move
                raise PermanentError(f"Xero credit note {order.number} was allocated or refunded by someone else "
                                     f"({remaining} left of {row.get('Total')}): refund it by hand")
            self._refund(order, str(row["CreditNoteID"]), self._to_refund(order))
        return ref_of(str(row["CreditNoteID"]))

    def _refund(self, order: ReceiptOrder, credit_note_id: str, to_refund: Decimal) -> None:
        payment = order.invoice.last_payment
        assert payment is not None  # check()
        body = {"CreditNote": {"CreditNoteID": credit_note_id},
                "Account": {"Code": self.directory.references().bank_account},
                "Date": booking_day(payment).isoformat(), "Amount": amount(to_refund),
                "Reference": payment_text(self.mapping, payment, order.number)}
        answer = self.api.request("refund.create", "PUT", "/Payments", json={"Payments": [body]},
                                  idempotency_key=f"{order.key}:refund")
        paid = Decimal(str(answer["Payments"][0].get("Amount")))
        if paid != to_refund:
            raise PermanentError(f"Xero booked a refund of {paid} for credit note {order.number}, expected "
                                 f"{to_refund}")
