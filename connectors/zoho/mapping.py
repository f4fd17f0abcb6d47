"""Applies mappings/zoho.toml to Zoho CRM records: one invoice with its line
items, account and contact becomes a ``core.model.Invoice``.

What a field *means* lives in the TOML; this module knows Zoho's value shapes:
numbers (read as Decimal, never float), lookups ``{"name", "id"}``, dates
``yyyy-MM-dd``, datetimes with an offset, and the ``Line_Tax`` list of a line.
Any problem is a ``BadRecord`` naming the record and the mapping key to fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Address, Invoice, InvoiceStatus, Line, Party, Payment
from pouracquit.common.money import Money, round_cents, to_decimal
from pouracquit.common.rates import check_direction, crm_rate
from pouracquit.mappings import lookup

Record = Mapping[str, Any]


def parse_when(value: Any) -> datetime:
    """A Zoho datetime (``2026-03-14T10:30:00+01:00``) or date, as aware UTC."""
    parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _day(value: Any) -> date:
    return date.fromisoformat(str(value)[:10])


def lookup_id(value: Any) -> str:
    """The id of a lookup value (``{"name", "id"}``), or "" when empty."""
    return str(value.get("id") or "") if isinstance(value, Mapping) else ""


class ZohoMapper:
    """Builds invoices from Zoho records according to one mapping."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self.m = mapping
        self.rate_direction = check_direction(mapping["defaults"]["exchange_rate_direction"],
                                              "defaults.exchange_rate_direction")

    def fields_of(self, section: str) -> list[str]:
        """Every field API name of ``section`` the mapping reads (the ``fields`` parameter)."""
        return sorted({v for v in self.m[section].values() if isinstance(v, str) and v})

    def _get(self, record: Record | None, section: str, key: str) -> Any:
        if record is None:
            return None
        value = record.get(self.m[section][key])
        if isinstance(value, Mapping):
            return value
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    def _text(self, record: Record | None, section: str, key: str) -> str:
        value = self._get(record, section, key)
        if isinstance(value, Mapping):
            return str(value.get("name") or "").strip()
        return "" if value is None else str(value).strip()

    def _disputed(self, record: Record) -> dict[str, str]:
        """The dispute flag (mapping key invoice.disputed) under the key dunning reads
        (core/dunning/plan.py DISPUTED), beside the fields read by name."""
        value = self._text(record, "invoice", "disputed") if self.m["invoice"].get("disputed") else ""
        return {"pouracquit:disputed": value} if value else {}

    def _required(self, record: Record, section: str, key: str, what: str) -> Any:
        value = self._get(record, section, key)
        if value is None or value == "":
            raise BadRecord(f"{what} has no {self.m[section][key]} (mapping key {section}.{key})")
        return value

    def _number(self, record: Record, section: str, key: str, what: str, default: str | None = None) -> Decimal:
        value = self._get(record, section, key)
        if value is None:
            if default is None:
                raise BadRecord(f"{what} has no {self.m[section][key]} (mapping key {section}.{key})")
            return Decimal(default)
        try:
            return to_decimal(value)
        except ValueError as exc:
            raise BadRecord(f"{what}: {self.m[section][key]} {exc} (mapping key {section}.{key})") from None

    def _vat_rate(self, item: Record, net: Decimal, what: str) -> Decimal:
        taxes = self._get(item, "line_item", "taxes")
        if isinstance(taxes, list) and taxes:
            try:
                return sum((to_decimal(t["percentage"]) for t in taxes), Decimal("0"))
            except (KeyError, TypeError, ValueError):
                raise BadRecord(f"{what}: {self.m['line_item']['taxes']} has no percentage "
                                f"(mapping key line_item.taxes)") from None
        tax = self._number(item, "line_item", "tax_amount", what, default="0")
        if tax == 0:
            return Decimal("0")
        for rate in (Decimal(r) for r in self.m["vat"]["rates"]):
            if net and round_cents(net * rate / 100) == round_cents(tax):
                return rate
        raise BadRecord(f"{what}: tax {tax} on {net} is no rate of [vat] rates; give the line a "
                        f"{self.m['line_item']['taxes']} or add the rate (mapping key vat.rates)")

    def _line(self, index: int, item: Record) -> Line:
        what = f"line {index}"
        name = self._text(item, "line_item", "name") or self._text(item, "line_item", "description")
        if not name:
            raise BadRecord(f"{what} has no product and no description (mapping key line_item.name)")
        quantity = self._number(item, "line_item", "quantity", what)
        price = self._number(item, "line_item", "unit_price", what)
        discount = self._number(item, "line_item", "discount", what, default="0")
        kind_value = self._text(item, "line_item", "kind")
        kind = (lookup(self.m["line_kind"], kind_value.lower(), "line_kind") if kind_value
                else self.m["defaults"]["line_kind"])
        return Line(description=name, quantity=quantity, unit_price=price, discount=discount,
                    vat_rate=self._vat_rate(item, round_cents(quantity * price - discount), what), kind=kind,
                    vat_exemption=self._text(item, "line_item", "vat_exemption"),
                    sku=self._text(item, "line_item", "sku"))

    def _party(self, invoice: Record, account: Record | None, contact: Record | None) -> Party:
        if account is not None:
            section, props, kind = "account", account, "company"
            name = self._text(account, "account", "name")
        elif contact is not None:
            section, props, kind = "contact", contact, "person"
            name = " ".join(p for p in (self._text(contact, "contact", "first_name"),
                                        self._text(contact, "contact", "last_name")) if p)
        else:
            raise BadRecord(f"invoice has no {self.m['invoice']['account']} nor {self.m['invoice']['contact']}: "
                            f"link the buyer in Zoho (mapping keys invoice.account, invoice.contact)")
        if not name:
            raise BadRecord(f"the invoice's {section} {props.get('id')} has no name (mapping key {section}.name)")
        own = self._text(invoice, "invoice", "billing_street")
        country = self.m["defaults"]["country"]
        if own:  # the address printed on the Zoho invoice itself
            address = Address(line1=own, postal_code=self._text(invoice, "invoice", "billing_code"),
                              city=self._text(invoice, "invoice", "billing_city"),
                              country=self._text(invoice, "invoice", "billing_country") or country)
        else:
            address = Address(line1=self._text(props, section, "line1"),
                              postal_code=self._text(props, section, "postal_code"),
                              city=self._text(props, section, "city"),
                              country=self._text(props, section, "country") or country)
        # the e-mail the receipt goes to: the account's billing address when mapped and set, else the contact's
        email = self._text(account, "account", "email") or self._text(contact, "contact", "email")
        return Party(name=name, kind=kind, email=email, address=address,
                     siren=self._text(account, "account", "siren"),
                     vat_number=self._text(account, "account", "vat_number"), external_id=str(props.get("id") or ""))

    def _method(self, value: str) -> str:
        if not value:
            return self.m["defaults"]["payment_method"]
        return lookup(self.m["payment_method"], value.lower(), "payment_method")

    def _rate(self, record: Record, currency: str) -> Decimal | None:
        # Exchange_Rate is on every record of a multi-currency org, 1 on home-currency
        # ones: only a foreign invoice's rate means anything (EUR home assumed, see zoho.toml).
        field = self.m["invoice"].get("exchange_rate") or ""
        if currency.strip().upper() == "EUR" or not field:
            return None
        return crm_rate(self._get(record, "invoice", "exchange_rate"), self.rate_direction, field)

    def _payments(self, record: Record, currency: str, paid: Decimal) -> tuple[Payment, ...]:
        raw = self._text(record, "invoice", "payments")
        if raw:
            try:
                return tuple(Payment(amount=Money(amount=to_decimal(p["amount"]), currency=currency),
                                     paid_at=parse_when(p["date"]), method=self._method(str(p.get("method") or "")),
                                     reference=str(p.get("reference") or "")) for p in json.loads(raw))
            except (ValueError, KeyError, TypeError) as exc:
                raise BadRecord(f"{self.m['invoice']['payments']} is not a JSON payment list: {exc} "
                                f"(mapping key invoice.payments)") from None
        if paid <= 0:
            return ()
        when = self._text(record, "invoice", "payment_date") or self._text(record, "invoice", "modified")
        return (Payment(amount=Money(amount=paid, currency=currency), paid_at=parse_when(when),
                        method=self._method(self._text(record, "invoice", "payment_method")),
                        reference=self._text(record, "invoice", "payment_reference")),)

    def invoice(self, record: Record, account: Record | None, contact: Record | None) -> Invoice:
        """The core invoice, or ``BadRecord`` saying which record and key to fix."""
        rid = str(record.get("id"))
        try:
            status = lookup(self.m["status"], str(self._required(record, "invoice", "status", "invoice")), "status")
            currency = self._text(record, "invoice", "currency") or self.m["defaults"]["currency"]
            for key in ("header_discount", "adjustment"):
                if self._number(record, "invoice", key, "invoice", default="0") != 0:
                    raise BadRecord(f"invoice-level {self.m['invoice'][key]} is not supported: move it onto the "
                                    f"lines (mapping key invoice.{key})")
            items = self._get(record, "invoice", "lines")
            if not isinstance(items, list) or not items:
                raise BadRecord(f"invoice has no {self.m['invoice']['lines']} (mapping key invoice.lines)")
            lines = tuple(self._line(i, item) for i, item in enumerate(items, start=1))
            draft = Invoice.model_construct(lines=lines, currency=currency)
            explicit = self._get(record, "invoice", "amount_paid")
            if explicit is not None:
                paid = self._number(record, "invoice", "amount_paid", "invoice")
            elif status == InvoiceStatus.PAID:  # Zoho has no amount paid: a paid invoice is paid in full
                paid = draft.gross_total.amount
            else:
                paid = Decimal("0")
            supply, due = self._text(record, "invoice", "supply_date"), self._text(record, "invoice", "due_date")
            return Invoice(
                source_id=rid, number=self._text(record, "invoice", "number"), currency=currency,
                issue_date=_day(self._required(record, "invoice", "issue_date", "invoice")),
                supply_date=_day(supply) if supply else None, due_date=_day(due) if due else None,
                customer=self._party(record, account, contact), lines=lines,
                payments=self._payments(record, currency, paid), status=status,
                amount_paid=Money(amount=paid, currency=currency), exchange_rate=self._rate(record, currency),
                modified_at=parse_when(self._required(record, "invoice", "modified", "invoice")),
                deal_id=lookup_id(self._get(record, "invoice", "deal")),
                properties={k: _flat(record[k]) for k in self.fields_of("invoice")
                            if record.get(k) is not None and k != self.m["invoice"]["lines"]} | self._disputed(record),
            )
        except BadRecord as exc:
            raise BadRecord(f"Zoho invoice {rid}: {exc}") from None
        except (ValidationError, ValueError) as exc:
            raise BadRecord(f"Zoho invoice {rid} is not a valid invoice: {exc}") from None


def _flat(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id") or value.get("name") or "")
    return str(value)
