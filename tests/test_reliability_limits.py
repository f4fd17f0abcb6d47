"""check_limits: a record outside the windows is a BadRecord naming the field
and the fix, before it reaches the renderer, a ledger or the state store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Address, Invoice, Payment, PaymentMethod
from pouracquit.core.limits import DESCRIPTION_MAX, NUMBER_MAX, check_limits

TODAY = date(2026, 11, 30)


def _payment_on(when: datetime) -> Callable[[Invoice], dict[str, Any]]:
    def change(inv: Invoice) -> dict[str, Any]:
        paid = inv.payments[0]
        return {"payments": (Payment(amount=paid.amount, paid_at=when, method=PaymentMethod.TRANSFER),)}
    return change


def _line(description: str) -> Callable[[Invoice], dict[str, Any]]:
    def change(inv: Invoice) -> dict[str, Any]:
        first = inv.lines[0]
        return {"lines": (first.model_copy(update={"description": description}), *inv.lines[1:])}
    return change


def _customer(**fields: Any) -> Callable[[Invoice], dict[str, Any]]:
    return lambda inv: {"customer": inv.customer.model_copy(update=fields)}


def test_an_ordinary_invoice_passes(make_invoice) -> None:  # type: ignore[no-untyped-def]
    check_limits(make_invoice(), TODAY)
    check_limits(make_invoice(number=""), TODAY)  # pouracquit numbers it


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        (_payment_on(datetime(9999, 12, 31, tzinfo=UTC)), r"payments\[0\]\.paid_at 9999-12-31", "correct the date"),
        (_payment_on(datetime(2026, 12, 25, tzinfo=UTC)), r"payments\[0\]\.paid_at 2026-12-25", "correct the date"),
        (lambda inv: {"issue_date": date(2015, 1, 1)}, "issue_date 2015-01-01", "correct the date"),
        (lambda inv: {"issue_date": date(2027, 1, 1)}, "issue_date 2027-01-01", "correct the date"),
        (lambda inv: {"due_date": date(2100, 1, 1)}, "due_date 2100-01-01", "correct the date"),
        (lambda inv: {"supply_date": date(1999, 12, 31)}, "supply_date 1999-12-31", "correct the date"),
        (_line("x" * 100_000), r"lines\[0\]\.description is 100000 characters", "shorten it in the CRM"),
        (lambda inv: {"number": "F-" + "9" * 60}, "number is 62 characters.*BR-FR-01", "shorten it"),
        (lambda inv: {"number": "F 2026 001"}, "number 'F 2026 001' may only hold.*BR-FR-02", "renumber it"),
        (lambda inv: {"source_id": "9" * 201}, "source_id is 201 characters", "shorten it"),
        (_customer(name="Société " * 40), "customer.name is 320 characters", "shorten it"),
        (_customer(email="a" * 250 + "@x.fr"), "customer.email", "shorten it"),
        (_customer(address=Address(line1="rue " * 200)), "customer.address.line1", "shorten it"),
        (_customer(address=Address(postal_code="7" * 60)), "customer.address.postal_code", "shorten it"),
    ],
)
def test_out_of_window_values_name_the_field_and_the_fix(make_invoice, change, field: str, fix: str) -> None:  # type: ignore[no-untyped-def]
    invoice = make_invoice()
    bad = invoice.model_copy(update=change(invoice))
    with pytest.raises(BadRecord, match=f"{field}.*{fix}"):
        check_limits(bad, TODAY)


def test_the_edges_are_inside(make_invoice) -> None:  # type: ignore[no-untyped-def]
    invoice = make_invoice(number="F/" + "1" * (NUMBER_MAX - 2), issue_date=date(2016, 11, 30),
                           due_date=date(2036, 11, 30))
    invoice = invoice.model_copy(update=_line("é" * DESCRIPTION_MAX)(invoice))
    invoice = invoice.model_copy(update=_payment_on(datetime(2026, 12, 1, 23, 0, tzinfo=UTC))(invoice))
    check_limits(invoice, TODAY)  # a payment dated tomorrow in the CRM's time zone is a day of slack


def test_a_leap_day_today_still_has_a_window(make_invoice) -> None:  # type: ignore[no-untyped-def]
    check_limits(make_invoice(issue_date=date(2028, 2, 1)), date(2028, 2, 29))

