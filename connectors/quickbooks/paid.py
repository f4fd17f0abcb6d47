"""QuickBooks read-back for reconciliation (connectors.base.LedgerReadBack): the sales
documents the ledger books (``docs.KINDS``: SalesReceipt, Invoice, RefundReceipt,
CreditMemo) as QuickBooks holds them now, read with the query language in pages.

Paging: ``STARTPOSITION n MAXRESULTS 1000``; 1000 is the most one answer holds
(python-quickbooks README, citing Intuit's "data queries" page
https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries).
A page shorter than that is the last one. Rows are ordered by Id so that a
document written meanwhile cannot shift the window over one already read.

The filter is ``TxnDate`` (the document's date, which the ledger sets to the
payment's day), a plain date the query language compares as such.

A deleted document no longer answers a query (it comes back only from CDC,
with ``status: Deleted``, for 30 days: vendor_facts §4), so the caller treats
a booking missing from the read as deleted. A voided SalesReceipt or Invoice
stays, with its amounts at zero and "Voided" in its PrivateNote (Intuit's
behaviour as QuickBooks users report it; docs/vendors.md, Unverified).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from pouracquit.common.money import round_cents
from pouracquit.connectors.base import LedgerBooking

from .api import Api, quote, select
from .docs import KINDS, MARKER, Kind, encode

PAGE_MAX = 1000  # MAXRESULTS ceiling, see the module docstring
_CREDIT_KINDS = ("RefundReceipt", "CreditMemo")


def marker_key(note: object) -> str:
    """The order key our PrivateNote marker carries ("" when the note is not ours)."""
    for word in str(note or "").split():
        if word.startswith(MARKER) and "#" not in word:
            return word[len(MARKER):]
    return ""


def booking(kind: Kind, row: dict[str, Any], home_currency: str) -> LedgerBooking:
    """One QuickBooks document as a LedgerBooking."""
    total = round_cents(Decimal(str(row.get("TotalAmt") or 0)))
    # an Invoice is paid up to what its Balance leaves; the other documents carry their money
    balance = round_cents(Decimal(str(row.get("Balance") or 0))) if kind == "Invoice" else Decimal("0")
    note = str(row.get("PrivateNote") or "")
    voided = total == 0 and "voided" in note.lower()
    return LedgerBooking(
        ref=encode(kind, str(row["Id"])),
        number=str(row.get("DocNumber") or ""),
        key=marker_key(note),
        kind="credit_note" if kind in _CREDIT_KINDS else "receipt",
        amount=total,
        paid=total - balance,
        currency=str((row.get("CurrencyRef") or {}).get("value") or home_currency),
        state="voided" if voided else "booked",
    )


def paid_state(api: Api, home_currency: Callable[[], str], since: date | None) -> Iterator[LedgerBooking]:
    """Every document of ``docs.KINDS`` dated ``since`` or later, 1000 per query."""
    where = f"TxnDate >= {quote(since.isoformat())}" if since else ""
    for kind in KINDS:
        start = 1
        while True:
            rows = api.query(f"{kind.lower()}.readback",
                             select(kind, where, f"ORDERBY Id STARTPOSITION {start} MAXRESULTS {PAGE_MAX}"))
            home = home_currency() if rows else ""
            for row in rows:
                yield booking(kind, row, home)
            if len(rows) < PAGE_MAX:
                break
            start += PAGE_MAX
