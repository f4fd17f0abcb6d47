"""Money and VAT arithmetic: exact Decimals, per-rate rounding (BR-CO-17)."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pouracquit.common.model import Line
from pouracquit.common.money import Money, round_cents, to_decimal

RATES = ["20", "10", "5.5", "2.1", "0"]


def test_money_refuses_mixed_currencies() -> None:
    with pytest.raises(ValueError, match="EUR and USD"):
        Money(amount="1", currency="EUR") + Money(amount="1", currency="USD")


def test_unknown_currency_is_named() -> None:
    with pytest.raises(ValueError, match="unknown currency code 'EUX'"):
        Money(amount="1", currency="EUX")


def test_float_input_keeps_its_decimal_meaning() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert Money(amount=0.1, currency="eur").amount == Decimal("0.1")


def test_half_up_rounding() -> None:
    assert round_cents(Decimal("0.005")) == Decimal("0.01")
    assert round_cents(Decimal("2.675")) == Decimal("2.68")


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", True])
def test_not_a_number(bad: object) -> None:
    with pytest.raises(ValueError):
        to_decimal(bad)


def test_vat_is_rounded_once_per_rate(make_invoice) -> None:  # type: ignore[no-untyped-def]
    # three lines of 0.33 at 20 %: per-line rounding would give 0.21, per-rate 0.20
    inv = make_invoice(lines=[("1", "0.33", "20")] * 3)
    (bucket,) = inv.vat_breakdown()
    assert bucket.base == Decimal("0.99") and bucket.tax == Decimal("0.20")
    assert inv.gross_total == Money(amount="1.19", currency="EUR")


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
quantities = st.decimals(min_value=Decimal("1"), max_value=Decimal("1000"), places=3)
lines = st.lists(st.tuples(quantities, amounts, st.sampled_from(RATES)), min_size=1, max_size=40)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixture is a pure function
@given(triples=lines)
def test_totals_add_up_to_the_cent(make_invoice, triples) -> None:  # type: ignore[no-untyped-def]
    inv = make_invoice(lines=[(str(q), str(p), r) for q, p, r in triples], paid=None)
    breakdown = inv.vat_breakdown()
    assert sum(b.base for b in breakdown) == inv.net_total.amount
    assert sum(b.tax for b in breakdown) == inv.vat_total.amount
    assert inv.gross_total.amount == inv.net_total.amount + inv.vat_total.amount
    for b in breakdown:
        assert b.tax == round_cents(b.base * b.rate / 100)
        assert b.tax.as_tuple().exponent >= -2
    assert all(line.net == round_cents(line.net) for line in inv.lines)


@given(st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=4))
def test_line_net_is_rounded_to_the_cent(price) -> None:  # type: ignore[no-untyped-def]
    line = Line(description="x", quantity="3", unit_price=price, vat_rate="20")
    assert line.net == round_cents(Decimal(3) * price)
