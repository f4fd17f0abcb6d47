"""What a CRM's own Xero sync leaves in the organisation (``sandbox.native_sync``):
an AUTHORISED sales invoice (Type ACCREC) under the CRM's number, for the contact
of the CRM's name (created with its e-mail address when new), one line per CRM
line at its net amount with the line's VAT as TaxAmount (as a sync copying the
CRM's figures sends it) and the first active revenue tax rate of its rate.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .rules import ACCOUNTS, validation

if TYPE_CHECKING:
    from .books import Books

# The revenue account a sync books services to: the demo's "Prestations de services".
_SALES = next(code for code, _, kind, _ in ACCOUNTS if kind == "REVENUE")


def push(books: Books, record: dict[str, Any]) -> dict[str, Any]:
    name = str(record["customer"]["name"]).strip()
    contact = next((c for c in books.contacts.values()
                    if c["ContactStatus"] == "ACTIVE" and c["Name"].lower() == name.lower()), None)
    if contact is None:
        contact = books.create_contact({"Name": name, "EmailAddress": record["customer"].get("email") or ""})
    lines = []
    for line in record["lines"]:
        rate = Decimal(str(line["vat_rate"]))
        tax_type = next((t["TaxType"] for t in books.tax_rates if t["Status"] == "ACTIVE"
                         and t["CanApplyToRevenue"] and t["EffectiveRate"] == rate), None)
        if tax_type is None:
            raise validation(f"no active revenue tax rate of {rate} %", record)
        lines.append({"Description": line["description"] or "-", "Quantity": 1, "UnitAmount": line["net"],
                      "AccountCode": _SALES, "TaxType": tax_type, "TaxAmount": line["tax"]})
    return books.create_invoice({
        "Type": "ACCREC", "Status": "AUTHORISED", "InvoiceNumber": record["number"],
        "Contact": {"ContactID": contact["ContactID"]}, "Date": record["issue_date"], "DueDate": record["due_date"],
        "CurrencyCode": record["currency"], "LineAmountTypes": "Exclusive", "LineItems": lines,
    }, unitdp=4)
