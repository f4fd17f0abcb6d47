"""Applies mappings/hubspot.toml to HubSpot records: one invoice with its
line items, contact, company and deal becomes a ``core.model.Invoice``.

Everything vendor-specific about *what a property means* lives in the TOML;
this module only knows HubSpot's value formats (decimal strings, datetimes
as ISO 8601 or epoch milliseconds). Any problem is a ``BadRecord`` naming the
record and what to fix, so the page goes on without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Address, Invoice, Line, Party, Payment
from pouracquit.common.money import Money, to_decimal
from pouracquit.common.rates import check_direction, crm_rate
from pouracquit.mappings import lookup

Props = Mapping[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_when(value: Any) -> datetime:
    """A HubSpot datetime (epoch ms or ISO 8601, maybe a bare date) as aware UTC."""
    text = str(value).strip()
    if text.isdigit():
        try:
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"timestamp {text[:30]!r} is out of range") from None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def epoch_ms(value: Any) -> int:
    """A HubSpot datetime as epoch milliseconds (the form search filters take)."""
    return (parse_when(value) - _EPOCH) // timedelta(milliseconds=1)


def _day(value: Any) -> date:
    return parse_when(value).date()


class HubSpotMapper:
    """Builds invoices from HubSpot property maps according to one mapping."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self.m = mapping
        self.rate_direction = check_direction(mapping["defaults"]["exchange_rate_direction"],
                                              "defaults.exchange_rate_direction")

    def invoice_properties(self) -> list[str]:
        """Every invoice property the mapping reads (asked for in searches)."""
        return self.properties_of("invoice")

    def properties_of(self, section: str) -> list[str]:
        return sorted({v for v in self.m[section].values() if isinstance(v, str) and v})

    def _get(self, props: Props, section: str, key: str) -> str:
        value = props.get(self.m[section][key])
        return "" if value is None else str(value).strip()

    def _disputed(self, props: Props) -> dict[str, str]:
        """The dispute flag (mapping key invoice.disputed) under the key dunning reads
        (core/dunning/plan.py DISPUTED), beside the properties read by name."""
        value = self._get(props, "invoice", "disputed") if self.m["invoice"].get("disputed") else ""
        return {"pouracquit:disputed": value} if value else {}

    def _required(self, props: Props, section: str, key: str, what: str) -> str:
        value = self._get(props, section, key)
        if not value:
            raise BadRecord(f"{what} has no {self.m[section][key]} (mapping key {section}.{key})")
        return value

    def _line(self, line_id: str, props: Props) -> Line:
        what = f"line item {line_id}"
        kind_value = self._get(props, "line_item", "product_type")
        kind = (lookup(self.m["product_type"], kind_value, "product_type") if kind_value
                else self.m["defaults"]["line_kind"])
        return Line(
            description=self._required(props, "line_item", "name", what),
            quantity=self._required(props, "line_item", "quantity", what),
            unit_price=self._required(props, "line_item", "unit_price", what),
            vat_rate=self._required(props, "line_item", "vat_rate", what),
            kind=kind,
            vat_exemption=self._get(props, "line_item", "vat_exemption"),
            sku=self._get(props, "line_item", "sku"),
        )

    def _party(self, contact: Props | None, company: Props | None, ids: tuple[str, str]) -> Party:
        country = self.m["defaults"]["country"]
        if company is not None:
            section, props = "company", company
            name = self._get(company, "company", "name")
            kind = "company"
        elif contact is not None:
            section, props = "contact", contact
            name = " ".join(p for p in (self._get(contact, "contact", "first_name"),
                                        self._get(contact, "contact", "last_name")) if p)
            kind = "person"
        else:
            raise BadRecord("invoice has no associated contact or company: associate the buyer in HubSpot")
        if not name:
            raise BadRecord(f"the invoice's {section} {ids[1] if company is not None else ids[0]} has no name")
        address = Address(
            line1=self._get(props, section, "line1"), postal_code=self._get(props, section, "postal_code"),
            city=self._get(props, section, "city"), country=self._get(props, section, "country") or country,
        )
        return Party(
            # the e-mail the receipt goes to: the company's billing address when mapped and set, else the contact's
            name=name, kind=kind, email=(self._get(company, "company", "email") if company is not None else "")
            or (self._get(contact, "contact", "email") if contact is not None else ""),
            address=address,
            siren=self._get(company, "company", "siren") if company is not None else "",
            vat_number=self._get(company, "company", "vat_number") if company is not None else "",
            external_id=ids[1] if company is not None else ids[0],
        )

    def _method(self, value: str) -> str:
        if not value:
            return self.m["defaults"]["payment_method"]
        return lookup(self.m["payment_method"], value.lower(), "payment_method")

    def _rate(self, props: Props, currency: str) -> Decimal | None:
        name = self.m["invoice"].get("exchange_rate") or ""
        if currency.upper() == "EUR" or not name:
            return None
        return crm_rate(props.get(name), self.rate_direction, name)

    def _payments(self, props: Props, currency: str, paid: Decimal) -> tuple[Payment, ...]:
        raw = self._get(props, "invoice", "payments")
        if raw:
            try:
                items = json.loads(raw)
                return tuple(
                    Payment(amount=Money(amount=to_decimal(p["amount"]), currency=currency),
                            paid_at=parse_when(p["date"]), method=self._method(str(p.get("method") or "")),
                            reference=str(p.get("reference") or ""))
                    for p in items
                )
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                raise BadRecord(f"{self.m['invoice']['payments']} is not a JSON payment list: {exc}") from None
        if paid <= 0:
            return ()
        when = self._get(props, "invoice", "payment_date") or self._get(props, "invoice", "modified")
        return (Payment(amount=Money(amount=paid, currency=currency), paid_at=parse_when(when),
                        method=self._method(self._get(props, "invoice", "payment_method")),
                        reference=self._get(props, "invoice", "payment_reference")),)

    def invoice(
        self,
        invoice_id: str,
        props: Props,
        lines: Sequence[tuple[str, Props]],
        contact: tuple[str, Props] | None,
        company: tuple[str, Props] | None,
        deal_id: str,
    ) -> Invoice:
        """The core invoice, or ``BadRecord`` saying which record and key to fix."""
        try:
            currency = self._required(props, "invoice", "currency", "invoice")
            status = lookup(self.m["status"], self._required(props, "invoice", "status", "invoice"), "status")
            paid = to_decimal(self._get(props, "invoice", "amount_paid") or "0")
            position = self.m["line_item"]["position"]
            ordered = sorted(lines, key=lambda item: (to_decimal(item[1].get(position) or "0"), int(item[0])))
            supply = self._get(props, "invoice", "supply_date")
            due = self._get(props, "invoice", "due_date")
            return Invoice(
                source_id=invoice_id,
                number=self._get(props, "invoice", "number"),
                currency=currency,
                issue_date=_day(self._required(props, "invoice", "issue_date", "invoice")),
                supply_date=_day(supply) if supply else None,
                due_date=_day(due) if due else None,
                customer=self._party(contact[1] if contact else None, company[1] if company else None,
                                     (contact[0] if contact else "", company[0] if company else "")),
                lines=tuple(self._line(line_id, lp) for line_id, lp in ordered),
                payments=self._payments(props, currency, paid),
                status=status,
                amount_paid=Money(amount=paid, currency=currency),
                exchange_rate=self._rate(props, currency),
                modified_at=parse_when(self._required(props, "invoice", "modified", "invoice")),
                deal_id=deal_id,
                properties={k: str(props[k]) for k in self.invoice_properties() if props.get(k) is not None}
                | self._disputed(props),
            )
        except BadRecord as exc:
            raise BadRecord(f"HubSpot invoice {invoice_id}: {exc}") from None
        except (ValidationError, ValueError) as exc:
            raise BadRecord(f"HubSpot invoice {invoice_id} is not a valid invoice: {exc}") from None
