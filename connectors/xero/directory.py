"""The Xero organisation's reference data as one run of the ledger sees it:
tax rates and accounts (read once), currencies (read once, when a foreign
currency first appears), contacts (read once in pages of 100, created as
needed), and how an invoice's lines are written against them.

Values never go into a ``where`` filter unless they are ours: Xero's filter
syntax has no escape for a double quote (see ``format.literal``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pouracquit.common.errors import BadRecord, ConfigError, PermanentError
from pouracquit.common.model import Invoice, Line, Party
from pouracquit.connectors.ledger_base import PartyDirectory, PartyRow, tax_setting

from .format import CONTACT_NAME_MAX, HOME_CURRENCY, amount, line_taxes
from .session import CURRENCY_FIX, XeroApi


@dataclass
class Refs:
    """The organisation's reference data, read once per run."""

    tax_rates: list[dict[str, Any]]
    sales_account: str
    bank_account: str
    bank_currency: str  # a BANK account's CurrencyCode ("" for an account that only takes payments)


class Directory(PartyDirectory):
    """Per-run lookups of one ledger; thread-safe (the pipeline books from several threads).
    Contacts have no scope: a Xero contact takes every currency."""

    def __init__(self, api: XeroApi, mapping: Mapping[str, Any]) -> None:
        super().__init__()
        self.api = api
        self.mapping = mapping
        self._refs: Refs | None = None
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
        pattern, key = tax_setting(self.mapping, line)
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

    # -- contacts (ledger_base.PartyDirectory) --------------------------------------------
    def _read_parties(self) -> Iterator[Mapping[str, Any]]:
        page = 1
        while True:
            answer = self.api.request("contacts.list", "GET", "/Contacts",
                                      params={"page": page, "summaryOnly": "true"})
            rows = answer.get("Contacts") or []
            yield from rows
            pagination = answer.get("pagination") or {}
            if not rows or page >= int(pagination.get("pageCount") or page):
                return
            page += 1

    def _row(self, row: Mapping[str, Any]) -> PartyRow:
        return PartyRow("", str(row.get("EmailAddress") or ""), str(row["Name"]), str(row["ContactID"]))

    def _names(self, party: Party, scope: str) -> list[str]:
        return [party.name[:CONTACT_NAME_MAX]]

    @staticmethod
    def contact_body(party: Party) -> dict[str, Any]:
        address = party.address
        body: dict[str, Any] = {"Name": party.name[:CONTACT_NAME_MAX].strip(), "EmailAddress": party.email,
                                "Addresses": [{
            "AddressType": "STREET", "AddressLine1": address.line1, "AddressLine2": address.line2,
            "City": address.city, "PostalCode": address.postal_code, "Country": address.country,
        }]}
        if party.vat_number:
            body["TaxNumber"] = party.vat_number
        if party.siren:
            body["CompanyNumber"] = party.siren
        return body

    def _create_party(self, party: Party, scope: str) -> Mapping[str, Any]:
        """One PUT /Contacts; a name Xero says is taken (a contact created since the list was
        read) is found by reading the list again."""
        body = self.contact_body(party)
        name = body["Name"]
        key = "contact:" + hashlib.sha256(f"{self.api.tenant()}\x1f{name.lower()}".encode()).hexdigest()[:48]
        try:
            answer = self.api.request("contact.create", "PUT", "/Contacts", json={"Contacts": [body]},
                                      idempotency_key=key)
        except BadRecord as exc:
            if "already assigned" not in str(exc):
                raise
            self.forget_parties()
            again = self.parties().by_name.get(("", name.lower()))
            if again is None:
                raise
            return {"ContactID": again, "Name": name}
        return answer["Contacts"][0]

    def _create_parties(self, wanted: Sequence[tuple[Party, str]]) -> Iterator[Mapping[str, Any]]:
        """All in one PUT /Contacts with ``summarizeErrors=false``: a refused one does not sink the others."""
        bodies = [self.contact_body(party) for party, _ in wanted]
        names = sorted(str(b["Name"]).lower() for b in bodies)
        key = hashlib.sha256("\x1f".join([self.api.tenant(), *names]).encode()).hexdigest()[:48]
        answer = self.api.request("contact.batch", "PUT", "/Contacts", json={"Contacts": bodies},
                                  params={"summarizeErrors": "false"}, idempotency_key=f"contacts:{key}")
        yield from (row for row in answer["Contacts"]
                    if row.get("StatusAttributeString") == "OK" and row.get("ContactID"))
