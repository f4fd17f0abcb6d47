"""Applies mappings/salesforce.toml to SOQL records: one invoice record (with
its account and contact read through relationship fields), its line records
and its payment records become a ``core.model.Invoice``.

What a field *means* lives in the TOML; this module only knows Salesforce's
value formats: numbers arrive as JSON numbers (read as Decimal, never float),
dates as ``2026-03-14``, datetimes as ``2026-03-14T09:30:00.000+0000``,
parents as nested objects (or null). Any problem is a ``BadRecord`` naming
the record and the mapping key, so the page goes on without it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Address, Invoice, InvoiceStatus, Line, Party, Payment
from pouracquit.common.money import Money, to_decimal
from pouracquit.common.rates import check_direction, crm_rate
from pouracquit.mappings import lookup

Record = Mapping[str, Any]
_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_when(value: Any) -> datetime:
    """A Salesforce datetime (``...+0000``, ``...Z``) or date as an aware UTC datetime."""
    text = _OFFSET.sub(r"\1:\2", str(value).strip().replace("Z", "+00:00"))
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _day(value: Any) -> date:
    return date.fromisoformat(str(value)[:10])


class SalesforceMapper:
    """Builds invoices from SOQL records according to one mapping."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self.m = mapping
        self.objects: Mapping[str, str] = mapping["objects"]
        self.rate_direction = check_direction(mapping["defaults"]["exchange_rate_direction"],
                                              "defaults.exchange_rate_direction")

    # -- what to select -------------------------------------------------------------
    def _names(self, section: str, skip: tuple[str, ...] = ()) -> list[str]:
        return [v for k, v in self.m[section].items() if isinstance(v, str) and v and k not in skip]

    def invoice_fields(self) -> list[str]:
        """Every path the invoice query selects: own fields, then the buyer's through relationships."""
        inv = self.m["invoice"]
        paths = ["Id", *self._names("invoice", skip=("account", "contact"))]
        for section in ("account", "contact"):
            if inv.get(section):
                paths += [f"{inv[section]}.{name}" for name in self._names(section)]
        return list(dict.fromkeys(paths))

    def child_fields(self, section: str) -> list[str]:
        return list(dict.fromkeys(["Id", *self._names(section)]))

    # -- reading values -------------------------------------------------------------
    def _get(self, record: Record | None, section: str, key: str) -> str:
        name = self.m[section].get(key) or ""
        if record is None or not name:
            return ""
        value = record.get(name)
        return "" if value is None else _text(value)

    def _disputed(self, record: Record) -> dict[str, str]:
        """The dispute flag (mapping key invoice.disputed) under the key dunning reads
        (core/dunning/plan.py DISPUTED), beside the fields read by name."""
        value = self._get(record, "invoice", "disputed")
        return {"pouracquit:disputed": value} if value else {}

    def _required(self, record: Record, section: str, key: str, what: str) -> str:
        value = self._get(record, section, key)
        if not value:
            raise BadRecord(f"{what} has no {self.m[section].get(key) or '(unmapped)'} "
                            f"(mapping key {section}.{key})")
        return value

    def _line(self, record: Record) -> Line:
        what = f"line {record.get('Id')}"
        kind_value = self._get(record, "line", "kind")
        kind = (lookup(self.m["line_kind"], kind_value, "line_kind") if kind_value
                else self.m["defaults"]["line_kind"])
        return Line(
            description=self._required(record, "line", "description", what),
            quantity=to_decimal(self._required(record, "line", "quantity", what)),
            unit_price=to_decimal(self._required(record, "line", "unit_price", what)),
            vat_rate=to_decimal(self._required(record, "line", "vat_rate", what)),
            kind=kind,
            vat_exemption=self._get(record, "line", "vat_exemption"),
            sku=self._get(record, "line", "sku"),
        )

    def _party(self, record: Record) -> Party:
        inv = self.m["invoice"]
        account = record.get(inv["account"]) if inv.get("account") else None
        contact = record.get(inv["contact"]) if inv.get("contact") else None
        if account:
            section, source, kind = "account", account, "company"
            name = self._get(account, "account", "name")
        elif contact:
            section, source, kind = "contact", contact, "person"
            name = " ".join(p for p in (self._get(contact, "contact", "first_name"),
                                        self._get(contact, "contact", "last_name")) if p)
        else:
            raise BadRecord(f"no buyer: fill {inv.get('account') or inv.get('contact')} on the record "
                            "(mapping keys invoice.account / invoice.contact)")
        if not name:
            raise BadRecord(f"the buyer ({section} {source.get('attributes', {}).get('url', '')}) has no name")
        return Party(
            # the e-mail the receipt goes to: the account's billing address when mapped and set, else the contact's
            name=name, kind=kind,
            email=self._get(account, "account", "email") or self._get(contact, "contact", "email"),
            address=Address(line1=self._get(source, section, "line1"),
                            postal_code=self._get(source, section, "postal_code"),
                            city=self._get(source, section, "city"),
                            country=self._get(source, section, "country") or self.m["defaults"]["country"]),
            siren=self._get(account, "account", "siren"),
            vat_number=self._get(account, "account", "vat_number"),
            external_id=str(_id_of(source)),
        )

    def _method(self, value: str) -> str:
        if not value:
            return self.m["defaults"]["payment_method"]
        return lookup(self.m["payment_method"], value, "payment_method")

    def _payments(self, record: Record, children: Sequence[Record], currency: str, paid: Decimal
                  ) -> tuple[Payment, ...]:
        if self.objects.get("payment"):
            return tuple(sorted((
                Payment(amount=Money(amount=to_decimal(self._required(p, "payment", "amount",
                                                                       f"payment {p.get('Id')}")), currency=currency),
                        paid_at=parse_when(self._required(p, "payment", "date", f"payment {p.get('Id')}")),
                        method=self._method(self._get(p, "payment", "method")),
                        reference=self._get(p, "payment", "reference"))
                for p in children), key=lambda p: p.paid_at))
        if paid <= 0:
            return ()
        when = self._get(record, "invoice", "payment_date") or self._get(record, "invoice", "modified")
        return (Payment(amount=Money(amount=paid, currency=currency), paid_at=parse_when(when),
                        method=self._method(self._get(record, "invoice", "payment_method")),
                        reference=self._get(record, "invoice", "payment_reference")),)

    def _rate(self, record: Record, currency: str) -> Decimal | None:
        field = self.m["invoice"].get("exchange_rate") or ""
        if currency.strip().upper() == "EUR" or not field:
            return None
        return crm_rate(record.get(field), self.rate_direction, field)

    def _status(self, record: Record) -> InvoiceStatus:
        status = InvoiceStatus(lookup(self.m["status"], self._required(record, "invoice", "status", "invoice"),
                                      "status"))
        flag = self.m["invoice"].get("paid_flag")
        if flag and status is InvoiceStatus.OPEN and record.get(flag) is True:
            return InvoiceStatus.PAID
        return status

    def invoice(self, record: Record, lines: Sequence[Record], payments: Sequence[Record]) -> Invoice:
        """The core invoice, or ``BadRecord`` saying which record and key to fix."""
        record_id = str(record.get("Id"))
        try:
            currency = self._get(record, "invoice", "currency") or self.m["defaults"]["currency"]
            status = self._status(record)
            position = self.m["line"].get("position") or "Id"
            ordered = sorted(lines, key=lambda r: (to_decimal(r.get(position) or 0) if position != "Id" else 0,
                                                   str(r.get("Id"))))
            built = tuple(self._line(r) for r in ordered)
            if self.m["invoice"].get("amount_paid"):
                paid = to_decimal(self._get(record, "invoice", "amount_paid") or "0")
            else:  # no amount field (Opportunity mode): a paid record is paid in full
                gross = Invoice.model_construct(lines=built, currency=currency).gross_total.amount  # type: ignore[attr-defined]
                paid = gross if status is InvoiceStatus.PAID else Decimal("0")
            supply, due = self._get(record, "invoice", "supply_date"), self._get(record, "invoice", "due_date")
            return Invoice(
                source_id=record_id,
                number=self._get(record, "invoice", "number"),
                currency=currency,
                issue_date=_day(self._required(record, "invoice", "issue_date", "invoice")),
                supply_date=_day(supply) if supply else None,
                due_date=_day(due) if due else None,
                customer=self._party(record),
                lines=built,
                payments=self._payments(record, payments, currency, paid),
                status=status,
                amount_paid=Money(amount=paid, currency=currency),
                exchange_rate=self._rate(record, currency),
                modified_at=parse_when(self._required(record, "invoice", "modified", "invoice")),
                deal_id=self._get(record, "invoice", "deal"),
                properties={name: _text(record[name]) for name in self._names("invoice", skip=("account", "contact"))
                            if record.get(name) is not None} | self._disputed(record),
            )
        except BadRecord as exc:
            raise BadRecord(f"Salesforce {self.objects['invoice']} {record_id}: {exc}") from None
        except (ValidationError, ValueError, ArithmeticError) as exc:
            raise BadRecord(f"Salesforce {self.objects['invoice']} {record_id} is not a valid invoice: {exc}") from None


def _text(value: Any) -> str:
    """A field value as text; Decimals in plain notation (no exponent)."""
    return format(value, "f") if isinstance(value, Decimal) else str(value).strip()


def _id_of(record: Record) -> str:
    url = str((record.get("attributes") or {}).get("url") or "")
    return str(record.get("Id") or url.rsplit("/", 1)[-1])
