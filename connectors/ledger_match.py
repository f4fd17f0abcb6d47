"""Invoices already in the ledger: what QuickBooks and Xero share when
``match_existing = "by_number"``.

Companies often push their CRM invoices to the ledger already (HubSpot's
QuickBooks sync, Zoho Books, Breadwinner). Booking a sales receipt beside such
an invoice would count the revenue twice, so the ledger looks for the invoice
by its number first, pays it and attaches the facture acquittée there.

Whose invoice it is: the number alone is not enough (another sales channel, or
a person, may reuse a number), so the ledger's customer must be one the CRM
party resolves to by the rules the connector books with (e-mail address first,
then the name, see each connector's directory), or carry the party's name. The
CRM party's external id is no help: the native syncs keep their own mapping
and write nothing the ledger's API exposes for it. A number held by another
customer stops the receipt rather than booking beside it: a stop is seen and
fixed, a doubled revenue is not.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import structlog

from pouracquit.common.errors import PermanentError
from pouracquit.common.money import round_cents

from .base import ReceiptOrder

MatchExisting = Literal["off", "by_number"]
# What a receipt whose invoice is not in the ledger becomes: booked as the ledger's
# mode says (the native sync skips some invoices, e.g. older than its start), or
# stopped until someone pushes the invoice and retries (``pouracquit receipts retry``).
Unmatched = Literal["book", "stop"]
MATCH_HELP = ("off: book as mode says; by_number: pay the ledger's own invoice carrying the CRM invoice's number "
              "and customer (pushed there by a native sync) instead of booking another document")
UNMATCHED_HELP = ("with match_existing = by_number, an invoice the ledger does not hold: book it as mode says, "
                  "or stop the receipt until the invoice is in the ledger")
log = structlog.get_logger("pouracquit.ledger_match")


def same_name(ledger_name: str, party_name: str) -> bool:
    """Names compared as people read them: case and runs of spaces aside."""
    return " ".join(ledger_name.split()).casefold() == " ".join(party_name.split()).casefold()


def check_total(vendor: str, doc: str, order: ReceiptOrder, total: object, currency: str) -> None:
    """The ledger's invoice must total what the receipt prints, in the same currency."""
    booked = round_cents(Decimal(str(total)))
    expected = order.invoice.gross_total.rounded()
    if booked != expected.amount or currency != expected.currency:
        raise PermanentError(
            f"{vendor} invoice {order.number} ({doc}) totals {booked} {currency} but the CRM invoice totals "
            f"{expected}: correct whichever is wrong (the CRM invoice, or the invoice in {vendor}), then retry "
            f"the receipt"
        )


def foreign_customer(vendor: str, doc: str, order: ReceiptOrder, held_by: str) -> PermanentError:
    """The number is used in the ledger by an invoice of another customer."""
    return PermanentError(
        f"{vendor} invoice {order.number} ({doc}) is for {held_by!r}, not the CRM's {order.invoice.customer.name!r}: "
        f"pouracquit books nothing beside it; if it is the same buyer, give the {vendor} customer the CRM's name "
        f"or e-mail address, then retry the receipt"
    )


def ambiguous(vendor: str, order: ReceiptOrder, docs: list[str]) -> PermanentError:
    return PermanentError(f"{vendor} holds {len(docs)} invoices numbered {order.number} for this customer "
                          f"({', '.join(docs)}): void the extra ones, then retry the receipt")


def unmatched(vendor: str, order: ReceiptOrder) -> PermanentError:
    """``unmatched = "stop"`` and the ledger has no invoice with the number."""
    return PermanentError(
        f"{vendor} has no invoice numbered {order.number} (match_existing = by_number, unmatched = stop): push it "
        f"from the CRM to {vendor}, then retry the receipt; or set unmatched = \"book\" to book such receipts"
    )


def unsettled(vendor: str, order: ReceiptOrder, due: Decimal, to_pay: Decimal) -> PermanentError:
    """Someone else paid part of the invoice: the payments left do not settle it."""
    return PermanentError(
        f"{vendor} invoice {order.number} has {due} still due but the CRM payments not yet booked there come to "
        f"{to_pay} (someone paid part of it in {vendor}): settle it by hand, then retry the receipt"
    )


def already_paid(vendor: str, order: ReceiptOrder, doc: str) -> None:
    """Paid in the ledger before pouracquit came (by hand, or by the native sync): nothing to book."""
    log.info("ledger invoice already paid, no payment booked", vendor=vendor, number=order.number, ledger_id=doc)
