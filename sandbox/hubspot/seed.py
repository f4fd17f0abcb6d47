"""Turns the vendor-neutral demo invoices (and raw objects) into HubSpot records.

What HubSpot has no standard property for is carried in custom properties
prefixed ``pouracquit_`` (see mappings/hubspot.toml): the buyer's SIREN and
VAT number on companies, the VAT exemption wording on line items, and the
payment method, reference, split payments and exchange rate on invoices. A partially paid
invoice is ``open`` with ``hs_amount_paid`` > 0, as in HubSpot.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pouracquit.sandbox.demo_data import demo_invoices, invoice_total

from .store import OBJECT_TYPES, Store

_STATUS = {"paid": "paid", "partially_paid": "open", "open": "open", "voided": "voided", "draft": "draft"}
_PRODUCT_TYPE = {"goods": "inventory", "services": "service"}


def _midnight(day: str) -> str:
    return f"{day}T00:00:00.000Z" if day else ""


def _eur_per_unit(units_per_eur: str) -> str | None:
    # HubSpot quotes a currency as company-currency units for one unit, up to 6 decimals
    # (https://developers.hubspot.com/docs/api/settings/currencies, conversionRate)
    return f"{Decimal(1) / Decimal(units_per_eur):.6f}" if units_per_eur else None


def _customer(store: Store, customer: dict[str, Any], cache: dict[str, tuple[str, str]],
              at: int | None) -> tuple[str, str]:
    """(contact id, company id or "") for a demo customer, created once."""
    key = customer["email"]
    if key in cache:
        return cache[key]
    address = customer["address"]
    place = {"address": address["line1"], "zip": address["postal_code"], "city": address["city"],
             "country": address["country"]}
    company_id = ""
    if customer["kind"] == "company":
        company = store.create("companies", {
            "name": customer["name"], "domain": key.split("@")[1], **place,
            "pouracquit_siren": customer["siren"], "pouracquit_vat_number": customer["vat_number"],
        }, at_ms=at)
        company_id = company["id"]
        contact_props = {"firstname": "Service", "lastname": "Comptabilité", "email": key}
    else:
        first, _, last = customer["name"].partition(" ")
        contact_props = {"firstname": first, "lastname": last, "email": key, **place}
    contact = store.create("contacts", contact_props, at_ms=at)
    if company_id:
        store.associate("contacts", contact["id"], "companies", company_id)
    cache[key] = (contact["id"], company_id)
    return cache[key]


def seed_demo(store: Store, count: int = 60, seed: int = 7, timestamp_ms: int | None = None) -> dict[str, int]:
    """Create the demo set; every invoice gets its own, increasing
    ``hs_lastmodifieddate`` unless ``timestamp_ms`` pins them all to one."""
    customers: dict[str, tuple[str, str]] = {}
    deals: dict[str, str] = {}
    created = dict.fromkeys(("invoices", "line_items", "contacts", "companies", "deals"), 0)
    before = {t: len(store.objects[t]) for t in created}
    for demo in demo_invoices(count, seed):
        contact_id, company_id = _customer(store, demo["customer"], customers, timestamp_ms)
        deal_id = ""
        if demo["deal"]:
            deal_key = f"{demo['deal']}|{demo['customer']['email']}"
            if deal_key not in deals:
                deals[deal_key] = store.create("deals", {
                    "dealname": f"{demo['deal']} — {demo['customer']['name']}", "dealstage": "closedwon",
                    "pipeline": "default"}, at_ms=timestamp_ms)["id"]
            deal_id = deals[deal_key]
        line_ids = []
        for position, line in enumerate(demo["lines"], start=1):
            net = (Decimal(line["quantity"]) * Decimal(line["unit_price"])).quantize(Decimal("0.01"))
            props = {"name": line["name"], "hs_sku": line["sku"], "quantity": line["quantity"],
                     "price": line["unit_price"], "amount": f"{net:.2f}", "hs_tax_rate": line["vat_rate"],
                     "hs_product_type": _PRODUCT_TYPE[line["kind"]], "hs_position_on_quote": str(position)}
            if line.get("vat_exemption"):
                props["pouracquit_vat_exemption"] = line["vat_exemption"]
            line_ids.append(store.create("line_items", props, at_ms=timestamp_ms)["id"])
        total = invoice_total(demo["lines"])
        paid = sum((Decimal(p["amount"]) for p in demo["payments"]), Decimal("0"))
        last = demo["payments"][-1] if demo["payments"] else None
        props = {
            "hs_invoice_status": _STATUS[demo["status"]], "hs_currency": demo["currency"],
            "hs_number": demo["number"] or None, "hs_invoice_date": _midnight(demo["issue_date"]),
            "hs_due_date": _midnight(demo["due_date"]), "pouracquit_supply_date": demo["supply_date"],
            "hs_amount_billed": f"{total:.2f}", "hs_amount_paid": f"{paid:.2f}",
            "hs_balance_due": f"{total - paid if demo['status'] != 'voided' else 0:.2f}",
            "hs_payment_date": _midnight(last["date"]) if last else None,
            "pouracquit_payment_method": last["method"] if last else None,
            "pouracquit_payment_reference": last["reference"] if last else None,
            "pouracquit_payments": json.dumps(demo["payments"]) if demo["payments"] else None,
            "pouracquit_exchange_rate": _eur_per_unit(demo["exchange_rate"]),
            "pouracquit_demo_id": demo["id"],
        }
        invoice = store.create("invoices", props, at_ms=timestamp_ms)
        for line_id in line_ids:
            store.associate("invoices", invoice["id"], "line_items", line_id)
        store.associate("invoices", invoice["id"], "contacts", contact_id)
        if company_id:
            store.associate("invoices", invoice["id"], "companies", company_id)
        if deal_id:
            store.associate("invoices", invoice["id"], "deals", deal_id)
    return {t: len(store.objects[t]) - before[t] for t in created}


def seed_raw(store: Store, objects: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Create raw objects: ``{"invoices": [{"id"?, "properties", "associations": {"deals": [ids]},
    "at_ms"?}]}``; associations may name ids created earlier in the same call."""
    counts: dict[str, int] = {}
    pending: list[tuple[str, str, dict[str, list[str]]]] = []
    for object_type, records in objects.items():
        if object_type not in OBJECT_TYPES:
            raise ValueError(f"unknown object type {object_type!r}")
        for raw in records:
            record = store.create(object_type, raw.get("properties", {}), at_ms=raw.get("at_ms"),
                                  object_id=raw.get("id"))
            pending.append((object_type, record["id"], raw.get("associations", {})))
            counts[object_type] = counts.get(object_type, 0) + 1
    for object_type, object_id, links in pending:
        for to_type, ids in links.items():
            for to_id in ids:
                store.associate(object_type, object_id, to_type, str(to_id))
    return counts
