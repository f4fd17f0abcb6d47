"""What the Xero ledger tests share: a ledger on a sandbox, receipt and credit
note orders, and the sandbox's state, call counters and scripted faults."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import requests
from support import DictTokens, fast_context

from pouracquit.common.model import CreditReference, Invoice, InvoiceStatus, Line, Party, Payment, PaymentMethod
from pouracquit.common.money import Money
from pouracquit.connectors.base import ReceiptOrder
from pouracquit.connectors.xero.ledger import XeroLedger
from pouracquit.sandbox.xero.emulator import DEMO_CLIENT_ID, DEMO_TENANT_ID, XeroSandbox

TIME_FACTOR = 0.01
PAID_AT = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)  # 2026-03-05 in Paris


def make_ledger(sb: XeroSandbox, tokens: DictTokens, **overrides: Any) -> XeroLedger:
    settings = {
        "base_url": sb.api_url, "identity_url": sb.url, "tenant_id": DEMO_TENANT_ID,
        "client_id": DEMO_CLIENT_ID, "client_secret": {"env": "XERO_CLIENT_SECRET"},
        "refresh_token": {"env": "XERO_REFRESH_TOKEN"}, **overrides,
    }
    ctx = fast_context(tokens, TIME_FACTOR)
    return XeroLedger.from_settings({k: v for k, v in settings.items() if v is not None}, ctx)


def order(number: str = "F-2026-0001", *, name: str = "Boulangerie Martin", email: str = "",
          rates: tuple[str, ...] = ("20",), key: str | None = None, prices: tuple[str, ...] | None = None,
          currency: str = "EUR", exchange_rate: str | None = None, discount: str = "0",
          paid: Sequence[tuple[datetime, str, PaymentMethod, str]] | None = None) -> ReceiptOrder:
    """A paid receipt: three units a line, one payment of the total unless ``paid`` lists
    (when, amount, method, reference) of each."""
    lines = tuple(
        Line(description=f"Prestation {i}", quantity=Decimal("3"), discount=Decimal(discount),
             unit_price=Decimal(prices[i - 1] if prices else "100.00"), vat_rate=rate)
        for i, rate in enumerate(rates, 1)
    )
    gross = Invoice.model_construct(lines=lines, currency=currency).gross_total
    payments = tuple(Payment(amount=Money(amount=a, currency=currency), paid_at=at, method=m, reference=r)
                     for at, a, m, r in paid) if paid else (
        Payment(amount=gross, paid_at=PAID_AT, method=PaymentMethod.TRANSFER, reference="VIR-778"),)
    invoice = Invoice(
        source_id=f"src-{number}", number=number, currency=currency, issue_date=date(2026, 3, 1),
        customer=Party(name=name, email=email), lines=lines, status=InvoiceStatus.PAID, payments=payments,
        amount_paid=gross, modified_at=datetime(2026, 3, 5, tzinfo=UTC), exchange_rate=exchange_rate,
    )
    return ReceiptOrder(key=key or f"pa-{number}", number=number, invoice=invoice)


def credit(original: ReceiptOrder, number: str, *, reason: str = "refund", key: str | None = None,
           refunded_at: datetime = datetime(2026, 4, 2, 22, 15, tzinfo=UTC)) -> ReceiptOrder:
    """A credit note crediting the whole of ``original``: its lines, one payment = the money returned."""
    invoice = original.invoice
    refund = Payment(amount=invoice.gross_total, paid_at=refunded_at, method=PaymentMethod.TRANSFER,
                     reference="REMB-12")
    credited = invoice.model_copy(update={"payments": (refund,) if reason == "refund" else ()})
    return ReceiptOrder(key=key or f"pa-{number}", number=number, invoice=credited,
                        credits=CreditReference(number=original.number, issue_date=invoice.issue_date,
                                                reason=reason))  # type: ignore[arg-type]


def state(sb: XeroSandbox) -> dict[str, Any]:
    return requests.get(sb.url + "/_sandbox/state", timeout=5).json()


def calls(sb: XeroSandbox) -> dict[str, Any]:
    return requests.get(sb.url + "/_sandbox/calls", timeout=5).json()


def faults(sb: XeroSandbox, *scripted: dict[str, Any]) -> None:
    requests.post(sb.url + "/_sandbox/faults", json={"scripted": list(scripted)}, timeout=5).raise_for_status()
