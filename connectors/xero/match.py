"""Xero side of ``match_existing = "by_number"`` (rules in ``ledger_match``): the
organisation's own sales invoice (Type ACCREC) whose InvoiceNumber is the CRM
invoice's number and whose contact is the CRM party's.

Looked up with a ``where`` filter on ``Type`` and ``InvoiceNumber``
(spec#/paths/~1Invoices/get: "Filter by an any element"); ACCREC numbers are
unique in an organisation, so at most one live invoice answers. Its
``Contact`` carries ContactID and Name (spec#/components/schemas/Invoice).
A payment "must be less than or equal to the outstanding amount owing on the
invoice" (spec#/components/schemas/Payment/properties/Amount) and goes to an
approved invoice only (the sandbox's rule; unverified, docs/vendors.md), so a
DRAFT or SUBMITTED one stops the receipt with what to do.
"""

from __future__ import annotations

from typing import Any

from pouracquit.common.errors import PermanentError
from pouracquit.connectors.base import ReceiptOrder
from pouracquit.connectors.ledger_match import ambiguous, foreign_customer, same_name

from .directory import Directory
from .format import literal
from .session import XeroApi

LABEL = "Xero"
# In bank_transaction mode the ids record_receipt returns are bank transactions; a matched
# invoice's id carries this prefix so ``attach`` puts the PDF on the invoice.
PREFIX = "invoice:"
_PAYABLE = ("AUTHORISED", "PAID")


def ref_of(invoice_id: str) -> str:
    return PREFIX + invoice_id


def invoice_id(ref: str) -> str | None:
    return ref[len(PREFIX):] if ref.startswith(PREFIX) else None


def find_existing(api: XeroApi, directory: Directory, order: ReceiptOrder) -> dict[str, Any] | None:
    """The ACCREC invoice to pay for ``order``; None when none carries its number. A number
    held by another contact's invoice, or an invoice not approved yet, is a stop."""
    number = order.invoice.number
    if not number:
        return None  # pouracquit numbered it: no ledger invoice can carry that number
    where = f"Type==\"ACCREC\" AND InvoiceNumber=={literal(number)}"
    answer = api.request("invoice.match", "GET", "/Invoices", params={"where": where})
    rows = [r for r in answer.get("Invoices") or [] if r.get("Status") not in ("DELETED", "VOIDED")]
    if not rows:
        return None
    party = order.invoice.customer
    ids = set(directory.party_ids(party))
    ours = [r for r in rows if (r.get("Contact") or {}).get("ContactID") in ids
            or same_name(str((r.get("Contact") or {}).get("Name") or ""), party.name)]
    if not ours:
        raise foreign_customer(LABEL, f"invoice {rows[0]['InvoiceID']}", order,
                               str((rows[0].get("Contact") or {}).get("Name") or "another contact"))
    if len(ours) > 1:
        raise ambiguous(LABEL, order, [str(r["InvoiceID"]) for r in ours])
    row = ours[0]
    if row.get("Status") not in _PAYABLE:
        raise PermanentError(f"{LABEL} invoice {number} is {row.get('Status')}: approve it in Xero (payments go "
                             f"only to approved invoices), then retry the receipt")
    return row
