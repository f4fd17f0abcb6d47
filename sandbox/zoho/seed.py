"""Turns the vendor-neutral demo invoices (and raw records) into Zoho records.

Zoho Invoices have no "amount paid" and no "Paid" status out of the box: the
org is assumed to have added the picklist values ``Paid`` and ``Partially
Paid`` to ``Status`` and the custom fields that mappings/zoho.toml names
(``Amount_Paid``, ``Payment_Date``, ``Payment_Method``, ``Payment_Reference``,
``Pouracquit_Payments``, ``Supply_Date`` on invoices; ``SIREN`` and
``VAT_Number`` on accounts; ``Line_Kind`` and ``VAT_Exemption`` on line items).
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pouracquit.sandbox.demo_data import demo_invoices, invoice_total

from .store import MODULES, ZohoStore

_STATUS = {"paid": "Paid", "partially_paid": "Partially Paid", "open": "Delivered", "voided": "Cancelled",
           "draft": "Created"}
CENT = Decimal("0.01")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _exchange_rate(demo: dict[str, Any]) -> float | None:
    # Zoho's Exchange_Rate: units of the record currency for one unit of the home currency
    # (EUR here), 1 on home-currency records. A foreign record without one stands for an org
    # whose rate is not kept on the record: pouracquit then takes the ECB rate of the day.
    if demo["currency"] == "EUR":
        return 1.0
    return float(demo["exchange_rate"]) if demo["exchange_rate"] else None


def _lookup(record: dict[str, Any], name_field: str) -> dict[str, str]:
    return {"name": str(record[name_field]), "id": record["id"]}


Pair = tuple[dict[str, Any], dict[str, Any] | None]


def _customer(store: ZohoStore, customer: dict[str, Any], cache: dict[str, Pair], at: int) -> Pair:
    """(contact, account or None) for a demo customer, created once."""
    key = customer["email"]
    if key in cache:
        return cache[key]
    address = customer["address"]
    account = None
    if customer["kind"] == "company":
        account = store.create("Accounts", {
            "Account_Name": customer["name"], "Billing_Street": address["line1"],
            "Billing_Code": address["postal_code"], "Billing_City": address["city"],
            "Billing_Country": address["country"],
            "SIREN": customer["siren"], "VAT_Number": customer["vat_number"]}, at=at)
        fields = {"First_Name": "Service", "Last_Name": "Comptabilité", "Email": key,
                  "Account_Name": _lookup(account, "Account_Name")}
    else:
        first, _, last = customer["name"].partition(" ")
        fields = {"First_Name": first, "Last_Name": last, "Email": key, "Mailing_Street": address["line1"],
                  "Mailing_Zip": address["postal_code"], "Mailing_City": address["city"],
                  "Mailing_Country": address["country"]}
    contact = store.create("Contacts", {**fields, "Full_Name": f"{fields['First_Name']} {fields['Last_Name']}"}, at=at)
    cache[key] = (contact, account)
    return cache[key]


def _line(store: ZohoStore, line: dict[str, Any], products: dict[str, dict[str, Any]], at: int) -> dict[str, Any]:
    if line["sku"] not in products:
        products[line["sku"]] = store.create("Products", {"Product_Name": line["name"], "Product_Code": line["sku"]},
                                             at=at)
    net = _cents(Decimal(line["quantity"]) * Decimal(line["unit_price"]))
    rate = Decimal(line["vat_rate"])
    tax = _cents(net * rate / 100)
    item = {"id": store.new_id(), "Product_Name": _lookup(products[line["sku"]], "Product_Name"),
            "Product_Code": line["sku"], "Description": line["name"], "Quantity": float(line["quantity"]),
            "List_Price": float(line["unit_price"]), "Total": float(net), "Discount": 0.0,
            "Total_After_Discount": float(net), "Tax": float(tax), "Net_Total": float(net + tax),
            "Line_Tax": [{"percentage": float(rate), "name": f"TVA {line['vat_rate']}", "id": f"tax-{line['vat_rate']}",
                          "value": float(tax)}],
            "Line_Kind": line["kind"], "VAT_Exemption": line.get("vat_exemption")}
    return item


def seed_demo(store: ZohoStore, count: int = 60, seed: int = 7, at: int | None = None) -> dict[str, int]:
    """Create the demo set, every record stamped with one ``Modified_Time``
    second (``at``, default now), as a bulk import into Zoho would be."""
    second = at if at is not None else store.tick()
    before = {m: len(store.records[m]) for m in MODULES}
    customers: dict[str, Pair] = {}
    products: dict[str, dict[str, Any]] = {}
    deals: dict[str, dict[str, Any]] = {}
    for demo in demo_invoices(count, seed):
        contact, account = _customer(store, demo["customer"], customers, second)
        deal = None
        if demo["deal"]:
            key = f"{demo['deal']}|{demo['customer']['email']}"
            if key not in deals:
                deals[key] = store.create("Deals", {
                    "Deal_Name": f"{demo['deal']} — {demo['customer']['name']}", "Stage": "Closed Won",
                    "Account_Name": _lookup(account, "Account_Name") if account else None}, at=second)
            deal = deals[key]
        items = [_line(store, line, products, second) for line in demo["lines"]]
        sub_total = sum((Decimal(str(i["Total"])) for i in items), Decimal("0"))
        tax = sum((Decimal(str(i["Tax"])) for i in items), Decimal("0"))
        paid = sum((Decimal(p["amount"]) for p in demo["payments"]), Decimal("0"))
        last = demo["payments"][-1] if demo["payments"] else None
        address = demo["customer"]["address"]
        store.create("Invoices", {
            "Subject": f"Facture {demo['number'] or demo['id']}", "Invoice_Number": demo["number"] or None,
            "Status": _STATUS[demo["status"]], "Currency": demo["currency"],
            "Exchange_Rate": _exchange_rate(demo),
            "Invoice_Date": demo["issue_date"], "Due_Date": demo["due_date"], "Supply_Date": demo["supply_date"],
            "Account_Name": _lookup(account, "Account_Name") if account else None,
            "Contact_Name": _lookup(contact, "Full_Name"),
            "Deal_Name": _lookup(deal, "Deal_Name") if deal else None,
            "Billing_Street": address["line1"], "Billing_Code": address["postal_code"],
            "Billing_City": address["city"], "Billing_Country": address["country"],
            "Invoiced_Items": items, "Sub_Total": float(sub_total), "Tax": float(tax), "Discount": 0.0,
            "Adjustment": 0.0, "Grand_Total": float(invoice_total(demo["lines"])),
            "Amount_Paid": float(paid) if demo["payments"] else None,
            "Payment_Date": last["date"] if last else None, "Payment_Method": last["method"] if last else None,
            "Payment_Reference": last["reference"] if last else None,
            "Pouracquit_Payments": json.dumps(demo["payments"]) if len(demo["payments"]) > 1 else None,
            "Pouracquit_Demo_Id": demo["id"],
        }, at=second)
    return {m: len(store.records[m]) - before[m] for m in MODULES}


def seed_raw(store: ZohoStore, records: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """``{"Invoices": [{"id"?, "at"?, ...fields}]}``: records stored as given
    (lookups as ``{"name", "id"}``); ``at`` pins the ``Modified_Time`` second."""
    counts: dict[str, int] = {}
    for module, items in records.items():
        if module not in MODULES:
            raise ValueError(f"unknown module {module!r}")
        for raw in items:
            fields = {k: v for k, v in raw.items() if k not in ("id", "at")}
            store.create(module, fields, at=raw.get("at"), record_id=raw.get("id"))
            counts[module] = counts.get(module, 0) + 1
    return counts
