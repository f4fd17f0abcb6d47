"""The diff: which payment events a change of a CRM invoice means."""

from decimal import Decimal

from pouracquit.common.model import InvoiceStatus
from pouracquit.common.money import Money
from pouracquit.core.diff import PaymentEvent, Seen, diff


def seen(inv, paid_version: int = 0) -> Seen:  # type: ignore[no-untyped-def]
    return Seen(status=inv.status, amount_paid=inv.amount_paid.amount, fully_paid=inv.fully_paid,
                fingerprint=inv.content_fingerprint(), paid_version=paid_version)


def test_first_sight_of_a_paid_invoice_is_paid(make_invoice) -> None:  # type: ignore[no-untyped-def]
    assert diff(None, make_invoice()) == [PaymentEvent.PAID]


def test_open_invoice_means_nothing(make_invoice) -> None:  # type: ignore[no-untyped-def]
    assert diff(None, make_invoice(paid=None)) == []


def test_partial_then_full_gives_one_paid(make_invoice) -> None:  # type: ignore[no-untyped-def]
    first = make_invoice(paid="100")
    assert diff(None, first) == [PaymentEvent.PARTIALLY_PAID]
    second = make_invoice(paid="200")
    assert diff(seen(first), second) == [PaymentEvent.PARTIALLY_PAID]
    full = make_invoice()
    assert diff(seen(second), full) == [PaymentEvent.PAID]
    assert diff(seen(full, 1), full) == []


def test_unchanged_paid_invoice_means_nothing(make_invoice) -> None:  # type: ignore[no-untyped-def]
    inv = make_invoice()
    assert diff(seen(inv, 1), inv) == []


def test_refund_is_flagged_not_receipted(make_invoice) -> None:  # type: ignore[no-untyped-def]
    paid = make_invoice()
    refunded = make_invoice(paid="0")
    assert diff(seen(paid, 1), refunded) == [PaymentEvent.REFUNDED]


def test_void_after_payment(make_invoice) -> None:  # type: ignore[no-untyped-def]
    paid = make_invoice()
    voided = make_invoice(paid=None, status=InvoiceStatus.VOID)
    assert diff(seen(paid, 1), voided) == [PaymentEvent.VOIDED]
    assert diff(None, voided) == []


def test_edit_after_payment_is_flagged_once(make_invoice) -> None:  # type: ignore[no-untyped-def]
    paid = make_invoice()
    edited = make_invoice(customer="Autre Client SARL")
    assert diff(seen(paid, 1), edited) == [PaymentEvent.CHANGED_AFTER_PAID]
    assert diff(seen(edited, 1), edited) == []


def test_paid_again_after_refund_is_a_new_payment(make_invoice) -> None:  # type: ignore[no-untyped-def]
    refunded = make_invoice(paid="0")
    assert diff(seen(refunded, 1), make_invoice()) == [PaymentEvent.PAID]


def test_paid_status_with_balance_left_is_partial(make_invoice) -> None:  # type: ignore[no-untyped-def]
    inv = make_invoice(paid="10", status=InvoiceStatus.PAID)
    assert not inv.fully_paid
    assert inv.balance_due == Money(amount=Decimal("230.00"), currency="EUR")
    assert diff(None, inv) == [PaymentEvent.PARTIALLY_PAID]


def test_each_refund_after_the_receipt_is_an_event(make_invoice) -> None:  # type: ignore[no-untyped-def]
    paid = make_invoice()
    part = make_invoice(paid="100")
    assert diff(seen(paid, 1), part) == [PaymentEvent.REFUNDED]
    less = make_invoice(paid="40")
    assert diff(seen(part, 1), less) == [PaymentEvent.REFUNDED]
    # without a receipt, a lower paid amount is a CRM correction, not a refund to credit
    assert diff(seen(part, 0), less) == []
