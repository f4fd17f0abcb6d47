"""Turns the vendor-neutral demo invoices (and raw records) into Salesforce records.

The demo org models invoices the way many Salesforce orgs do, with custom
objects: ``Invoice__c`` (lookups to Account, Contact and Opportunity) with
its ``Invoice_Line__c`` and ``Payment__c`` children. Picklist values are the
org's own, in French where a French org would have them (payment methods),
so the mapping file has real work to do. A company buyer is an Account with
an accounting Contact; a private person is a Contact without Account.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pouracquit.sandbox.demo_data import demo_invoices, invoice_total

from .store import SCHEMA, Org

STATUS = {"paid": "Paid", "partially_paid": "Partially Paid", "open": "Sent", "voided": "Void", "draft": "Draft"}
METHOD = {"transfer": "Virement", "card": "Carte bancaire", "check": "Chèque", "cash": "Espèces",
          "direct_debit": "Prélèvement SEPA"}
KIND = {"goods": "Goods", "services": "Services"}


def _buyer(org: Org, customer: dict[str, Any], cache: dict[str, tuple[str, str]], stamp: datetime
           ) -> tuple[str, str]:
    """(account id or "", contact id) for a demo customer, created once."""
    key = customer["email"]
    if key in cache:
        return cache[key]
    address = customer["address"]
    account_id = ""
    if customer["kind"] == "company":
        account_id = org.create("Account", {
            "Name": customer["name"], "Website": key.split("@")[1], "BillingStreet": address["line1"],
            "BillingPostalCode": address["postal_code"], "BillingCity": address["city"],
            "BillingCountry": address["country"], "SIREN__c": customer["siren"],
            "VAT_Number__c": customer["vat_number"]}, stamp)["Id"]
        contact = {"FirstName": "Service", "LastName": "Comptabilité", "Email": key, "AccountId": account_id}
    else:
        first, _, last = customer["name"].partition(" ")
        contact = {"FirstName": first, "LastName": last, "Email": key, "MailingStreet": address["line1"],
                   "MailingPostalCode": address["postal_code"], "MailingCity": address["city"],
                   "MailingCountry": address["country"]}
    cache[key] = (account_id, org.create("Contact", contact, stamp)["Id"])
    return cache[key]


def seed_demo(org: Org, count: int = 60, seed: int = 7, modstamp: str | None = None) -> dict[str, int]:
    """Create the demo set in one transaction: every record gets the same
    SystemModstamp (``modstamp`` pins it, ISO 8601)."""
    stamp = org.stamp(datetime.fromisoformat(modstamp.replace("Z", "+00:00")) if modstamp else None)
    before = {o: len(rows) for o, rows in org.records.items()}
    buyers: dict[str, tuple[str, str]] = {}
    deals: dict[str, str] = {}
    for demo in demo_invoices(count, seed):
        account_id, contact_id = _buyer(org, demo["customer"], buyers, stamp)
        total = invoice_total(demo["lines"])
        opportunity_id = ""
        if demo["deal"]:
            deal_key = f"{demo['deal']}|{demo['customer']['email']}"
            if deal_key not in deals:
                deals[deal_key] = org.create("Opportunity", {
                    "Name": f"{demo['deal']} — {demo['customer']['name']}", "StageName": "Closed Won",
                    "IsClosed": True, "IsWon": True, "Amount": total, "CloseDate": demo["issue_date"],
                    "CurrencyIsoCode": demo["currency"], "AccountId": account_id or None,
                    "ContactId": contact_id}, stamp)["Id"]
            opportunity_id = deals[deal_key]
        paid = sum((Decimal(p["amount"]) for p in demo["payments"]), Decimal("0"))
        last = demo["payments"][-1] if demo["payments"] else None
        invoice = org.create("Invoice__c", {
            "Invoice_Number__c": demo["number"], "Status__c": STATUS[demo["status"]],
            "CurrencyIsoCode": demo["currency"], "Issue_Date__c": demo["issue_date"],
            "Supply_Date__c": demo["supply_date"], "Due_Date__c": demo["due_date"], "Total_Amount__c": total,
            "Amount_Paid__c": paid, "Payment_Date__c": last["date"] if last else None,
            "Payment_Method__c": METHOD[last["method"]] if last else None,
            "Payment_Reference__c": last["reference"] if last else None, "Demo_Id__c": demo["id"],
            # units of the invoice currency for one euro, as Salesforce quotes ConversionRate
            "Exchange_Rate__c": demo["exchange_rate"] or None,
            "Account__c": account_id or None, "Contact__c": contact_id, "Opportunity__c": opportunity_id or None,
        }, stamp)
        for position, line in enumerate(demo["lines"], start=1):
            org.create("Invoice_Line__c", {
                "Invoice__c": invoice["Id"], "Description__c": line["name"], "Quantity__c": line["quantity"],
                "Unit_Price__c": line["unit_price"], "VAT_Rate__c": line["vat_rate"], "Kind__c": KIND[line["kind"]],
                "SKU__c": line["sku"], "Position__c": position, "VAT_Exemption__c": line.get("vat_exemption")},
                stamp)
        for payment in demo["payments"]:
            org.create("Payment__c", {
                "Invoice__c": invoice["Id"], "Amount__c": payment["amount"], "Payment_Date__c": payment["date"],
                "Method__c": METHOD[payment["method"]], "Reference__c": payment["reference"]}, stamp)
    return {o: len(rows) - before[o] for o, rows in org.records.items() if len(rows) != before[o]}


def seed_raw(org: Org, records: dict[str, list[dict[str, Any]]], modstamp: str | None = None) -> dict[str, int]:
    """Create raw records, ``{"Invoice__c": [{"Id"?: ..., field: value}]}``, in the
    order given (so a line may name an invoice created just before), in one transaction."""
    stamp = org.stamp(datetime.fromisoformat(modstamp.replace("Z", "+00:00")) if modstamp else None)
    counts: dict[str, int] = {}
    for sobject, rows in records.items():
        if sobject not in SCHEMA:
            raise ValueError(f"sObject type '{sobject}' is not supported.")
        for raw in rows:
            values = {k: v for k, v in raw.items() if k != "Id"}
            org.create(sobject, values, stamp, record_id=raw.get("Id"))
            counts[sobject] = counts.get(sobject, 0) + 1
    return counts
