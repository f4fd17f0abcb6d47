"""What a CRM's native sync (HubSpot's QuickBooks sync, Zoho Books, Breadwinner)
leaves in a ledger before pouracquit comes: the CRM's invoices, approved and
unpaid, under the CRM's numbers, for customers named as in the CRM.

Both ledger sandboxes take them under the seed key ``native_sync`` (a list of
the vendor-neutral records ``pushed`` makes) and write each through their own
rules, as the vendor's API would have taken it: QuickBooks an Invoice
(``quickbooks_sales.Sales.push``), Xero an AUTHORISED ACCREC invoice
(``xero_books.Books.push``). That is how a test or the demo shows
``match_existing = "by_number"`` at work::

    ledger_box.seed({"native_sync": [pushed(invoice) for invoice in crm_invoices]})
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pouracquit.common.model import Invoice
from pouracquit.connectors.xero.format import line_taxes

SEED_KEY = "native_sync"


def pushed(invoice: Invoice, *, skew: Decimal = Decimal(0)) -> dict[str, Any]:
    """``invoice`` as a native sync pushes it: each line by its net amount, VAT rate and VAT.
    ``skew`` is added to the first line's net, to show a ledger invoice that no longer
    agrees with the CRM."""
    # Per-line VAT that adds up, per rate, to the invoice's own (what a sync copying the
    # CRM's tax figures sends; Xero takes it, QuickBooks recomputes per rate anyway).
    taxes = line_taxes(invoice)
    lines = []
    for index, (line, tax) in enumerate(zip(invoice.lines, taxes, strict=True)):
        extra = skew if index == 0 else Decimal(0)
        lines.append({"description": line.description, "net": str(line.net + extra), "vat_rate": str(line.vat_rate),
                      "tax": str(tax + (extra * line.vat_rate / 100).quantize(Decimal("0.01")))})
    return {
        "number": invoice.number, "currency": invoice.currency,
        "customer": {"name": invoice.customer.name, "email": invoice.customer.email},
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": (invoice.due_date or invoice.issue_date).isoformat(),
        "lines": lines,
    }
