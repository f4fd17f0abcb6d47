"""XeroLedger against the Xero sandbox, beyond a plain receipt: credit notes and
their refunds, foreign currency, and one Xero payment per CRM payment, each
written exactly once through lost answers and outages."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from support import DictTokens
from xero_spec import violations
from xero_support import TIME_FACTOR, calls, credit, faults, make_ledger, order, state

from pouracquit.common.errors import BadRecord, PermanentError, RetryableError
from pouracquit.common.model import PaymentMethod
from pouracquit.common.money import Money
from pouracquit.connectors.base import Document, ReceiptOrder, WebhookRequest
from pouracquit.connectors.signatures import body_signature
from pouracquit.connectors.xero.ledger import XeroLedger
from pouracquit.sandbox.xero.emulator import DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, DEMO_TENANT_ID, XeroSandbox

TRANSFER, CARD = PaymentMethod.TRANSFER, PaymentMethod.CARD


@pytest.fixture
def sandbox() -> Iterator[XeroSandbox]:
    """The sandbox; every API call the ledger made must match Xero's OpenAPI spec."""
    with XeroSandbox(time_factor=TIME_FACTOR) as sb:
        yield sb  # type: ignore[misc]
        assert violations(sb.exchanges) == []


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XERO_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    monkeypatch.setenv("XERO_REFRESH_TOKEN", DEMO_REFRESH_TOKEN)


