"""QuickBooksLedger against the sandbox: credit notes, foreign currency, payment mode, VAT detail."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from support import DictTokens
from test_quickbooks_ledger import _secrets, calls, faults, make_ledger, order, sandbox, state

from pouracquit.common.errors import BadRecord, PermanentError, RetryableError
from pouracquit.common.model import CreditReference, Invoice, Line, Party, Payment, PaymentMethod
from pouracquit.common.money import Money
from pouracquit.connectors.base import Document, ReceiptOrder, WebhookRequest
from pouracquit.connectors.quickbooks.docs import Builder
from pouracquit.connectors.signatures import body_signature
from pouracquit.sandbox.quickbooks.emulator import DEMO_CLIENT_SECRET, QuickBooksSandbox

__all__ = ["_secrets", "sandbox"]  # fixtures shared with test_quickbooks_ledger
REFUNDED = datetime(2026, 4, 10, 8, 0, tzinfo=UTC)


def credit(original: ReceiptOrder, number: str, *, refunded: bool = True, reason: str = "refund",
           ledger_id: str = "") -> ReceiptOrder:
    invoice = original.invoice
    refund = Payment(amount=invoice.gross_total, paid_at=REFUNDED, method=PaymentMethod.CARD, reference="RB-9")
    credited = invoice.model_copy(update={"payments": (refund,) if refunded else ()})
    return ReceiptOrder(key=f"rcpt-{number}", number=number, invoice=credited, credits=CreditReference(
        number=original.number, issue_date=invoice.issue_date, reason=reason, ledger_id=ledger_id))  # type: ignore[arg-type]


def in_currency(base: ReceiptOrder, currency: str, rate: str | None, number: str, *,
                name: str = "Acme Corp") -> ReceiptOrder:
    lines = (Line(description="Conseil", quantity=Decimal("3"), unit_price=Decimal("120.50"), vat_rate=Decimal("0")),)
    draft = Invoice.model_construct(lines=lines, currency=currency)
    gross = draft.gross_total
    invoice = base.invoice.model_copy(update={
        "currency": currency, "lines": lines, "number": number, "exchange_rate": Decimal(rate) if rate else None,
        "customer": Party(name=name, email="ap@acme.example"), "amount_paid": gross,
        "payments": (Payment(amount=gross, paid_at=datetime(2026, 3, 4, 10, 0, tzinfo=UTC),
                             method=PaymentMethod.TRANSFER, reference="WIRE-1"),)})
    return ReceiptOrder(key=f"rcpt-{number}", number=number, invoice=invoice)


def test_refund_is_a_refund_receipt_out_of_the_bank(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    original = order("F-10", rates=("20", "5.5"))
    receipt_id = ledger.record_receipt(original, may_exist=False)
    note = credit(original, "AV-10", ledger_id=receipt_id)
    ref = ledger.record_receipt(note, may_exist=False)
    assert ref.startswith("RefundReceipt:") and ledger.find_receipt(note) == ref
    assert ledger.record_receipt(note, may_exist=True) == ref
    assert ledger.record_receipt(note, may_exist=False) == ref  # duplicate DocNumber fault -> lookup
    (refund,) = state(sandbox)["RefundReceipts"]
    (sale,) = state(sandbox)["SalesReceipts"]
    assert refund["DocNumber"] == "AV-10" and refund["TxnDate"] == "2026-04-10"
    assert refund["DepositToAccountRef"]["value"] == "1" and refund["PaymentMethodRef"]["value"] == "2"
    assert refund["PaymentRefNum"] == "RB-9" and "F-10" in refund["PrivateNote"]
    assert [ln["SalesItemLineDetail"]["TaxCodeRef"] for ln in refund["Line"][:-1]] == \
        [ln["SalesItemLineDetail"]["TaxCodeRef"] for ln in sale["Line"][:-1]]
    assert Decimal(str(refund["TotalAmt"])) == note.invoice.gross_total.amount
    pdf = Document(name="avoir-AV-10.pdf", content=b"%PDF-1.7 avoir")
    attached = ledger.attach(ref, pdf, may_exist=False)
    assert ledger.attach(ref, pdf, may_exist=True) == attached
    (stored,) = state(sandbox)["Attachables"]
    assert stored["AttachableRef"][0]["EntityRef"]["type"] == "RefundReceipt"
    assert stored["AttachableRef"][0]["EntityRef"]["value"] == ref.split(":")[1]


def test_credit_kept_on_account_is_a_credit_memo(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    note = credit(order("F-11"), "AV-11", refunded=False, reason="cancellation")
    ref = ledger.record_receipt(note, may_exist=False)
    assert ref.startswith("CreditMemo:") and ledger.record_receipt(note, may_exist=True) == ref
    (memo,) = state(sandbox)["CreditMemos"]
    assert memo["TxnDate"] == "2026-03-01" and "DepositToAccountRef" not in memo
    assert Decimal(str(memo["RemainingCredit"])) == Decimal(str(memo["TotalAmt"])) == Decimal("240.00")


def test_credit_note_number_taken_by_another_document_stops(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    ledger.record_receipt(credit(order("F-12"), "AV-12"), may_exist=False)
    stranger = credit(order("F-13"), "AV-12")
    stranger = ReceiptOrder(key="someone-else", number="AV-12", invoice=stranger.invoice, credits=stranger.credits)
    with pytest.raises(PermanentError, match=r"RefundReceipt \d+, which pouracquit did not book"):
        ledger.record_receipt(stranger, may_exist=False)


def test_booked_vat_is_the_documents_and_a_different_total_stops(sandbox: QuickBooksSandbox, tokens: DictTokens,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = make_ledger(sandbox, tokens)
    lines = tuple(Line(description=f"L{i}", quantity=Decimal("1"), unit_price=Decimal(p), vat_rate=Decimal(r))
                  for i, (p, r) in enumerate([("0.05", "5.5"), ("0.05", "5.5"), ("0.05", "5.5"), ("10.01", "20")]))
    base = order("F-14")
    draft = Invoice.model_construct(lines=lines, currency="EUR")
    paid = (Payment(amount=draft.gross_total, paid_at=datetime(2026, 3, 4, tzinfo=UTC)),)
    invoice = base.invoice.model_copy(update={"lines": lines, "payments": paid, "amount_paid": draft.gross_total})
    ledger.record_receipt(ReceiptOrder(key="rcpt-F-14", number="F-14", invoice=invoice), may_exist=False)
    (receipt,) = state(sandbox)["SalesReceipts"]
    taxes = sorted((Decimal(str(t["TaxLineDetail"]["TaxPercent"])), Decimal(str(t["Amount"])))
                   for t in receipt["TxnTaxDetail"]["TaxLine"])
    assert taxes == sorted((b.rate, b.tax) for b in invoice.vat_breakdown())
    assert Decimal(str(receipt["TxnTaxDetail"]["TotalTax"])) == invoice.vat_total.amount

    real = Builder.tax_detail

    def off_by_a_cent(inv: Invoice, codes: list[Any]) -> Any:
        detail = real(inv, codes)
        detail.TaxLine[0].Amount += Decimal("0.01")
        return detail

    monkeypatch.setattr(Builder, "tax_detail", staticmethod(off_by_a_cent))
    with pytest.raises(PermanentError, match=r"totals 240\.01 EUR in QuickBooks but the invoice F-15 totals 240\.00"):
        ledger.record_receipt(order("F-15"), may_exist=False)


def test_foreign_currency_booked_with_its_rate_and_its_own_customer(sandbox: QuickBooksSandbox,
                                                                     tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    usd = ledger.record_receipt(in_currency(order(), "USD", "0.9215", "FX-1"), may_exist=False)
    again = ledger.record_receipt(in_currency(order(), "USD", "0.9301", "FX-2"), may_exist=False)
    eur = ledger.record_receipt(order("FX-3", name="Acme Corp", email="ap@acme.example"), may_exist=False)
    rows = {r["Id"]: r for r in state(sandbox)["SalesReceipts"]}
    assert rows[usd]["CurrencyRef"]["value"] == "USD" and Decimal(str(rows[usd]["ExchangeRate"])) == Decimal("0.9215")
    assert Decimal(str(rows[usd]["HomeTotalAmt"])) == Decimal("333.12")  # 361.50 USD x 0.9215
    assert rows[usd]["PrivateNote"].endswith("taux 0.9215 EUR/USD")
    assert rows[usd]["CustomerRef"] == rows[again]["CustomerRef"] != rows[eur]["CustomerRef"]
    customers = {c["Id"]: c for c in state(sandbox)["Customers"]}
    dollar = customers[rows[usd]["CustomerRef"]["value"]]
    assert dollar["DisplayName"] == "Acme Corp (USD)" and dollar["CurrencyRef"]["value"] == "USD"
    assert customers[rows[eur]["CustomerRef"]["value"]]["CurrencyRef"]["value"] == "EUR"
    with pytest.raises(BadRecord, match="exchange_rate"):
        ledger.record_receipt(in_currency(order(), "USD", None, "FX-4"), may_exist=False)


def test_multicurrency_off_stops_a_foreign_receipt_with_the_setting_to_switch(tokens: DictTokens) -> None:
    with QuickBooksSandbox(time_factor=0.01, multicurrency=False) as box:
        ledger = make_ledger(box, tokens)
        with pytest.raises(PermanentError, match="Advanced > Currency > Multicurrency"):
            ledger.record_receipt(in_currency(order(), "USD", "0.92", "FX-5"), may_exist=False)
        assert ledger.record_receipt(order("FX-6"), may_exist=False)
        assert not [c for c in state(box)["Customers"] if c["CurrencyRef"]["value"] != "EUR"]
        assert ledger.record_receipts([in_currency(order(), "USD", "0.92", "FX-7")]) == {}


def two_payments(number: str) -> ReceiptOrder:
    base = order(number, rates=("20",))
    first = Payment(amount=Money(amount="100.00", currency="EUR"), paid_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
                    method=PaymentMethod.CHECK, reference="CHQ-1")
    second = Payment(amount=Money(amount="140.00", currency="EUR"), paid_at=datetime(2026, 3, 9, 9, 0, tzinfo=UTC),
                     method=PaymentMethod.TRANSFER, reference="VIR-2")
    return ReceiptOrder(key=base.key, number=number,
                        invoice=base.invoice.model_copy(update={"payments": (first, second)}))


def test_payment_mode_books_an_invoice_and_each_payment_once(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, mode="invoice_payment")
    paid = two_payments("P-1")
    faults(sandbox, {"kind": "drop", "method": "POST", "path": "/payment$", "count": 1})
    ref = ledger.record_receipt(paid, may_exist=False)
    assert ref.startswith("Invoice:") and ledger.find_receipt(paid) == ref
    created = calls(sandbox)["by_operation"]["create Payment"]
    assert ledger.record_receipt(paid, may_exist=True) == ref
    assert calls(sandbox)["by_operation"]["create Payment"] == created  # found through LinkedTxn
    (invoice,) = state(sandbox)["Invoices"]
    assert invoice["TxnDate"] == "2026-03-01" and Decimal(str(invoice["Balance"])) == 0
    payments = state(sandbox)["Payments"]
    assert [(p["TxnDate"], Decimal(str(p["TotalAmt"])), p["PaymentMethodRef"]["value"], p["PaymentRefNum"])
            for p in payments] == [("2026-03-02", Decimal("100.00"), "3", "CHQ-1"),
                                   ("2026-03-09", Decimal("140.00"), "1", "VIR-2")]
    assert all(p["DepositToAccountRef"]["value"] == "1" for p in payments)
    assert {link["TxnId"] for link in invoice["LinkedTxn"]} == {p["Id"] for p in payments}
    assert ledger.record_receipts([two_payments("P-2")]) == {}  # the batch path is for SalesReceipts


def test_payment_mode_completes_the_payments_a_crash_left_out(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, mode="invoice_payment")
    paid = two_payments("P-3")
    faults(sandbox, {"kind": "error", "method": "POST", "path": "/payment$", "count": 50})
    with pytest.raises(RetryableError):
        ledger.record_receipt(paid, may_exist=False)
    assert state(sandbox)["Payments"] == [] and len(state(sandbox)["Invoices"]) == 1
    faults(sandbox)
    ref = make_ledger(sandbox, tokens, mode="invoice_payment").record_receipt(paid, may_exist=True)
    assert len(state(sandbox)["Invoices"]) == 1 and len(state(sandbox)["Payments"]) == 2
    assert ref == ledger.find_receipt(paid)


def test_batch_leaves_credit_notes_to_the_one_by_one_path(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    plain, note = order("B-1"), credit(order("B-2"), "AV-B")
    booked = ledger.record_receipts([plain, note])
    assert list(booked) == [plain.key] and state(sandbox)["RefundReceipts"] == []


def test_webhook_names_credit_documents_by_their_ledger_id(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, webhook_verifier_token={"env": "QB_CLIENT_SECRET"})
    body = json.dumps({"eventNotifications": [{"realmId": ledger.settings.realm_id, "dataChangeEvent": {"entities": [
        {"name": "RefundReceipt", "id": "41", "operation": "Void"},
        {"name": "SalesReceipt", "id": "7", "operation": "Update"},
        {"name": "Vendor", "id": "3", "operation": "Create"}]}}]}).encode()
    signature = body_signature(DEMO_CLIENT_SECRET, body)
    changes = ledger.parse_ledger_webhook(WebhookRequest(method="POST", url="https://pa.example/webhooks/quickbooks",
                                                         headers={"intuit-signature": signature}, body=body))
    assert [(c.ref, c.destructive) for c in changes] == [("RefundReceipt:41", True), ("7", False)]


def test_issue_dates_stay_the_documents(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, mode="invoice_payment")
    paid = two_payments("P-4")
    invoice = paid.invoice.model_copy(update={"due_date": date(2026, 3, 31)})
    ledger.record_receipt(ReceiptOrder(key=paid.key, number="P-4", invoice=invoice), may_exist=False)
    (booked,) = state(sandbox)["Invoices"]
    assert (booked["TxnDate"], booked["DueDate"]) == ("2026-03-01", "2026-03-31")


def test_a_foreign_customer_a_person_created_under_its_bare_name_is_reused(sandbox: QuickBooksSandbox,
                                                                         tokens: DictTokens) -> None:
    sandbox.seed({"Customer": [{"DisplayName": "Globex", "CurrencyRef": {"value": "GBP"}, "Active": True}]})
    ledger = make_ledger(sandbox, tokens)
    ref = ledger.record_receipt(in_currency(order(), "GBP", "1.1702", "FX-8", name="Globex"), may_exist=False)
    (receipt,) = [r for r in state(sandbox)["SalesReceipts"] if r["Id"] == ref]
    globex = next(c for c in state(sandbox)["Customers"] if c["DisplayName"] == "Globex")
    assert receipt["CustomerRef"]["value"] == globex["Id"]
    assert len(state(sandbox)["Customers"]) == 4  # the three demo customers and Globex
