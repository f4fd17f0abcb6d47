"""Sales and purchase credit notes in the Xero sandbox, and the document a
refund payment names.

Shapes from spec#/components/schemas/CreditNote (``sandbox/xero/spec``):
``Type`` ACCRECCREDIT (a customer's credit) or ACCPAYCREDIT, ``CreditNoteNumber``
unique for ACCRECCREDIT, ``RemainingCredit`` what is left to allocate or
refund; a cash refund is a Payment naming the credit note (``Payments`` under
the note, PaymentType ARCREDITPAYMENT) and a fully refunded note is PAID.
Line items follow the invoice rules, except discounts: "ACCPAY invoices and
credit notes in Xero do not support discounts"
(spec#/components/schemas/LineItem/properties/DiscountRate).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Any

from .rules import day, msdate, stamp, validation

if TYPE_CHECKING:
    from .books import Books

CREDIT_TYPES = ("ACCRECCREDIT", "ACCPAYCREDIT")


def create_credit_note(books: Books, body: dict[str, Any], unitdp: int = 2) -> dict[str, Any]:
    kind, status = body.get("Type"), body.get("Status") or "DRAFT"
    if kind not in CREDIT_TYPES:
        raise validation("Credit Note Type must be ACCRECCREDIT or ACCPAYCREDIT", body)
    if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
        raise validation(f"Credit Note Status {status} cannot be set on a new credit note", body)
    currency, rate = books.currency(body)
    number = str(body.get("CreditNoteNumber") or f"CN-{len(books.credit_notes) + 1:04d}")
    if kind == "ACCRECCREDIT" and any(c["Type"] == kind and c["CreditNoteNumber"] == number
                                      and c["Status"] not in ("DELETED", "VOIDED")
                                      for c in books.credit_notes.values()):
        raise validation("Credit Note # must be unique.", body)
    if any(item.get("DiscountRate") or item.get("DiscountAmount") for item in body.get("LineItems") or []):
        raise validation("Discounts are not supported on credit notes", body)
    contact = books.contact(body.get("Contact") or {}, body)
    lines, net, tax = books.lines(body, unitdp)
    issued = day(body.get("Date") or date.today().isoformat(), "Date", body)
    row = {
        "Type": kind, "CreditNoteID": str(uuid.uuid4()), "CreditNoteNumber": number,
        "Reference": str(body.get("Reference") or ""), "Contact": books.contact_ref(contact),
        "Date": msdate(issued), "DateString": f"{issued.isoformat()}T00:00:00", "Status": status,
        "LineAmountTypes": body.get("LineAmountTypes") or "Exclusive", "LineItems": lines,
        "SubTotal": net, "TotalTax": tax, "Total": net + tax, "RemainingCredit": net + tax,
        "CurrencyCode": currency, "CurrencyRate": rate, "Allocations": [], "Payments": [],
        "HasAttachments": False, "HasErrors": False, "SentToContact": False, "UpdatedDateUTC": stamp(),
        # Not part of the CreditNote schema: the API answers leave it out (see XeroSandbox).
        "Attachments": [],
    }
    books.credit_notes[row["CreditNoteID"]] = row
    return row


def credit_note_for_payment(books: Books, body: dict[str, Any]) -> dict[str, Any]:
    """The credit note a refund payment names, by ``CreditNote.CreditNoteID`` or number."""
    ref = body.get("CreditNote") or {}
    wanted = ref.get("CreditNoteNumber") or body.get("CreditNoteNumber")
    found = books.credit_notes.get(str(ref.get("CreditNoteID") or "")) or next(
        (c for c in books.credit_notes.values() if wanted and c["CreditNoteNumber"] == wanted), None)
    if found is None:
        raise validation("Credit note could not be found", body)
    return found
