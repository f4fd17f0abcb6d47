"""What the QuickBooks ledger reads from the company once per run: reference
data (tax codes and rates, bank account, payment methods, item, currency
preferences) in ONE /batch call, and the customer list in pages of 1000.

Customers have one currency each in a multicurrency company ("Only one
currency can be assigned to a given name list object or account",
https://developer.intuit.com/app/developer/qbo/docs/workflows/manage-multiple-currencies),
and DisplayName is unique across customers whatever their currency (fault
6240), so a buyer invoiced in two currencies is two customers: ``Acme`` in the
home currency and ``Acme (USD)`` in dollars.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from quickbooks.objects.base import Address, EmailAddress, Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.item import Item

from pouracquit.common.errors import ConfigError, PermanentError
from pouracquit.common.model import Party
from pouracquit.connectors.ledger_base import PartyDirectory, PartyRow

from .api import Api, quote, request_id, select
from .session import DuplicateName

BATCH_MAX = 30  # BatchItemRequests per /batch call
DISPLAY_NAME_MAX = 100
PAGE_SIZE = 1000
# Where a person turns multicurrency on, for good (QuickBooks Online help, "How Multicurrency works",
# https://quickbooks.intuit.com/learn-support/en-us/multi-currency/how-multicurrency-works/00/186157;
# menu path as in https://www.accountwizy.com/faq/how-to-deactivate-multicurrency-in-quickbooks-online/).
MULTICURRENCY_SETTING = "Settings > Account and settings > Advanced > Currency > Multicurrency"


def ref(value: str) -> Ref:
    """A python-quickbooks ReferenceType holding ``value``."""
    made = Ref()
    made.value = value
    return made


@dataclass
class TaxCode:
    id: str
    name: str
    rates: list[tuple[str, Decimal]]  # (TaxRate Id, RateValue) of its SalesTaxRateList


@dataclass
class Refs:
    """The company's reference data, read once per run."""

    tax_codes: dict[str, TaxCode]
    deposit_account: str
    payment_methods: dict[str, str]
    item: str
    # Preferences.CurrencyPrefs (Intuit Preferences entity; the Java SDK's CurrencyPrefs
    # holds MultiCurrencyEnabled and HomeCurrency, ipp-v3-java-data Finance.xsd).
    home_currency: str
    multicurrency: bool

    def check_currency(self, currency: str, number: str) -> None:
        """A receipt in a foreign currency needs multicurrency on in the company."""
        if currency != self.home_currency and not self.multicurrency:
            raise PermanentError(
                f"invoice {number} is in {currency} but this QuickBooks company books only its home currency "
                f"{self.home_currency}: switch multicurrency on in QuickBooks ({MULTICURRENCY_SETTING}); it "
                f"cannot be switched off again"
            )


def display_name(party: Party, currency: str, home: str) -> str:
    """The customer's DisplayName: the party's name, tagged with the currency outside the home one."""
    if currency == home:
        return party.name[:DISPLAY_NAME_MAX].strip()
    tag = f" ({currency})"
    return party.name[:DISPLAY_NAME_MAX - len(tag)].strip() + tag


