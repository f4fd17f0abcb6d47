"""QuickBooks side of ``match_existing = "by_number"`` (rules in ``ledger_match``):
the company's own Invoice whose DocNumber is the CRM invoice's number and
whose customer is the CRM party's.

An Invoice is looked up by ``DocNumber`` (a filterable Invoice field in the QBO
query language, as the ledger's own lookups use it); its ``CustomerRef`` names
the customer by Id (``value``) and, in QBO's answers, by DisplayName (``name``:
python-quickbooks ``objects/base.py`` ``Ref``; docs/vendors.md).
"""

from __future__ import annotations

from typing import Any

from pouracquit.connectors.base import ReceiptOrder
from pouracquit.connectors.ledger_match import ambiguous, foreign_customer, same_name

from .api import Api, quote, select
from .refs import Directory, display_name

LABEL = "QuickBooks"


def find_existing(api: Api, directory: Directory, order: ReceiptOrder) -> dict[str, Any] | None:
    """The Invoice to pay for ``order``; None when no Invoice carries its number. A number
    held only by another customer's invoice, or by two of this one's, is a stop."""
    number = order.invoice.number
    if not number:
        return None  # pouracquit numbered it: no ledger invoice can carry that number
    rows = [r for r in api.query("invoice.match", select("Invoice", f"DocNumber = {quote(number)}"))
            if r.get("DocNumber") == number]  # QBO compares strings without case
    if not rows:
        return None
    party, currency = order.invoice.customer, order.invoice.currency
    home = directory.references().home_currency
    ids = set(directory.party_ids(party, currency))
    names = (party.name, display_name(party, currency, home))
    ours = [r for r in rows if str((r.get("CustomerRef") or {}).get("value")) in ids
            or any(same_name(str((r.get("CustomerRef") or {}).get("name") or ""), n) for n in names)]
    if not ours:
        ref = rows[0].get("CustomerRef") or {}
        raise foreign_customer(LABEL, f"Invoice {rows[0]['Id']}", order,
                               str(ref.get("name") or f"customer Id {ref.get('value')}"))
    if len(ours) > 1:
        raise ambiguous(LABEL, order, [f"Invoice {r['Id']}" for r in ours])
    return ours[0]


def currency_of(row: dict[str, Any], home: str) -> str:
    """An Invoice's currency (a company without multicurrency may leave CurrencyRef out)."""
    return str((row.get("CurrencyRef") or {}).get("value") or home)
