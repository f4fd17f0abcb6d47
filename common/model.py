"""The vendor-neutral invoice every mapping produces and every step consumes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from . import identifiers
from .money import Money, bounded, is_currency, round_cents, to_decimal

# Characters XML 1.0 (and so Factur-X) cannot carry: refused at the door, with the field's name.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class PaymentMethod(StrEnum):
    TRANSFER = "transfer"
    CARD = "card"
    CHECK = "check"
    CASH = "cash"
    DIRECT_DEBIT = "direct_debit"
    OTHER = "other"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, v: object, info: ValidationInfo) -> object:
        if isinstance(v, str) and (bad := _NOT_XML.search(v)):
            raise ValueError(f"{info.field_name} contains U+{ord(bad.group()):04X} at position {bad.start()}, "
                             "which an invoice cannot print: remove it in the CRM")
        return v


class Address(_Frozen):
    line1: str = ""
    line2: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "FR"


class Party(_Frozen):
    """The buyer as the CRM knows it; ``kind`` decides the B2B mentions."""

    name: str
    kind: Literal["company", "person"] = "company"
    email: str = ""
    address: Address = Address()
    siren: str = ""
    vat_number: str = ""
    external_id: str = ""

    @field_validator("name")
    @classmethod
    def _named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("customer name is empty")
        return v.strip()

    # Identifiers are checked with python-stdnum (core.identifiers) when the record is
    # mapped: a typo quarantines the record with the field named instead of being printed.
    @field_validator("siren")
    @classmethod
    def _siren(cls, v: str) -> str:
        if not v.strip():
            return ""
        try:
            return identifiers.siren(v, "customer.siren")
        except ValueError as err:
            raise ValueError(f"{err}: correct it in the CRM") from None

    @field_validator("vat_number")
    @classmethod
    def _vat_number(cls, v: str, info: ValidationInfo) -> str:
        if not v.strip():
            return ""
        address, siren = info.data.get("address"), info.data.get("siren", "")
        try:
            number = identifiers.buyer_vat(v, address.country if address else "", "customer.vat_number")
        except ValueError as err:
            raise ValueError(f"{err}: correct it in the CRM") from None
        if not identifiers.vat_built_on(number, siren):
            raise ValueError(f"customer.vat_number {number} is not built on customer.siren {siren}: correct one "
                             "of them in the CRM")
        return number


class Line(_Frozen):
    """One invoice line; amounts exclude VAT, the rate is a percentage."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal
    discount: Decimal = Decimal("0")
    kind: Literal["goods", "services"] = "services"
    vat_exemption: str = ""
    sku: str = ""

    @field_validator("quantity", "unit_price", "vat_rate", "discount", mode="before")
    @classmethod
    def _exact(cls, v: object, info: ValidationInfo) -> Decimal:
        return bounded(to_decimal(v), str(info.field_name))

    @model_validator(mode="before")
    @classmethod
    def _discount_as_negative_quantity(cls, data: object) -> object:
        # EN16931 forbids a negative item price (BR-27): a discount entered in the CRM
        # as a line with a negative unit price becomes a negative quantity at that price.
        if isinstance(data, dict) and "unit_price" in data and "quantity" in data:
            try:
                price, qty = to_decimal(data["unit_price"]), to_decimal(data["quantity"])
            except (ArithmeticError, TypeError, ValueError):
                return data  # the field validators name the bad value
            if price < 0:
                return {**data, "unit_price": -price, "quantity": -qty}
        return data

    @field_validator("vat_rate")
    @classmethod
    def _rate(cls, v: Decimal) -> Decimal:
        if not 0 <= v < 100:
            raise ValueError(f"vat_rate {v} % is not a VAT rate (0 to 100, 100 excluded)")
        return v

    @property
    def net(self) -> Decimal:
        """Line total excluding VAT, rounded to the cent (EN16931 BT-131)."""
        return round_cents(self.quantity * self.unit_price - self.discount)


class VatBucket(_Frozen):
    """VAT for one rate: the base is summed first, then rounded once (BR-CO-17)."""

    rate: Decimal
    base: Decimal
    tax: Decimal
    exemption: str = ""


class Payment(_Frozen):
    amount: Money
    paid_at: AwareDatetime
    method: PaymentMethod = PaymentMethod.OTHER
    reference: str = ""


