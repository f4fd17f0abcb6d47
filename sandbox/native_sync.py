"""What a CRM's native sync (HubSpot's QuickBooks sync, Zoho Books, Breadwinner)
leaves in a ledger before pouracquit comes: the CRM's invoices, approved and
unpaid, under the CRM's numbers, for customers named as in the CRM.

Both ledger sandboxes take them under the seed key ``native_sync`` (a list of
the vendor-neutral records ``pushed`` makes) and write each through their own
rules, as the vendor's API would have taken it: QuickBooks an Invoice
(``sandbox/quickbooks/sales.py`` ``Sales.push``), Xero an AUTHORISED ACCREC invoice
(``sandbox/xero/books.py`` ``Books.push``). That is how a test or the demo shows
``match_existing = "by_number"`` at work::

    ledger_box.seed({"native_sync": [pushed(invoice) for invoice in crm_invoices]})
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pouracquit.common.model import Invoice
from pouracquit.common.money import CENT, round_cents

SEED_KEY = "native_sync"


def line_taxes(invoice: Invoice) -> list[Decimal]:
    """Each line's VAT as a sync copying the CRM's figures sends it: the ledger's own per-line
    tax (Xero: "The tax amount is auto calculated as a percentage of the line amount ... This value
    can be overriden if the calculated <TaxAmount> is not correct", sandbox/xero/spec/xero_accounting.yaml
    #/components/schemas/LineItem/properties/TaxAmount), moved a cent at a time on the largest lines of
    a rate until the rate's lines carry the CRM's VAT for it (rounded once per rate)."""
    taxes = [round_cents(line.net * line.vat_rate / 100) for line in invoice.lines]
    for bucket in invoice.vat_breakdown():
        same_rate = sorted((i for i, line in enumerate(invoice.lines)
                            if (line.vat_rate.normalize(), line.vat_exemption) == (bucket.rate, bucket.exemption)),
                           key=lambda i: -abs(invoice.lines[i].net))
        off = bucket.tax - sum((taxes[i] for i in same_rate), Decimal(0))
        for nth in range(int(abs(off) / CENT)):  # at most half a cent a line: one cent a line at most
            taxes[same_rate[nth % len(same_rate)]] += CENT.copy_sign(off)
    return taxes


def pushed(invoice: Invoice, *, skew: Decimal = Decimal(0)) -> dict[str, Any]:
    """``invoice`` as a native sync pushes it: each line by its net amount, VAT rate and VAT.
    ``skew`` is added to the first line's net, to show a ledger invoice that no longer
    agrees with the CRM."""
    # QuickBooks recomputes the tax per rate anyway; Xero takes each line's.
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
