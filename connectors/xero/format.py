"""How pouracquit's values are written in Xero's JSON: filter literals,
amounts, dates, exchange rates, and per-line VAT that adds up.

Facts cite Xero's OpenAPI spec vendored in ``sandbox/xero/spec``
(``spec#/...`` below is ``xero_accounting.yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pouracquit.common.errors import PermanentError
from pouracquit.common.model import Invoice, Payment
from pouracquit.common.money import round_cents
from pouracquit.connectors.base import ReceiptOrder
from pouracquit.connectors.ledger_base import rate_key as rate_key  # the [vat_rates] key, for callers here
from pouracquit.connectors.ledger_base import total_refused

NUMBER_MAX = 255
CONTACT_NAME_MAX = 255
REFERENCE_MAX = 255
CENT = Decimal("0.01")
# The currency Invoice.exchange_rate is expressed in (euros for one unit of the invoice's).
HOME_CURRENCY = "EUR"
# spec#/components/schemas/Invoice/properties/CurrencyRate: "(max length = [18].[6])".
RATE_STEP = Decimal("0.000001")
# The date a French company books a payment on: its own calendar day.
BOOKING_TZ = ZoneInfo("Europe/Paris")
_SAFE_LITERAL = re.compile(r'^[^"\\]*$')


def literal(value: str) -> str:
    """A ``where`` string literal. Xero's parser has no escape for ``"`` (``Name=="O\\"Brien"`` is a
    QueryParseException), so a value holding one is refused here rather than sent."""
    if not _SAFE_LITERAL.match(value):
        raise PermanentError(f"value {value!r} cannot appear in a Xero where filter (no escape for quotes)")
    return f'"{value}"'


def check_booked(kind: str, order: ReceiptOrder, row: Mapping[str, Any]) -> None:
    """Xero's Total and CurrencyCode of the document booked for ``order`` must be the order's."""
    refused = total_refused(f"Xero {kind} {row.get(kind + 'ID') or ''}".rstrip(), order, row.get("Total"),
                            row.get("CurrencyCode"), fix="check the tax rates of the mapping")
    if refused is not None:
        raise refused


def amount(value: Decimal) -> float:
    """A JSON number with exactly the decimal digits of ``value`` (float repr round-trips them)."""
    return float(value)


def booking_day(payment: Payment) -> date:
    return payment.paid_at.astimezone(BOOKING_TZ).date()


def xero_rate(exchange_rate: Decimal) -> Decimal:
    """Xero's CurrencyRate for ``Invoice.exchange_rate``: units of the document's currency for
    ONE unit of the organisation's base currency, the inverse of pouracquit's euros per unit.
    (spec#/paths/~1Quotes/get example: a NZ organisation's AUD quote of 2019-10-24 carries
    CurrencyRate 0.937053, the AUD a New Zealand dollar bought that day; docs/vendors.md.)"""
    return (Decimal(1) / exchange_rate).quantize(RATE_STEP, rounding=ROUND_HALF_UP)


def euros_per_unit(currency_rate: Decimal) -> Decimal:
    """The inverse of ``xero_rate``: what Xero holds, read back in Invoice.exchange_rate's terms."""
    return Decimal(1) / currency_rate


def line_taxes(invoice: Invoice) -> list[Decimal]:
    """Per-line VAT summing, per rate, to the invoice's own VAT (rounded once per rate, BR-CO-17).

    Xero rounds tax line by line; sending each line's TaxAmount, off by at most a
    cent from Xero's own, makes Xero's total the invoice's total."""
    taxes = [round_cents(line.net * line.vat_rate / 100) for line in invoice.lines]
    for bucket in invoice.vat_breakdown():
        members = [i for i, line in enumerate(invoice.lines)
                   if line.vat_rate.normalize() == bucket.rate and line.vat_exemption == bucket.exemption]
        diff = bucket.tax - sum((taxes[i] for i in members), Decimal("0"))
        members.sort(key=lambda i: -abs(invoice.lines[i].net))
        step = CENT if diff > 0 else -CENT
        k = 0
        while diff != 0 and members:
            taxes[members[k % len(members)]] += step
            diff -= step
            k += 1
    return taxes