class CreditReference(_Frozen):
    """What a credit note (facture d'avoir) credits: the original invoice as it
    was issued (BT-25 number, BT-26 date) and why."""

    number: str
    issue_date: date
    reason: Literal["refund", "cancellation"] = "refund"
    ledger_id: str = ""  # the original receipt's booking in the ledger, when it has one


class Invoice(_Frozen):
    """An invoice as read from a CRM, after mapping. Immutable."""

    source_id: str
    number: str = ""
    currency: str
    issue_date: date
    supply_date: date | None = None
    due_date: date | None = None
    customer: Party
    lines: tuple[Line, ...]
    payments: tuple[Payment, ...] = ()
    status: InvoiceStatus
    amount_paid: Money
    modified_at: AwareDatetime
    deal_id: str = ""
    properties: Mapping[str, str] = Field(default_factory=dict)
    # Euros for one unit of ``currency`` (QuickBooks' ExchangeRate convention, home = EUR).
    # From the CRM when its record has one, otherwise the ECB reference rate of the issue
    # date, filled in before the receipt is queued; ``exchange_rate_source`` names which.
    exchange_rate: Decimal | None = None
    exchange_rate_source: str = ""

    @field_validator("exchange_rate", mode="before")
    @classmethod
    def _positive_rate(cls, v: object) -> Decimal | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        rate = bounded(to_decimal(v), "exchange_rate")
        if rate <= 0:
            raise ValueError(f"exchange_rate must be positive, got {v!r}")
        return rate

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        code = v.strip().upper()
        if not is_currency(code):
            raise ValueError(f"unknown currency code {v!r} (expected ISO 4217, e.g. EUR)")
        return code

    @model_validator(mode="after")
    def _consistent(self) -> Invoice:
        if not self.lines:
            raise ValueError("invoice has no lines")
        if self.amount_paid.currency != self.currency:
            raise ValueError(
                f"paid amount is in {self.amount_paid.currency}, invoice in {self.currency}"
            )
        if self.amount_paid.amount < 0:
            raise ValueError(f"paid amount is negative: {self.amount_paid}")
        if self.gross_total.amount <= 0:
            raise ValueError(f"invoice total must be positive, got {self.gross_total}")
        if self.amount_paid.amount > self.gross_total.amount:
            raise ValueError(
                f"paid amount {self.amount_paid} exceeds the invoice total {self.gross_total}"
            )
        return self

    def _money(self, amount: Decimal) -> Money:
        return Money(amount=amount, currency=self.currency)

    def vat_breakdown(self) -> list[VatBucket]:
        buckets: dict[tuple[Decimal, str], Decimal] = {}
        for line in self.lines:
            key = (line.vat_rate.normalize(), line.vat_exemption)
            buckets[key] = buckets.get(key, Decimal("0")) + line.net
        return [
            VatBucket(rate=rate, base=base, tax=round_cents(base * rate / 100), exemption=ex)
            for (rate, ex), base in sorted(buckets.items(), key=lambda kv: (-kv[0][0], kv[0][1]))
        ]

    @property
    def net_total(self) -> Money:
        return self._money(sum((line.net for line in self.lines), Decimal("0")))

    @property
    def vat_total(self) -> Money:
        return self._money(sum((b.tax for b in self.vat_breakdown()), Decimal("0")))

    @property
    def gross_total(self) -> Money:
        return self.net_total + self.vat_total

    @property
    def balance_due(self) -> Money:
        return self.gross_total - self.amount_paid

    @property
    def fully_paid(self) -> bool:
        return self.status is InvoiceStatus.PAID and self.balance_due.is_zero()

    @property
    def nature(self) -> Literal["goods", "services", "mixed"]:
        kinds = {line.kind for line in self.lines}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def last_payment(self) -> Payment | None:
        return max(self.payments, key=lambda p: p.paid_at, default=None)

    def content_fingerprint(self) -> str:
        """Hash of what the document prints, payments and timestamps aside.

        A change of this value after a receipt was issued is a
        ``changed_after_paid`` event, never a silent second receipt.
        """
        content = self.model_dump_json(
            include={"number", "currency", "issue_date", "supply_date", "customer", "lines"}
        )
        return hashlib.sha256(content.encode()).hexdigest()
