"""The Xero organisation's reference data as one run of the ledger sees it:
tax rates and accounts (read once), currencies (read once, when a foreign
currency first appears), contacts (read once in pages of 100, created as
needed), and how an invoice's lines are written against them.

Values never go into a ``where`` filter unless they are ours: Xero's filter
syntax has no escape for a double quote (see ``xero_format.literal``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pouracquit.common.errors import BadRecord, ConfigError, PermanentError
from pouracquit.common.model import Invoice, Line, Party
from pouracquit.mappings import lookup

from .format import CONTACT_NAME_MAX, HOME_CURRENCY, amount, line_taxes, rate_key
from .session import CURRENCY_FIX, XeroApi


@dataclass
class Refs:
    """The organisation's reference data, read once per run."""

    tax_rates: list[dict[str, Any]]
    sales_account: str
    bank_account: str
    bank_currency: str  # a BANK account's CurrencyCode ("" for an account that only takes payments)


@dataclass
class Contacts:
    by_email: dict[str, str] = field(default_factory=dict)
    by_name: dict[str, str] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        email = str(row.get("EmailAddress") or "").strip().lower()
        if email:
            self.by_email.setdefault(email, str(row["ContactID"]))
        self.by_name[str(row["Name"]).strip().lower()] = str(row["ContactID"])


