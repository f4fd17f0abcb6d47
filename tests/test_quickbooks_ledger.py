"""QuickBooksLedger against the QuickBooks sandbox: exactly-once receipts and attachments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from support import DictTokens, fast_context

from pouracquit.common.errors import BadRecord, ConfigError, PermanentError
from pouracquit.common.model import Invoice, InvoiceStatus, Line, Party, Payment, PaymentMethod
from pouracquit.common.money import Money
from pouracquit.connectors.base import Document, ReceiptOrder
from pouracquit.connectors.quickbooks.ledger import QuickBooksLedger, quote, rate_key
from pouracquit.connectors.quickbooks.session import TOKEN_NAME
from pouracquit.sandbox.quickbooks.emulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REALM_ID,
    DEMO_REFRESH_TOKEN,
    QuickBooksSandbox,
)

TIME_FACTOR = 0.01


@pytest.fixture
def sandbox() -> Iterator[QuickBooksSandbox]:
    with QuickBooksSandbox(time_factor=TIME_FACTOR) as sb:
        yield sb  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QB_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    monkeypatch.setenv("QB_REFRESH_TOKEN", DEMO_REFRESH_TOKEN)


def make_ledger(sb: QuickBooksSandbox, tokens: DictTokens, **overrides: Any) -> QuickBooksLedger:
    settings = {
        "base_url": sb.url, "discovery_url": sb.discovery_url, "realm_id": DEMO_REALM_ID,
        "client_id": DEMO_CLIENT_ID, "client_secret": {"env": "QB_CLIENT_SECRET"},
        "refresh_token": {"env": "QB_REFRESH_TOKEN"}, "minor_version": 75, **overrides,
    }
    ctx = fast_context(tokens, TIME_FACTOR)
    return QuickBooksLedger.from_settings(settings, ctx)


def order(number: str = "F-2026-0001", *, name: str = "Boulangerie Martin", email: str = "",
          rates: tuple[str, ...] = ("20",), key: str | None = None) -> ReceiptOrder:
    lines = tuple(
        Line(description=f"Prestation {i}", quantity=Decimal("2"), unit_price=Decimal("100.00"), vat_rate=rate)
        for i, rate in enumerate(rates, 1)
    )
    draft = Invoice.model_construct(lines=lines, currency="EUR")
    gross = draft.gross_total
    invoice = Invoice(
        source_id=f"src-{number}", number=number, currency="EUR", issue_date=date(2026, 3, 1),
        customer=Party(name=name, email=email), lines=lines, status=InvoiceStatus.PAID,
        payments=(Payment(amount=gross, paid_at=datetime(2026, 3, 4, 23, 30, tzinfo=UTC),
                          method=PaymentMethod.TRANSFER, reference="VIR-778"),),
        amount_paid=gross, modified_at=datetime(2026, 3, 5, tzinfo=UTC),
    )
    return ReceiptOrder(key=key or f"rcpt-{number}", number=number, invoice=invoice)


def state(sb: QuickBooksSandbox) -> dict[str, Any]:
    return requests.get(sb.url + "/_sandbox/state", timeout=5).json()


def calls(sb: QuickBooksSandbox) -> dict[str, Any]:
    return requests.get(sb.url + "/_sandbox/calls", timeout=5).json()


def faults(sb: QuickBooksSandbox, *scripted: dict[str, Any]) -> None:
    requests.post(sb.url + "/_sandbox/faults", json={"scripted": list(scripted)}, timeout=5).raise_for_status()


def test_record_find_and_replay_give_one_receipt(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    first = order(rates=("20", "5.5"))
    receipt_id = ledger.record_receipt(first, may_exist=False)
    assert ledger.find_receipt(first) == receipt_id
    assert ledger.record_receipt(first, may_exist=True) == receipt_id
    (receipt,) = state(sandbox)["SalesReceipts"]
    assert receipt["DocNumber"] == "F-2026-0001"
    assert Decimal(str(receipt["TotalAmt"])) == first.invoice.gross_total.amount == Decimal("451.00")
    assert receipt["TxnDate"] == "2026-03-05"  # 23:30 UTC is the next day in Paris
    assert receipt["PaymentRefNum"] == "VIR-778" and receipt["PrivateNote"] == "pouracquit:rcpt-F-2026-0001"
    assert receipt["PaymentMethodRef"]["value"] == "1" and receipt["DepositToAccountRef"]["value"] == "1"
    # A replay without may_exist meets QBO's duplicate-number fault and still finds its own receipt.
    assert ledger.record_receipt(first, may_exist=False) == receipt_id
    assert len(state(sandbox)["SalesReceipts"]) == 1


def test_dropped_create_response_still_one_receipt(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    faults(sandbox, {"kind": "drop", "method": "POST", "path": "salesreceipt", "count": 1})
    receipt_id = ledger.record_receipt(order(), may_exist=False)
    assert [r["Id"] for r in state(sandbox)["SalesReceipts"]] == [receipt_id]
    assert calls(sandbox)["requestid_replays"] == 1


def test_attach_is_idempotent_across_a_dropped_upload(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    receipt_id = ledger.record_receipt(order(), may_exist=False)
    document = Document(name="F-2026-0001-acquittee.pdf", content=b"%PDF-1.7\n\x00\xfe recu \r\n")
    faults(sandbox, {"kind": "drop", "method": "POST", "path": "upload", "count": 1})
    attachable_id = ledger.attach(receipt_id, document, may_exist=False)
    assert ledger.attach(receipt_id, document, may_exist=True) == attachable_id
    (stored,) = state(sandbox)["Attachables"]
    assert stored["Id"] == attachable_id and stored["FileName"] == document.name
    assert stored["AttachableRef"][0]["EntityRef"] == {"type": "SalesReceipt", "value": receipt_id, "name": ""}
    assert stored["file"] == {"size": len(document.content), "sha256": document.sha256}


def test_customers_matched_by_email_then_name_created_once(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    by_email = ledger.record_receipt(order("A-1", name="Autre nom", email="FACTURES@dupont-fils.fr"),
                                     may_exist=False)
    by_name = ledger.record_receipt(order("A-2", name="Marie Curie"), may_exist=False)
    new_1 = ledger.record_receipt(order("A-3", name="Nouveau Client SAS", email="n@client.fr"), may_exist=False)
    new_2 = ledger.record_receipt(order("A-4", name="Nouveau Client SAS"), may_exist=False)
    receipts = {r["Id"]: r["CustomerRef"]["value"] for r in state(sandbox)["SalesReceipts"]}
    assert receipts[by_email] == "2" and receipts[by_name] == "3"
    assert receipts[new_1] == receipts[new_2]
    assert [c["DisplayName"] for c in state(sandbox)["Customers"]].count("Nouveau Client SAS") == 1
    ops = calls(sandbox)["by_operation"]
    assert ops["create Customer"] == 1 and ops["query Customer"] == 1  # one page read for the whole run


def test_reference_data_read_once_per_run(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    for n in range(3):
        receipt_id = ledger.record_receipt(order(f"B-{n}", rates=("10", "2.1")), may_exist=False)
        ledger.attach(receipt_id, Document(name=f"B-{n}.pdf", content=b"%PDF"), may_exist=False)
    counts = calls(sandbox)
    ops = counts["by_operation"]
    assert ops["batch query TaxCode"] == ops["batch query TaxRate"] == 1 and "query TaxCode" not in ops
    assert ops["create SalesReceipt"] == 3 and ops["upload Attachable"] == 3
    # discovery + token + batch + customer page, then 2 calls per receipt.
    assert counts["total"] == 4 + 3 * 2


def test_unmapped_vat_rate_is_a_bad_record_naming_the_key(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    with pytest.raises(BadRecord, match=r"\[vat_rates\]") as err:
        ledger.record_receipt(order(rates=("7",)), may_exist=False)
    assert "'7'" in str(err.value)
    assert state(sandbox)["SalesReceipts"] == []


def test_quotes_and_backslashes_are_escaped_in_queries(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    name = "L'Atelier \\ d'O'Brien"
    assert quote(name) == "'L\\'Atelier \\\\ d\\'O\\'Brien'"
    # An inactive namesake is invisible to the customer list: creating it hits QBO's 6240,
    # and the connector must then find it with an escaped DisplayName query.
    requests.post(sandbox.url + "/_sandbox/seed", timeout=5,
                  json={"Customer": [{"DisplayName": name, "Active": False}]}).raise_for_status()
    seeded = next(c["Id"] for c in state(sandbox)["Customers"] if c["DisplayName"] == name)
    ledger = make_ledger(sandbox, tokens)
    receipt_id = ledger.record_receipt(order("C-1", name=name), may_exist=False)
    receipt = next(r for r in state(sandbox)["SalesReceipts"] if r["Id"] == receipt_id)
    assert receipt["CustomerRef"]["value"] == seeded
    doc_number = "C-'\\2"
    assert ledger.find_receipt(order(doc_number)) is None
    assert ledger.find_receipt(order(doc_number)) is None
    created = ledger.record_receipt(order(doc_number), may_exist=True)
    assert ledger.find_receipt(order(doc_number)) == created


def test_rotated_refresh_token_is_persisted_and_reused(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    ledger.record_receipt(order("D-1"), may_exist=False)
    first = tokens.get(TOKEN_NAME)
    assert first and first != DEMO_REFRESH_TOKEN
    # An expired access token mid-run: 401, refresh (rotating again), retry.
    ledger._conn.session.access_token = "expired"
    ledger.record_receipt(order("D-2"), may_exist=False)
    assert [name for name, _ in tokens.puts] == [TOKEN_NAME, TOKEN_NAME]
    # The demo token is retired: a new run only works from the stored one.
    second_run = make_ledger(sandbox, tokens)
    assert second_run.find_receipt(order("D-1")) is not None
    assert len(tokens.puts) == 3


def test_throttled_create_is_retried(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    faults(sandbox, {"kind": "rate_limit", "method": "POST", "path": "salesreceipt", "count": 2})
    ledger.record_receipt(order("E-1"), may_exist=False)
    assert len(state(sandbox)["SalesReceipts"]) == 1
    assert ledger.client.meter.errors[("quickbooks", "RateLimited")] == 2


def test_refusals(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    with pytest.raises(BadRecord, match="DocNumber"):
        ledger.record_receipt(order("F-" + "9" * 25), may_exist=False)
    other = order("G-1", key="someone-else")
    ledger.record_receipt(other, may_exist=False)
    with pytest.raises(PermanentError, match="did not book"):
        ledger.record_receipt(order("G-1"), may_exist=False)
    with pytest.raises(ConfigError, match="realm_id"):
        make_ledger(sandbox, tokens, realm_id="")
    with pytest.raises(ConfigError, match="deposit_account"):
        make_ledger(sandbox, tokens, deposit_account="Caisse").record_receipt(order("H-1"), may_exist=False)


def test_rate_key_and_money_stay_decimal() -> None:
    assert rate_key(Decimal("5.50")) == "5.5" and rate_key(Decimal("20.0")) == "20"
    assert rate_key(Decimal("0.00")) == "0"
    assert Money(amount="1.10", currency="EUR").amount == Decimal("1.10")


def test_batch_booking_books_thirty_per_call_and_survives_a_lost_answer(
    sandbox: QuickBooksSandbox, tokens: DictTokens
) -> None:
    """record_receipts: new customers and receipts go 30 per /batch call; a
    batch answer lost after QuickBooks committed is replayed by requestid."""
    ledger = make_ledger(sandbox, tokens)
    orders = [order(f"B-{i:03d}", name=f"Client {i} SARL", email=f"c{i}@example.org", key=f"pa-b{i}")
              for i in range(35)]
    ledger.directory.references()  # the reference read is a /batch too: the lost answer is a write's
    requests.post(f"{sandbox.url}/_sandbox/faults", timeout=5,
                  json={"scripted": [{"kind": "drop", "method": "POST", "path": "/batch$", "count": 1}]})
    booked = ledger.record_receipts(orders)
    assert sorted(booked) == sorted(o.key for o in orders)
    numbers = [r["DocNumber"] for r in sandbox.dump_state()["SalesReceipts"]]
    assert sorted(numbers) == sorted(o.number for o in orders)
    calls = sandbox.call_counts()
    assert calls["by_operation"].get("create SalesReceipt", 0) == 0
    assert calls["by_operation"].get("create Customer", 0) == 0
    assert calls["requestid_replays"] >= 1
