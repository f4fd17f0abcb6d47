"""Xero with match_existing = "by_number": what only Xero has (bank-transaction mode,
draft invoices); the shared behaviour is in the contract (tests/contract_match.py)."""

from __future__ import annotations

import pytest
import test_xero_ledger
from support import DictTokens
from xero_support import make_ledger, order, state

from pouracquit.common.errors import PermanentError
from pouracquit.connectors.base import Document
from pouracquit.sandbox.native_sync import SEED_KEY, pushed
from pouracquit.sandbox.xero.emulator import XeroSandbox

# the Xero ledger tests' fixtures: a sandbox whose every exchange must match the spec, and the secrets
sandbox, _secrets = test_xero_ledger.sandbox, test_xero_ledger._secrets


def test_bank_transaction_mode_pays_the_pushed_invoice_and_attaches_there(sandbox: XeroSandbox,
                                                                         tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, mode="bank_transaction", match_existing="by_number")
    paid = order("NS-0001", rates=("20", "5.5"))
    sandbox.seed({SEED_KEY: [pushed(paid.invoice)]})
    (invoice,) = state(sandbox)["Invoices"]
    ref = ledger.record_receipt(paid, may_exist=False)
    assert ref == f"invoice:{invoice['InvoiceID']}"
    assert ledger.find_receipt(paid) == ref
    ledger.attach(ref, Document(name="facture-acquittee-NS-0001.pdf", content=b"%PDF-1.7\n"), may_exist=True)
    after = state(sandbox)
    assert after["BankTransactions"] == [] and len(after["Invoices"]) == 1
    (booked,) = after["Invoices"]
    assert booked["Status"] == "PAID" and [a["FileName"] for a in booked["Attachments"]] == [
        "facture-acquittee-NS-0001.pdf"]


def test_a_draft_invoice_stops_the_receipt_until_approved(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, match_existing="by_number")
    paid = order("NS-0002")
    sandbox.seed({"Invoices": [{"Type": "ACCREC", "Status": "DRAFT", "InvoiceNumber": "NS-0002",
                                "Contact": {"Name": "Boulangerie Martin"}, "Date": "2026-03-01",
                                "LineItems": [{"Description": "x", "Quantity": 3, "UnitAmount": 100,
                                               "AccountCode": "706000", "TaxType": "OUTPUT"}]}]})
    with pytest.raises(PermanentError, match="NS-0002 is DRAFT: approve it in Xero"):
        ledger.record_receipt(paid, may_exist=False)
    assert state(sandbox)["Payments"] == []


def test_someone_elses_partial_payment_stops_the_receipt(sandbox: XeroSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, match_existing="by_number")
    paid = order("NS-0003")  # 360.00 paid at once
    sandbox.seed({SEED_KEY: [pushed(paid.invoice)]})
    (invoice,) = state(sandbox)["Invoices"]
    sandbox.books.create_payment({"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "512000"},
                                  "Date": "2026-03-02", "Amount": "100.00"})
    with pytest.raises(PermanentError, match=r"\(260(\.00)? still due, 360\.00 to pay\)"):
        ledger.record_receipt(paid, may_exist=False)
    assert len(state(sandbox)["Payments"]) == 1