class Directory:
    """Per-run lookups of one ledger; thread-safe (the pipeline books from several threads)."""

    def __init__(self, api: XeroApi, mapping: Mapping[str, Any]) -> None:
        self.api = api
        self.mapping = mapping
        self._lock = threading.RLock()
        self._refs: Refs | None = None
        self._contacts: Contacts | None = None
        self._currencies: set[str] | None = None

    # -- accounts and tax ------------------------------------------------------------
    def references(self) -> Refs:
        """Tax rates and accounts: read once per run, checked against the mapping."""
        with self._lock:
            if self._refs is None:
                rates = self.api.request("taxrates.list", "GET", "/TaxRates").get("TaxRates") or []
                accounts = self.api.request("accounts.list", "GET", "/Accounts").get("Accounts") or []
                by_code = {str(a.get("Code")): a for a in accounts if a.get("Status", "ACTIVE") == "ACTIVE"}
                sales, bank = str(self.mapping["accounts"]["sales"]), str(self.mapping["accounts"]["bank"])
                if by_code.get(sales, {}).get("Class") != "REVENUE":
                    raise ConfigError(f"Xero has no active revenue account with Code {sales!r} "
                                      f"(setting sales_account, mapping accounts.sales)")
                bank_row = by_code.get(bank, {})
                if bank_row.get("Type") != "BANK" and not bank_row.get("EnablePaymentsToAccount"):
                    raise ConfigError(f"Xero has no bank account with Code {bank!r} that takes payments "
                                      f"(setting bank_account, mapping accounts.bank)")
                self._refs = Refs([r for r in rates if r.get("Status") == "ACTIVE"], sales, bank,
                                  str(bank_row.get("CurrencyCode") or ""))
            return self._refs

    def tax_type(self, line: Line) -> str:
        refs = self.references()
        exemptions = self.mapping.get("exemptions", {})
        if line.vat_rate == 0 and line.vat_exemption in exemptions:
            pattern, key = exemptions[line.vat_exemption], f"exemptions.{line.vat_exemption}"
        else:
            key = rate_key(line.vat_rate)
            pattern, key = lookup(self.mapping["vat_rates"], key, "vat_rates"), f"vat_rates.{key}"
        found = [r for r in refs.tax_rates
                 if Decimal(str(r.get("EffectiveRate"))) == line.vat_rate and r.get("CanApplyToRevenue", True)
                 and re.search(str(pattern), str(r.get("Name")), re.IGNORECASE)]
        if len(found) != 1:
            names = ", ".join(str(r.get("Name")) for r in found) or "none"
            raise ConfigError(f"mapping {key} = {pattern!r} must match exactly one active Xero sales tax rate "
                              f"of {line.vat_rate} %, it matches {names}")
        return str(found[0]["TaxType"])

    def line_items(self, invoice: Invoice, *, discounts: bool = True) -> list[dict[str, Any]]:
        """spec#/components/schemas/LineItem for each line, TaxAmount set so the totals match.
        Without ``discounts`` (credit notes: "ACCPAY invoices and credit notes in Xero do not
        support discounts", spec LineItem.DiscountRate) a discounted line is sent as one unit
        at its net amount, its quantity and discount named in the description."""
        sales = self.references().sales_account
        items = []
        for line, tax in zip(invoice.lines, line_taxes(invoice), strict=True):
            text = line.description[:4000] or "-"
            quantity, unit = line.quantity, line.unit_price
            if line.discount and not discounts:
                text = f"{text} ({line.quantity} x {line.unit_price}, remise {line.discount})"[:4000]
                quantity, unit = Decimal(1), line.net
            item: dict[str, Any] = {
                "Description": text, "Quantity": amount(quantity), "UnitAmount": amount(unit),
                "AccountCode": sales, "TaxType": self.tax_type(line), "TaxAmount": amount(tax),
            }
            if line.discount and discounts:
                item["DiscountAmount"] = amount(line.discount)
            items.append(item)
        return items

    # -- currencies ----------------------------------------------------------------------
    def check_currency(self, code: str) -> None:
        """A foreign currency must be one the organisation added (spec#/paths/~1Currencies/get,
        read once per run and only when one appears); otherwise Xero would refuse the document."""
        if code == HOME_CURRENCY:
            return
        with self._lock:
            if self._currencies is None:
                rows = self.api.request("currencies.list", "GET", "/Currencies").get("Currencies") or []
                self._currencies = {str(r.get("Code")) for r in rows}
            known = self._currencies
        if code not in known:
            raise PermanentError(f"the Xero organisation has not added currency {code}: {CURRENCY_FIX}")

    # -- contacts ------------------------------------------------------------------------
    def contact_index(self) -> Contacts:
        with self._lock:
            if self._contacts is None:
                index, page = Contacts(), 1
                while True:
                    answer = self.api.request("contacts.list", "GET", "/Contacts",
                                              params={"page": page, "summaryOnly": "true"})
                    rows = answer.get("Contacts") or []
                    for row in rows:
                        index.add(row)
                    pagination = answer.get("pagination") or {}
                    if not rows or page >= int(pagination.get("pageCount") or page):
                        break
                    page += 1
                self._contacts = index
            return self._contacts

    @staticmethod
    def contact_body(party: Party, name: str) -> dict[str, Any]:
        body: dict[str, Any] = {"Name": name, "EmailAddress": party.email, "Addresses": [{
            "AddressType": "STREET", "AddressLine1": party.address.line1, "AddressLine2": party.address.line2,
            "City": party.address.city, "PostalCode": party.address.postal_code, "Country": party.address.country,
        }]}
        if party.vat_number:
            body["TaxNumber"] = party.vat_number
        if party.siren:
            body["CompanyNumber"] = party.siren
        return body

    def contact_ids(self, party: Party) -> list[str]:
        """The existing contacts ``party`` resolves to, best first: by EmailAddress, then by Name."""
        index = self.contact_index()
        email = party.email.strip().lower()
        found = [index.by_email.get(email) if email else None,
                 index.by_name.get(party.name[:CONTACT_NAME_MAX].strip().lower())]
        return list(dict.fromkeys(f for f in found if f))

    def contact_id(self, party: Party) -> str:
        """Match by EmailAddress, then by Name (unique in Xero); create once and remember it for the run."""
        found = self.contact_ids(party)
        if found:
            return found[0]
        index = self.contact_index()
        name = party.name[:CONTACT_NAME_MAX].strip()
        body = self.contact_body(party, name)
        key = "contact:" + hashlib.sha256(f"{self.api.tenant()}\x1f{name.lower()}".encode()).hexdigest()[:48]
        try:
            answer = self.api.request("contact.create", "PUT", "/Contacts", json={"Contacts": [body]},
                                      idempotency_key=key)
        except BadRecord as exc:
            if "already assigned" not in str(exc):
                raise
            with self._lock:  # created elsewhere since the list was read: read it again
                self._contacts = None
            again = self.contact_index().by_name.get(name.lower())
            if again is None:
                raise
            return again
        row = answer["Contacts"][0]
        with self._lock:
            index.add(row)
        return str(row["ContactID"])

    def create_contacts(self, parties: Sequence[Party]) -> None:
        """Create the contacts this run has not seen in one call; a refused one is
        left to the one-by-one path, which handles a namesake."""
        index = self.contact_index()
        missing: dict[str, dict[str, Any]] = {}
        for party in parties:
            name, email = party.name[:CONTACT_NAME_MAX].strip(), party.email.strip().lower()
            if (email and email in index.by_email) or name.lower() in index.by_name:
                continue
            missing.setdefault(name.lower(), self.contact_body(party, name))
        if not missing:
            return
        key = hashlib.sha256("\x1f".join([self.api.tenant(), *sorted(missing)]).encode()).hexdigest()[:48]
        answer = self.api.request("contact.batch", "PUT", "/Contacts", json={"Contacts": list(missing.values())},
                                  params={"summarizeErrors": "false"}, idempotency_key=f"contacts:{key}")
        with self._lock:
            for row in answer["Contacts"]:
                if row.get("StatusAttributeString") == "OK" and row.get("ContactID"):
                    index.add(row)