class Directory(PartyDirectory):
    """Reference data and customers of one company, cached for the run. A customer's
    scope in the directory is its currency."""

    def __init__(self, api: Api, mapping: Mapping[str, Any], realm_id: str) -> None:
        super().__init__()
        self._api = api
        self._mapping = mapping
        self._realm = realm_id
        self._refs: Refs | None = None

    # -- reference data -----------------------------------------------------------
    def references(self) -> Refs:
        """Tax codes, tax rates, accounts, payment methods, item and preferences: one batch call."""
        with self._lock:
            if self._refs is not None:
                return self._refs
            item_name = str(self._mapping["item"])
            rows = reference_rows(self._api, item_name, "references.batch")
            self._refs = self._assemble(rows, item_name)
            return self._refs

    def _assemble(self, rows: dict[str, list[dict[str, Any]]], item_name: str) -> Refs:
        rates = {str(r["Id"]): Decimal(str(r["RateValue"])) for r in rows["TaxRate"]}
        codes = {}
        for code in rows["TaxCode"]:
            details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
            ids = [str(d["TaxRateRef"]["value"]) for d in details]
            codes[str(code["Name"]).lower()] = TaxCode(str(code["Id"]), str(code["Name"]),
                                                       [(i, rates[i]) for i in ids if i in rates])
        accounts = {str(a["Name"]).lower(): a for a in rows["Account"]}
        deposit = accounts.get(str(self._mapping["deposit_account"]).lower())
        if deposit is None or deposit.get("AccountType") != "Bank":
            raise ConfigError(f"QuickBooks has no bank account named {self._mapping['deposit_account']!r} "
                              f"(setting deposit_account)")
        methods = {str(m["Name"]).lower(): str(m["Id"]) for m in rows["PaymentMethod"]}
        items = rows["Item"]
        item_id = str(items[0]["Id"]) if items else self._create_item(item_name, accounts)
        prefs = (rows["Preferences"] or [{}])[0].get("CurrencyPrefs") or {}
        home = str((prefs.get("HomeCurrency") or {}).get("value") or "EUR")
        return Refs(codes, str(deposit["Id"]), methods, item_id, home, bool(prefs.get("MultiCurrencyEnabled")))

    def _create_item(self, name: str, accounts: Mapping[str, Mapping[str, Any]]) -> str:
        income_name = str(self._mapping.get("item_income_account", ""))
        income = accounts.get(income_name.lower())
        if income is None:
            raise ConfigError(f"QuickBooks has no item {name!r} and no income account {income_name!r} "
                              f"to create it with (mapping item, item_income_account)")
        item = Item()
        item.Name, item.Type = name, "Service"
        item.IncomeAccountRef = ref(str(income["Id"]))
        created = self._api.create("item.create", "Item", item.to_json(), request_id("item", self._realm, name))
        return str(created["Id"])

    # -- customers (ledger_base.PartyDirectory) ----------------------------------------
    def _read_parties(self) -> Iterator[Mapping[str, Any]]:
        start = 1
        while True:
            rows = self._api.query("customer.list", select(
                "Customer", tail=f"startposition {start} maxresults {PAGE_SIZE}"))
            yield from rows  # by Id: oldest first
            if len(rows) < PAGE_SIZE:
                return
            start += PAGE_SIZE

    def _row(self, row: Mapping[str, Any]) -> PartyRow:
        currency = str((row.get("CurrencyRef") or {}).get("value") or self.references().home_currency)
        email = str((row.get("PrimaryEmailAddr") or {}).get("Address") or "")
        return PartyRow(currency, email, str(row["DisplayName"]), str(row["Id"]))

    def _names(self, party: Party, scope: str) -> list[str]:
        # our own "(USD)"-tagged name first, then the bare name a person may have given it
        return [display_name(party, scope, self.references().home_currency), party.name[:DISPLAY_NAME_MAX]]

    def _new_customer(self, party: Party, currency: str) -> Customer:
        home = self.references().home_currency
        customer = Customer()
        customer.DisplayName = display_name(party, currency, home)
        customer.CompanyName = party.name[:DISPLAY_NAME_MAX].strip() if party.kind == "company" else ""
        if currency != home:
            # Customer.CurrencyRef: one currency per customer, fixed once it has transactions
            # (https://quickbooks.intuit.com/learn-support/en-us/multi-currency/how-multicurrency-works/00/186157).
            customer.CurrencyRef = ref(currency)
        if party.email:
            customer.PrimaryEmailAddr = EmailAddress()
            customer.PrimaryEmailAddr.Address = party.email
        addr = Address()
        addr.Line1, addr.Line2 = party.address.line1, party.address.line2
        addr.City, addr.PostalCode, addr.Country = party.address.city, party.address.postal_code, party.address.country
        customer.BillAddr = addr
        return customer

    def _create_parties(self, wanted: Sequence[tuple[Party, str]]) -> Iterator[Mapping[str, Any]]:
        """30 customers per /batch call; one the batch refuses (a namesake) is not yielded."""
        values = [self._new_customer(party, currency) for party, currency in wanted]
        for start in range(0, len(values), BATCH_MAX):
            chunk = values[start:start + BATCH_MAX]
            items = [{"bId": c.DisplayName, "operation": "create", "Customer": json.loads(c.to_json())}
                     for c in chunk]
            key = request_id("customer.batch", self._realm, *(c.DisplayName for c in chunk))
            yield from (item["Customer"] for item in self._api.batch("customer.batch", items, key)
                        if "Customer" in item)

    def _create_party(self, party: Party, scope: str) -> Mapping[str, Any]:
        """Create the customer in currency ``scope``; an inactive namesake in the same currency,
        or one created since the list was read, is taken (and made active again)."""
        customer = self._new_customer(party, scope)
        display = customer.DisplayName
        key = request_id("customer", self._realm, display)
        try:
            return self._api.create("customer.create", "Customer", customer.to_json(), key)
        except DuplicateName:
            rows = self._api.query("customer.find", select(
                "Customer", f"DisplayName = {quote(display)} and Active IN (true, false)"))
            if not rows:
                raise
        row = rows[0]
        held = self._row(row).scope
        if held != scope:
            raise PermanentError(f"QuickBooks customer {display!r} (Id {row['Id']}) is in {held}, not "
                                 f"{scope}: rename it in QuickBooks or give the CRM contact another name")
        if row.get("Active") is False:  # QBO refuses an inactive customer on a transaction
            body = {"Id": row["Id"], "SyncToken": row["SyncToken"], "sparse": True, "Active": True}
            qb = self._api.client()
            self._api.call("customer.reactivate", lambda: qb.update_object(
                "Customer", json.dumps(body), request_id=request_id("reactivate", key)))
        return row


def reference_rows(api: Any, item_name: str, op: str) -> dict[str, list[dict[str, Any]]]:
    """The reference data a booking needs (tax codes and rates, bank and income accounts,
    payment methods, the item, the preferences), read in one /batch call."""
    statements = {
        "TaxCode": select("TaxCode", tail=f"maxresults {PAGE_SIZE}"),
        "TaxRate": select("TaxRate", tail=f"maxresults {PAGE_SIZE}"),
        "Account": select("Account", "AccountType IN ('Bank', 'Income')", f"maxresults {PAGE_SIZE}"),
        "PaymentMethod": select("PaymentMethod", tail=f"maxresults {PAGE_SIZE}"),
        "Item": select("Item", f"Name = {quote(item_name)}"),
        "Preferences": select("Preferences"),
    }
    qb = api.client()
    body = {"BatchItemRequest": [{"bId": k, "Query": q} for k, q in statements.items()]}
    answer = api.call(op, lambda: qb.batch_operation(json.dumps(body)))
    rows: dict[str, list[dict[str, Any]]] = {}
    for found in answer["BatchItemResponse"]:
        if "Fault" in found:
            raise PermanentError(f"quickbooks refused the lookup of {found['bId']}: {found['Fault']}")
        rows[found["bId"]] = list(found.get("QueryResponse", {}).get(found["bId"], []))
    return rows