# -- credit notes ----------------------------------------------------------------------------
def test_refund_is_a_credit_note_paid_back_once(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    original = order("F-10", rates=("20", "5.5"))
    invoice_id = ledger.record_receipt(original, may_exist=False)
    note = credit(original, "AV-10")
    assert ledger.find_receipt(note) is None
    ref = ledger.record_receipt(note, may_exist=False)
    assert ref.startswith("creditnote:") and ref != invoice_id
    assert ledger.find_receipt(note) == ref == ledger.record_receipt(note, may_exist=True)
    (row,) = state(sandbox)["CreditNotes"]
    assert ref == "creditnote:" + row["CreditNoteID"]
    assert row["Type"] == "ACCRECCREDIT" and row["CreditNoteNumber"] == "AV-10" and row["Status"] == "PAID"
    assert row["Reference"] == "Avoir (remboursement) sur facture F-10 du 01/03/2026 pa-AV-10"
    assert row["Date"] == "/Date(1775174400000+0000)/"  # 2026-04-03: 22:15 UTC is the next day in Paris
    assert [li["TaxType"] for li in row["LineItems"]] == ["OUTPUT", "TAX002"]  # as the receipt's
    assert Decimal(str(row["Total"])) == original.invoice.gross_total.amount and row["RemainingCredit"] == 0
    refund = next(p for p in state(sandbox)["Payments"] if p["PaymentType"] == "ARCREDITPAYMENT")
    assert refund["CreditNote"]["CreditNoteID"] == row["CreditNoteID"] and refund["Account"]["Code"] == "512000"
    assert refund["Date"] == row["Date"] and refund["Reference"] == "Virement REMB-12"
    assert Decimal(str(refund["Amount"])) == original.invoice.gross_total.amount
    assert len(state(sandbox)["Payments"]) == 2 and len(state(sandbox)["Invoices"]) == 1
    assert ledger.find_receipt(original) == invoice_id  # the receipt is untouched


@pytest.mark.parametrize("path", [r"/CreditNotes$", r"/Payments$"])
def test_lost_answers_still_give_one_note_and_one_refund(sandbox: XeroSandbox, tokens: DictTokens,
                                                         path: str) -> None:
    ledger = make_ledger(sandbox, tokens)
    note = credit(order("F-11"), "AV-11")
    faults(sandbox, {"kind": "drop", "method": "PUT", "path": path, "count": 1})
    ref = ledger.record_receipt(note, may_exist=False)
    assert [ref] == ["creditnote:" + c["CreditNoteID"] for c in state(sandbox)["CreditNotes"]]
    assert len(state(sandbox)["Payments"]) == 1 and calls(sandbox)["idempotent_replays"] == 1


def test_note_without_its_refund_only_gets_the_refund(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    note = credit(order("F-12"), "AV-12")
    faults(sandbox, *[{"kind": "error", "method": "PUT", "path": r"/Payments$", "count": 1}] * 4)
    with pytest.raises(Exception):  # noqa: B017 - the outage outlasts the retries
        make_ledger(sandbox, tokens).record_receipt(note, may_exist=False)
    ledger = make_ledger(sandbox, tokens)
    assert ledger.find_receipt(note) is None  # approved but not refunded: not done
    ref = ledger.record_receipt(note, may_exist=True)
    (row,) = state(sandbox)["CreditNotes"]
    assert ref == "creditnote:" + row["CreditNoteID"] and row["Status"] == "PAID"
    assert len(state(sandbox)["Payments"]) == 1


def test_cancellation_is_a_credit_note_left_to_allocate(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    note = credit(order("F-13"), "AV-13", reason="cancellation")
    ref = ledger.record_receipt(note, may_exist=False)
    assert ledger.find_receipt(note) == ref == ledger.record_receipt(note, may_exist=True)
    (row,) = state(sandbox)["CreditNotes"]
    assert row["Status"] == "AUTHORISED" and row["RemainingCredit"] == row["Total"]
    assert row["Reference"].startswith("Avoir (annulation) sur facture F-13")
    assert row["Date"] == "/Date(1772668800000+0000)/"  # no refund: the day the CRM recorded it
    assert state(sandbox)["Payments"] == []


def test_a_credit_note_number_someone_else_used_is_refused(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    ledger.record_receipt(credit(order("F-14"), "AV-14", key="someone-else"), may_exist=False)
    with pytest.raises(PermanentError, match="did not book"):
        ledger.record_receipt(credit(order("F-14"), "AV-14"), may_exist=False)
    with pytest.raises(PermanentError, match="did not book"):
        ledger.find_receipt(credit(order("F-14"), "AV-14"))
    assert len(state(sandbox)["CreditNotes"]) == 1


def test_a_discounted_line_is_credited_at_its_net(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    """Xero credit notes take no discounts: the line goes as one unit at its net amount."""
    note = credit(order("F-15", discount="10.00"), "AV-15")
    make_ledger(sandbox, tokens).record_receipt(note, may_exist=False)
    ((line,),) = [c["LineItems"] for c in state(sandbox)["CreditNotes"]]
    assert line["Quantity"] == 1 and Decimal(str(line["UnitAmount"])) == Decimal("290")
    assert line["Description"] == "Prestation 1 (3 x 100.00, remise 10.00)"
    assert Decimal(str(state(sandbox)["CreditNotes"][0]["Total"])) == Decimal("348.00")


@pytest.mark.parametrize("mode", ["invoice_payment", "bank_transaction"])
def test_attach_to_a_credit_note_in_either_mode(sandbox: XeroSandbox, tokens: DictTokens, mode: str) -> None:
    ledger = make_ledger(sandbox, tokens, mode=mode)
    ref = ledger.record_receipt(credit(order("F-16"), "AV-16"), may_exist=False)
    assert state(sandbox)["CreditNotes"] and state(sandbox)["BankTransactions"] == []
    document = Document(name="facture-avoir-AV-16.pdf", content=b"%PDF-1.7 avoir")
    faults(sandbox, {"kind": "drop", "method": "PUT", "path": "/CreditNotes/[^/]+/Attachments/", "count": 1})
    attachment_id = ledger.attach(ref, document, may_exist=False)
    assert ledger.attach(ref, document, may_exist=True) == attachment_id
    (stored,) = state(sandbox)["CreditNotes"][0]["Attachments"]
    assert stored["FileName"] == document.name and stored["MimeType"] == "application/pdf"


def test_credit_note_webhooks_name_the_booked_ref(sandbox: XeroSandbox, tokens: DictTokens,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XERO_WEBHOOK_KEY", "k" * 32)
    ledger = make_ledger(sandbox, tokens, webhook_key={"env": "XERO_WEBHOOK_KEY"})
    body = json.dumps({"events": [
        {"resourceId": "c1", "eventCategory": "CREDITNOTE", "eventType": "UPDATE", "tenantId": DEMO_TENANT_ID,
         "data": {"Type": "ACCRECCREDIT", "Status": "VOIDED"}},
        {"resourceId": "c2", "eventCategory": "CREDITNOTE", "eventType": "CREATE", "tenantId": DEMO_TENANT_ID,
         "data": {"Type": "ACCRECCREDIT", "Status": "AUTHORISED"}},
        {"resourceId": "i1", "eventCategory": "INVOICE", "eventType": "UPDATE", "tenantId": DEMO_TENANT_ID},
        {"resourceId": "k1", "eventCategory": "CONTACT", "eventType": "UPDATE", "tenantId": DEMO_TENANT_ID}]}).encode()
    request = WebhookRequest("POST", "https://x/webhooks/xero",
                             {"x-xero-signature": body_signature("k" * 32, body)}, body)
    changes = [(c.ref, c.destructive) for c in ledger.parse_ledger_webhook(request)]
    assert changes == [("creditnote:c1", True), ("creditnote:c2", False), ("i1", False)]


# -- foreign currency ------------------------------------------------------------------------
def test_usd_invoice_is_booked_in_usd_at_the_invoices_rate(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    usd = order("US-1", rates=("0",), currency="USD", exchange_rate="0.9215")
    invoice_id = ledger.record_receipt(usd, may_exist=False)
    ledger.record_receipt(order("US-2", rates=("0",), currency="USD", exchange_rate="0.93"), may_exist=False)
    (invoice,) = [i for i in state(sandbox)["Invoices"] if i["InvoiceID"] == invoice_id]
    assert invoice["CurrencyCode"] == "USD" and invoice["Status"] == "PAID"
    # Xero's rate is US dollars for one euro: the inverse of the invoice's euros for one dollar.
    assert Decimal(str(invoice["CurrencyRate"])) == Decimal("1.085187")
    assert (1 / Decimal(str(invoice["CurrencyRate"]))).quantize(Decimal("0.0001")) == Decimal("0.9215")
    assert Decimal(str(invoice["Total"])) == usd.invoice.gross_total.amount == Decimal("300")
    assert calls(sandbox)["by_operation"]["list Currencies"] == 1  # read once, and only for a foreign currency
    assert ledger.record_receipt(usd, may_exist=True) == invoice_id


def test_a_currency_the_organisation_lacks_stops_the_receipt_naming_the_setting(tokens: DictTokens) -> None:
    with XeroSandbox(time_factor=TIME_FACTOR, currencies=("EUR",)) as sb:
        ledger = make_ledger(sb, tokens)  # type: ignore[arg-type]
        for number in ("US-3", "US-4"):
            with pytest.raises(PermanentError, match=r"currency USD: in Xero add it under Settings > Currencies"):
                ledger.record_receipt(order(number, currency="USD", exchange_rate="0.92"), may_exist=False)
        assert state(sb)["Invoices"] == []  # type: ignore[arg-type]
        assert calls(sb)["by_operation"]["list Currencies"] == 1  # type: ignore[arg-type]
        assert ledger.record_receipt(order("EU-1"), may_exist=False)  # euros go on
        assert violations(sb.exchanges) == []  # type: ignore[attr-defined]


def test_xeros_own_currency_refusal_names_the_setting_too(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    ledger.record_receipt(order("US-5", currency="USD", exchange_rate="0.92"), may_exist=False)
    sandbox.books.currencies = [c for c in sandbox.books.currencies if c["Code"] != "USD"]  # gone since
    with pytest.raises(PermanentError, match=r"not subscribed to currency USD.*Settings > Currencies"):
        ledger.record_receipt(order("US-6", currency="USD", exchange_rate="0.92"), may_exist=False)


# -- one payment per CRM payment -------------------------------------------------------------
TWO_PAYMENTS = ((datetime(2026, 3, 5, 9, 30, tzinfo=UTC), "100.00", TRANSFER, "VIR-A"),
                (datetime(2026, 3, 19, 23, 0, tzinfo=UTC), "260.00", CARD, "CB-B"))


def paid_rows(sb: XeroSandbox) -> list[tuple[str, Decimal, str]]:
    return sorted((p["Date"], Decimal(str(p["Amount"])), p["Reference"]) for p in state(sb)["Payments"])


EXPECTED = [("/Date(1772668800000+0000)/", Decimal("100"), "Virement VIR-A"),
            ("/Date(1773964800000+0000)/", Decimal("260"), "Carte bancaire CB-B")]  # 03-20 in Paris


def break_payments(ledger: XeroLedger, nth: int, *, written: bool) -> None:
    """From the ``nth`` PUT /Payments on, the answer never arrives: after Xero wrote it
    (``written``, a lost answer) or before it reached Xero (an outage)."""
    send, seen = ledger.api._send, [0]

    def flaky(method: str, url: str, **kwargs: Any) -> Any:
        if method == "PUT" and url.endswith("/Payments"):
            seen[0] += 1
            if seen[0] >= nth:
                if written:
                    send(method, url, **kwargs)
                raise requests.ConnectionError("answer lost")
        return send(method, url, **kwargs)

    ledger.api._send = flaky  # type: ignore[method-assign]


@pytest.mark.parametrize("lost", [None, 1, 2])
def test_each_crm_payment_is_one_xero_payment(sandbox: XeroSandbox, tokens: DictTokens, lost: int | None) -> None:
    ledger = make_ledger(sandbox, tokens)
    receipt = order("P-1", paid=TWO_PAYMENTS)
    if lost:
        break_payments(ledger, lost, written=True)
    with contextlib.suppress(RetryableError):  # every retry of a lost answer is lost too
        ledger.record_receipt(receipt, may_exist=False)
    again = make_ledger(sandbox, tokens)
    invoice_id = again.record_receipt(receipt, may_exist=True)
    assert again.record_receipt(receipt, may_exist=True) == invoice_id == again.find_receipt(receipt)
    assert paid_rows(sandbox) == EXPECTED
    assert state(sandbox)["Invoices"][0]["Status"] == "PAID"


def test_a_replay_books_only_the_missing_payment(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    receipt = order("P-2", paid=TWO_PAYMENTS)
    ledger = make_ledger(sandbox, tokens)
    break_payments(ledger, 2, written=False)
    with pytest.raises(RetryableError):  # the second payment's outage outlasts the retries
        ledger.record_receipt(receipt, may_exist=False)
    assert len(state(sandbox)["Payments"]) == 1
    make_ledger(sandbox, tokens).record_receipt(receipt, may_exist=True)
    assert paid_rows(sandbox) == EXPECTED
    assert calls(sandbox)["by_operation"]["create Payments"] == 2


def test_a_payment_someone_else_booked_stops_the_receipt(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    receipt = order("P-3", paid=TWO_PAYMENTS)
    faults(sandbox, *[{"kind": "error", "method": "PUT", "path": r"/Payments$", "count": 1}] * 4)
    with pytest.raises(Exception):  # noqa: B017
        make_ledger(sandbox, tokens).record_receipt(receipt, may_exist=False)
    (invoice,) = state(sandbox)["Invoices"]
    sandbox.books.create_payment({"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "512000"},
                                  "Date": "2026-03-10", "Amount": "50.00"})
    with pytest.raises(PermanentError, match="payments pouracquit did not book"):
        make_ledger(sandbox, tokens).record_receipt(receipt, may_exist=True)


def test_batches_book_every_payment_and_leave_credit_notes_out(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    receipts = [order(f"B-{i}", name=f"Client {i}", paid=TWO_PAYMENTS) for i in range(3)]
    note = credit(order("B-9"), "AV-B9")
    booked = ledger.record_receipts([*receipts, note])
    assert sorted(booked) == sorted(r.key for r in receipts)
    assert len(state(sandbox)["Payments"]) == 6 and state(sandbox)["CreditNotes"] == []
    ops = calls(sandbox)["by_operation"]
    assert ops["create Invoices"] == 3 and ops["create Payments"] == 6
    assert calls(sandbox)["by_endpoint"]["payments_create"] == 1  # one call for the six


def test_a_note_allocated_by_someone_else_is_not_taken_for_a_refund(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    note = credit(order("F-17"), "AV-17")
    faults(sandbox, *[{"kind": "error", "method": "PUT", "path": r"/Payments$", "count": 1}] * 4)
    with pytest.raises(RetryableError):
        make_ledger(sandbox, tokens).record_receipt(note, may_exist=False)
    (row,) = sandbox.books.credit_notes.values()
    row["RemainingCredit"] = Decimal(0)  # a person allocated it to another invoice in Xero
    ledger = make_ledger(sandbox, tokens)
    assert ledger.find_receipt(note) is None
    with pytest.raises(PermanentError, match="allocated or refunded by someone else"):
        ledger.record_receipt(note, may_exist=True)


def test_a_partial_refund_pays_back_what_was_returned(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    full = credit(order("F-18"), "AV-18")
    refund = full.invoice.payments[0].model_copy(update={"amount": Money(amount="100.00", currency="EUR")})
    note = ReceiptOrder(key=full.key, number=full.number, credits=full.credits,
                          invoice=full.invoice.model_copy(update={"payments": (refund,)}))
    ledger = make_ledger(sandbox, tokens)
    ref = ledger.record_receipt(note, may_exist=False)
    assert ledger.find_receipt(note) == ref == ledger.record_receipt(note, may_exist=True)
    (row,) = state(sandbox)["CreditNotes"]
    assert row["Status"] == "AUTHORISED" and Decimal(str(row["RemainingCredit"])) == Decimal("260")
    assert [Decimal(str(p["Amount"])) for p in state(sandbox)["Payments"]] == [Decimal("100")]
    too_much = refund.model_copy(update={"amount": Money(amount="999.00", currency="EUR")})
    with pytest.raises(BadRecord, match="refunds 999"):
        ledger.record_receipt(ReceiptOrder(key="pa-AV-19", number="AV-19", credits=full.credits,
                                           invoice=full.invoice.model_copy(update={"payments": (too_much,)})),
                              may_exist=False)
