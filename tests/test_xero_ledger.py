"""XeroLedger against the Xero sandbox: exactly one invoice, one payment and one attachment."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from support import DictTokens
from xero_spec import violations
from xero_support import TIME_FACTOR, calls, faults, make_ledger, order, state

from pouracquit.common.errors import BadRecord, ConfigError, PermanentError
from pouracquit.connectors.base import Document
from pouracquit.connectors.xero.format import line_taxes, literal, rate_key
from pouracquit.connectors.xero.session import TOKEN_NAME, oauth_app
from pouracquit.sandbox.xero.emulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    DEMO_TENANT_ID,
    XeroSandbox,
)


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


def test_record_find_and_replay_give_one_paid_invoice(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    first = order(rates=("20", "5.5"))
    assert ledger.find_receipt(first) is None
    invoice_id = ledger.record_receipt(first, may_exist=False)
    assert ledger.find_receipt(first) == invoice_id
    assert ledger.record_receipt(first, may_exist=True) == invoice_id
    (invoice,) = state(sandbox)["Invoices"]
    assert invoice["Status"] == "PAID" and invoice["Type"] == "ACCREC"
    assert invoice["InvoiceNumber"] == "F-2026-0001" and invoice["Reference"] == "pa-F-2026-0001"
    assert Decimal(str(invoice["Total"])) == first.invoice.gross_total.amount == Decimal("676.50")
    assert [li["TaxType"] for li in invoice["LineItems"]] == ["OUTPUT", "TAX002"]
    assert {li["AccountCode"] for li in invoice["LineItems"]} == {"706000"}
    (payment,) = state(sandbox)["Payments"]
    assert payment["Reference"] == "Virement VIR-778" and payment["Account"]["Code"] == "512000"
    assert payment["Date"] == "/Date(1772668800000+0000)/"  # 2026-03-05: 23:30 UTC is the next day in Paris
    # Without may_exist, the same Idempotency-Key answers with the first invoice: still one.
    assert ledger.record_receipt(first, may_exist=False) == invoice_id
    assert len(state(sandbox)["Invoices"]) == 1 and len(state(sandbox)["Payments"]) == 1


@pytest.mark.parametrize("path", [r"/Invoices$", r"/Payments$"])
def test_dropped_writes_still_give_one_invoice_and_one_payment(sandbox: XeroSandbox, tokens: DictTokens,
                                                               path: str) -> None:
    ledger = make_ledger(sandbox, tokens)
    faults(sandbox, {"kind": "drop", "method": "PUT", "path": path, "count": 1})
    invoice_id = ledger.record_receipt(order(), may_exist=False)
    assert [i["InvoiceID"] for i in state(sandbox)["Invoices"]] == [invoice_id]
    assert len(state(sandbox)["Payments"]) == 1
    assert calls(sandbox)["idempotent_replays"] == 1


def test_invoice_without_its_payment_only_gets_the_payment(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    faults(sandbox, *[{"kind": "error", "method": "PUT", "path": r"/Payments$", "count": 1}] * 4)
    with pytest.raises(Exception):  # noqa: B017 - the outage outlasts the retries
        ledger.record_receipt(order(), may_exist=False)
    assert state(sandbox)["Invoices"][0]["Status"] == "AUTHORISED" and state(sandbox)["Payments"] == []
    invoice_id = make_ledger(sandbox, tokens).record_receipt(order(), may_exist=True)
    assert state(sandbox)["Invoices"][0]["Status"] == "PAID" and len(state(sandbox)["Payments"]) == 1
    assert state(sandbox)["Invoices"][0]["InvoiceID"] == invoice_id


def test_attach_is_idempotent_across_a_dropped_upload(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    invoice_id = ledger.record_receipt(order(), may_exist=False)
    document = Document(name="F-2026-0001 acquittée.pdf", content=b"%PDF-1.7\n\x00\xfe recu \r\n")
    faults(sandbox, {"kind": "drop", "method": "PUT", "path": "/Attachments/", "count": 1})
    attachment_id = ledger.attach(invoice_id, document, may_exist=False)
    assert ledger.attach(invoice_id, document, may_exist=True) == attachment_id
    (stored,) = state(sandbox)["Invoices"][0]["Attachments"]
    assert stored["AttachmentID"] == attachment_id and stored["FileName"] == document.name
    assert stored["MimeType"] == "application/pdf" and stored["ContentLength"] == len(document.content)
    assert sandbox.books.files[attachment_id] == document.content


def test_contacts_matched_by_email_then_name_created_once(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    seeded = {c["Name"]: c["ContactID"] for c in state(sandbox)["Contacts"]}
    by_email = ledger.record_receipt(order("A-1", name="Autre nom", email="FACTURES@dupont-fils.fr"),
                                     may_exist=False)
    by_name = ledger.record_receipt(order("A-2", name="marie curie"), may_exist=False)
    new_1 = ledger.record_receipt(order("A-3", name="O\"Brien & Fils", email="n@client.fr"), may_exist=False)
    new_2 = ledger.record_receipt(order("A-4", name="O\"Brien & Fils"), may_exist=False)
    contact_of = {i["InvoiceID"]: i["Contact"]["ContactID"] for i in state(sandbox)["Invoices"]}
    assert contact_of[by_email] == seeded["Dupont & Fils SA"] and contact_of[by_name] == seeded["Marie Curie"]
    assert contact_of[new_1] == contact_of[new_2]
    assert [c["Name"] for c in state(sandbox)["Contacts"]].count("O\"Brien & Fils") == 1
    ops = calls(sandbox)["by_operation"]
    assert ops["create Contacts"] == 1 and ops["list Contacts"] == 1  # one page read for the whole run


def test_contacts_are_paged(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    sandbox.seed({"Contacts": [{"Name": f"Client {i:03d}", "EmailAddress": f"c{i}@x.fr"} for i in range(150)]})
    ledger = make_ledger(sandbox, tokens)
    ledger.record_receipt(order("P-1", name="Client 149"), may_exist=False)
    assert calls(sandbox)["by_operation"]["list Contacts"] == 2
    assert "create Contacts" not in calls(sandbox)["by_operation"]


def test_reference_data_read_once_per_run(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    for n in range(3):
        invoice_id = ledger.record_receipt(order(f"B-{n}", rates=("10", "2.1")), may_exist=False)
        ledger.attach(invoice_id, Document(name=f"B-{n}.pdf", content=b"%PDF"), may_exist=False)
    counts = calls(sandbox)
    ops = counts["by_operation"]
    assert ops["list TaxRates"] == 1 and ops["list Accounts"] == 1 and ops["list Contacts"] == 1
    assert ops["create Invoices"] == ops["create Payments"] == ops["upload Attachment"] == 3
    # token + tax rates + accounts + contact page, then invoice, payment and upload per receipt.
    assert counts["total"] == 4 + 3 * 3


def test_line_taxes_sum_to_the_vat_of_each_rate(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    # Three lines whose per-line rounding misses the per-rate VAT by a cent.
    tricky = order("T-1", rates=("20", "20", "20"), prices=("0.05", "0.05", "0.05"))
    assert sum(line_taxes(tricky.invoice)) == tricky.invoice.vat_total.amount == Decimal("0.09")
    invoice_id = make_ledger(sandbox, tokens).record_receipt(tricky, may_exist=False)
    (invoice,) = state(sandbox)["Invoices"]
    assert invoice["InvoiceID"] == invoice_id and Decimal(str(invoice["Total"])) == Decimal("0.54")


def test_unmapped_vat_rate_is_a_bad_record_naming_the_key(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    with pytest.raises(BadRecord, match=r"\[vat_rates\]") as err:
        ledger.record_receipt(order(rates=("7",)), may_exist=False)
    assert "'7'" in str(err.value)
    assert state(sandbox)["Invoices"] == []


def test_rotated_refresh_token_is_persisted_and_reused(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    ledger.record_receipt(order("D-1"), may_exist=False)
    first = tokens.get(TOKEN_NAME)
    assert first and first != DEMO_REFRESH_TOKEN
    ledger.api._access = "expired"  # a 401 mid-run: refresh (rotating again), then retry
    ledger.record_receipt(order("D-2"), may_exist=False)
    assert [name for name, _ in tokens.puts] == [TOKEN_NAME, TOKEN_NAME]
    second_run = make_ledger(sandbox, tokens)  # the demo token is retired: only the stored one works
    assert second_run.find_receipt(order("D-1")) is not None
    assert len(tokens.puts) == 3
    with pytest.raises(ConfigError, match="invalid_grant"):
        make_ledger(sandbox, DictTokens()).find_receipt(order("D-1"))


def test_tenant_discovered_when_not_configured(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, tenant_id=None)
    ledger.record_receipt(order("K-1"), may_exist=False)
    assert ledger.api.tenant() == DEMO_TENANT_ID
    assert calls(sandbox)["by_operation"]["connections"] == 1
    assert ledger.api.remaining["minute"] < 60 and ledger.api.remaining["day"] < 5000


def test_bank_transaction_mode(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, mode="bank_transaction")
    first = order("M-1", rates=("20", "10"))
    ref = ledger.record_receipt(first, may_exist=False)
    assert ledger.record_receipt(first, may_exist=True) == ref == ledger.find_receipt(first)
    (txn,) = state(sandbox)["BankTransactions"]
    assert txn["Type"] == "RECEIVE" and txn["Reference"] == "pa-M-1 M-1 Virement VIR-778"
    assert Decimal(str(txn["Total"])) == first.invoice.gross_total.amount
    assert state(sandbox)["Invoices"] == []
    # The PDF goes to /BankTransactions/{id}/Attachments/{name}, once, across a lost answer.
    document = Document(name="M-1 acquittée.pdf", content=b"%PDF-1.7 recu")
    faults(sandbox, {"kind": "drop", "method": "PUT", "path": "/BankTransactions/[^/]+/Attachments/", "count": 1})
    attachment_id = ledger.attach(ref, document, may_exist=False)
    assert ledger.attach(ref, document, may_exist=True) == attachment_id
    (stored,) = state(sandbox)["BankTransactions"][0]["Attachments"]
    assert stored["AttachmentID"] == attachment_id and stored["MimeType"] == "application/pdf"
    assert sandbox.books.files[attachment_id] == document.content


def test_bank_transaction_mode_keeps_to_the_bank_accounts_currency(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, mode="bank_transaction")
    with pytest.raises(PermanentError, match=r"bank account's currency \(EUR\), not USD.*invoice_payment"):
        ledger.record_receipt(order("M-2", currency="USD", exchange_rate="0.92"), may_exist=False)
    assert state(sandbox)["BankTransactions"] == []


def test_granular_scopes_by_default_broad_ones_by_setting(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    app = oauth_app(make_ledger(sandbox, tokens).settings)
    assert "accounting.transactions" not in app.scopes
    assert {"offline_access", "accounting.invoices", "accounting.payments", "accounting.banktransactions",
            "accounting.contacts", "accounting.settings", "accounting.attachments"} == set(app.scopes)
    older = make_ledger(sandbox, tokens, scopes=["offline_access", "accounting.transactions", "accounting.contacts",
                                                 "accounting.settings", "accounting.attachments"])
    assert older.settings.scopes[1] == "accounting.transactions"
    with pytest.raises(ConfigError, match="scopes"):
        make_ledger(sandbox, tokens, scopes=[])


def test_calls_are_paced_below_xeros_minute_limit(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    gate = make_ledger(sandbox, tokens).client.gate
    assert gate.limit == 55 and gate.limit < 60 and gate.concurrency == 5


def test_refusals(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens)
    with pytest.raises(BadRecord, match="InvoiceNumber"):
        ledger.record_receipt(order("F-" + "9" * 260), may_exist=False)
    ledger.record_receipt(order("G-1", key="someone-else"), may_exist=False)
    with pytest.raises(PermanentError, match="did not book"):
        ledger.record_receipt(order("G-1"), may_exist=False)
    with pytest.raises(ConfigError, match="client_id"):
        make_ledger(sandbox, tokens, client_id="")
    with pytest.raises(ConfigError, match="mode"):
        make_ledger(sandbox, tokens, mode="cash")
    with pytest.raises(ConfigError, match="bank_account"):
        make_ledger(sandbox, tokens, bank_account="706000").record_receipt(order("H-1"), may_exist=False)
    with pytest.raises(PermanentError, match="quotes"):
        literal('O"Brien')


def test_rate_key() -> None:
    assert rate_key(Decimal("5.50")) == "5.5" and rate_key(Decimal("20.0")) == "20" and rate_key(Decimal("0.00")) == "0"


@pytest.mark.parametrize("path", [r"/Contacts$", r"/Invoices$", r"/Payments$"])
def test_batch_booking_three_calls_through_a_lost_answer(sandbox: XeroSandbox, tokens: DictTokens,
                                                         path: str) -> None:
    """record_receipts: contacts, invoices and payments one call each for the
    batch; a lost answer is replayed by Idempotency-Key; a refused element is
    left out for the one-by-one path instead of sinking the batch."""
    ledger = make_ledger(sandbox, tokens)
    orders = [order(f"X-{i:03d}", name=f"Client {i} SARL", email=f"c{i}@example.org") for i in range(12)]
    ledger.record_receipt(order("X-999", key="booked-by-someone-else"), may_exist=False)
    refused = order("X-999")  # Xero refuses a second invoice with that number
    faults(sandbox, {"kind": "drop", "method": "PUT", "path": path, "count": 1})
    booked = ledger.record_receipts([*orders, refused])
    assert sorted(booked) == sorted(o.key for o in orders)
    invoices = state(sandbox)["Invoices"]
    assert sorted(i["InvoiceNumber"] for i in invoices) == sorted([*(o.number for o in orders), "X-999"])
    assert all(i["Status"] == "PAID" for i in invoices)
    assert len(state(sandbox)["Payments"]) == len(orders) + 1
    assert calls(sandbox)["idempotent_replays"] == 1
    with pytest.raises(PermanentError, match="X-999"):
        ledger.record_receipt(refused, may_exist=True)


def test_a_grant_without_a_needed_scope_is_a_config_error(sandbox: XeroSandbox, tokens: DictTokens,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Xero answers 401 AuthorizationUnsuccessful; refreshing cannot help, so it is not retried."""
    sandbox.issuer.add_refresh_token("no-payments", DEMO_CLIENT_ID, "offline_access accounting.invoices "
                                     "accounting.contacts accounting.settings accounting.attachments")
    monkeypatch.setenv("XERO_REFRESH_TOKEN", "no-payments")
    with pytest.raises(ConfigError, match=r"lack of a scope.*connect xero"):
        make_ledger(sandbox, tokens).record_receipt(order("S-1"), may_exist=False)
    assert state(sandbox)["Payments"] == [] and calls(sandbox)["by_operation"]["token refresh_token"] == 1


def test_an_older_app_with_the_broad_scope_still_books(sandbox: XeroSandbox, tokens: DictTokens,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.issuer.add_refresh_token("broad", DEMO_CLIENT_ID, "offline_access accounting.transactions "
                                     "accounting.contacts accounting.settings accounting.attachments")
    monkeypatch.setenv("XERO_REFRESH_TOKEN", "broad")
    ledger = make_ledger(sandbox, tokens, scopes=["offline_access", "accounting.transactions",
                                                  "accounting.contacts", "accounting.settings",
                                                  "accounting.attachments"])
    invoice_id = ledger.record_receipt(order("S-2"), may_exist=False)
    ledger.attach(invoice_id, Document(name="S-2.pdf", content=b"%PDF"), may_exist=False)
    assert state(sandbox)["Invoices"][0]["Status"] == "PAID"
