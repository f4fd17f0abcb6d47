"""QuickBooks with match_existing = "by_number": what only QuickBooks has (payments told
apart by our marker, a sales receipt mode beside invoices); the shared behaviour is in
the contract (tests/contract_match.py)."""

from __future__ import annotations

import pytest
import test_quickbooks_ledger
from support import DictTokens
from test_quickbooks_ledger import make_ledger, order

from pouracquit.common.errors import ConfigError, PermanentError
from pouracquit.connectors.quickbooks.session import QuickBooksSettings
from pouracquit.connectors.xero.session import XeroSettings
from pouracquit.sandbox.native_sync import SEED_KEY, pushed
from pouracquit.sandbox.quickbooks.emulator import QuickBooksSandbox

# the QuickBooks ledger tests' fixtures: the sandbox and the secrets
sandbox, _secrets = test_quickbooks_ledger.sandbox, test_quickbooks_ledger._secrets


def test_sales_receipt_mode_pays_the_pushed_invoice_instead(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, match_existing="by_number")
    paid = order("NS-0001", email="autre@boulangerie.example")  # matched by name: the e-mail differs
    sandbox.seed({SEED_KEY: [pushed(paid.invoice)]})
    (invoice,) = sandbox.dump_state()["Invoices"]
    assert ledger.record_receipts([paid]) == {}  # no blind batch of sales receipts
    assert ledger.record_receipt(paid, may_exist=False) == f"Invoice:{invoice['Id']}"
    after = sandbox.dump_state()
    assert after["SalesReceipts"] == []
    (payment,) = after["Payments"]
    assert payment["PrivateNote"] == f"pouracquit:{paid.key}#1"
    assert payment["Line"][0]["LinkedTxn"] == [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    assert [i["Balance"] for i in after["Invoices"]] == [0]


def test_someone_elses_partial_payment_stops_the_receipt(sandbox: QuickBooksSandbox, tokens: DictTokens) -> None:
    ledger = make_ledger(sandbox, tokens, match_existing="by_number")
    paid = order("NS-0002")  # 240.00 paid at once
    sandbox.seed({SEED_KEY: [pushed(paid.invoice)]})
    (invoice,) = sandbox.dump_state()["Invoices"]
    sandbox.books.sales.create_payment({"CustomerRef": invoice["CustomerRef"], "TotalAmt": "100.00", "Line": [
        {"Amount": "100.00", "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]})
    with pytest.raises(PermanentError, match=r"has 140\.00 still due but the CRM payments .* come to 240\.00"):
        ledger.record_receipt(paid, may_exist=False)
    assert len(sandbox.dump_state()["Payments"]) == 1


@pytest.mark.parametrize("key, value", [("match_existing", "by_name"), ("unmatched", "skip")])
def test_the_settings_are_validated_with_the_ledgers(key: str, value: str) -> None:
    for settings, required in ((QuickBooksSettings, {"realm_id": "1"}), (XeroSettings, {})):
        with pytest.raises(ConfigError, match=key):
            settings.load({"client_id": "c", "client_secret": {"env": "X"}, **required, key: value})
    assert QuickBooksSettings.load({"realm_id": "1", "client_id": "c", "client_secret": {"env": "X"}}).match_existing \
        == "off"
