"""Xero read-back for reconciliation (connectors.base.LedgerReadBack): the sales
documents the ledger books, as Xero holds them now, page by page.

* ``GET /Invoices?page=n`` (ACCREC only, by ``where``): "Up to 100 invoices will be
  returned in a single API call" per page (spec#/paths/~1Invoices/get, parameter
  ``page``); the answer's ``pagination.pageCount`` says when to stop, and a page
  shorter than 100 ends the read on an answer without it.
* ``GET /CreditNotes?page=n`` (ACCRECCREDIT) and ``GET /BankTransactions?page=n``
  (RECEIVE, ``mode = "bank_transaction"``), paged the same way.

Xero keeps deleted and voided documents with their Status (spec#/components/schemas/
Invoice/properties/Status: DRAFT, SUBMITTED, DELETED, AUTHORISED, PAID, VOIDED; a
BankTransaction is AUTHORISED or DELETED), so both come back as such.
``AmountPaid`` is what Xero counts as received (spec: "Sum of payments received
for invoice"). ``since`` is compared with the document's ``Date`` on our side: the
``If-Modified-Since`` header filters on the last change, not on the date booked.

Spec references (``spec#/...``) are to ``sandbox/xero/spec/xero_accounting.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from pouracquit.common.money import round_cents
from pouracquit.connectors.base import LedgerBooking

from .credit import ref_of as credit_ref
from .format import HOME_CURRENCY
from .payments import _xero_day as xero_day
from .session import XeroApi

PAGE_SIZE = 100  # spec#/paths/~1Invoices/get parameter page: "Up to 100 invoices"
_STATE = {"VOIDED": "voided", "DELETED": "deleted"}


def _money(value: Any) -> Decimal:
    return round_cents(Decimal(str(value or 0)))


def _pages(api: XeroApi, op: str, path: str, key: str, where: str) -> Iterator[dict[str, Any]]:
    page = 1
    while True:
        answer = api.request(op, "GET", path, params={"where": where, "page": page})
        rows = list(answer.get(key) or [])
        yield from rows
        count = (answer.get("pagination") or {}).get("pageCount")
        if len(rows) < PAGE_SIZE or (count is not None and page >= int(count)):
            return
        page += 1


def _dated(row: dict[str, Any], since: date | None) -> bool:
    day = xero_day(row.get("Date"))
    return since is None or day is None or day >= since


def paid_state(api: XeroApi, since: date | None, *, bank_mode: bool) -> Iterator[LedgerBooking]:
    """Every ACCREC invoice, ACCRECCREDIT credit note and (in bank mode) RECEIVE bank
    transaction dated ``since`` or later."""
    for row in _pages(api, "invoice.readback", "/Invoices", "Invoices", 'Type=="ACCREC"'):
        if _dated(row, since):
            total = _money(row.get("Total"))
            yield LedgerBooking(
                ref=str(row["InvoiceID"]), number=str(row.get("InvoiceNumber") or ""),
                key=str(row.get("Reference") or ""), kind="receipt", amount=total,
                paid=_money(row.get("AmountPaid")), currency=str(row.get("CurrencyCode") or HOME_CURRENCY),
                state=_STATE.get(str(row.get("Status")), "booked"))
    for row in _pages(api, "creditnote.readback", "/CreditNotes", "CreditNotes", 'Type=="ACCRECCREDIT"'):
        if _dated(row, since):
            words = str(row.get("Reference") or "").split()
            yield LedgerBooking(
                ref=credit_ref(str(row["CreditNoteID"])), number=str(row.get("CreditNoteNumber") or ""),
                key=words[-1] if words else "", kind="credit_note", amount=_money(row.get("Total")),
                paid=_money(row.get("Total")) - _money(row.get("RemainingCredit")),
                currency=str(row.get("CurrencyCode") or HOME_CURRENCY),
                state=_STATE.get(str(row.get("Status")), "booked"))
    if not bank_mode:
        return
    for row in _pages(api, "banktransaction.readback", "/BankTransactions", "BankTransactions", 'Type=="RECEIVE"'):
        if _dated(row, since):
            words = str(row.get("Reference") or "").split()
            total = _money(row.get("Total"))
            yield LedgerBooking(
                ref=str(row["BankTransactionID"]), number="", key=words[0] if words else "", kind="receipt",
                amount=total, paid=total, currency=str(row.get("CurrencyCode") or HOME_CURRENCY),
                state=_STATE.get(str(row.get("Status")), "booked"))
