"""Invoices already in the ledger: the CRM's native sync pushed them (open, unpaid)
before pouracquit ran. With ``match_existing = "by_number"`` a sync pays them there
and attaches the facture acquittée to them: no sales receipt, no second invoice;
a second sync writes nothing; an invoice whose amount disagrees stops with both
figures while the others go through."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest

from pouracquit.common.model import Invoice
from pouracquit.sandbox.native_sync import SEED_KEY, pushed

HARNESSES = {"quickbooks": "QuickBooksHarness", "xero": "XeroHarness"}
SKEW = Decimal("10.00")


def harness(vendor: str):  # type: ignore[no-untyped-def]
    return getattr(importlib.import_module(f"contract.test_{vendor}_contract"), HARNESSES[vendor])()


def booked_documents(state: dict) -> dict[str, int]:  # type: ignore[type-arg]
    """How many documents of each booking kind the ledger holds."""
    kinds = ("SalesReceipts", "Invoices", "BankTransactions", "RefundReceipts", "CreditMemos", "CreditNotes")
    return {k: len(state.get(k) or []) for k in kinds}


@pytest.mark.parametrize("ledger", sorted(HARNESSES))
def test_a_sync_pays_the_invoices_the_native_sync_pushed(make_rig, ledger: str) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=14, source="hubspot", ledger=ledger)
    rig.config["connections"][0]["ledger"]["match_existing"] = "by_number"
    service = rig.service()
    source = service.wiring(service.settings.connections[0]).source
    crm = [inv for page in source.changes(None) for inv in page.invoices if inv.number]
    paid = [inv for inv in crm if inv.fully_paid]
    assert len(paid) >= 4
    skewed = paid[1]
    rig.ledger.seed({SEED_KEY: [pushed(inv, skew=SKEW if inv is skewed else Decimal(0)) for inv in crm]})
    led = harness(ledger)
    pushed_ids = {inv.number: led.receipts(rig.ledger, inv.number) for inv in crm}
    assert all(len(found) == 1 for found in pushed_ids.values())
    before = booked_documents(rig.ledger.dump_state())

    rig.sync_until_settled(service)

    receipts = service.store.receipts("demo", limit=1000)
    by_number = {r.number: r for r in receipts}
    stopped = by_number[skewed.number]
    assert stopped.status == "failed"
    in_ledger = led.booked(rig.ledger, pushed_ids[skewed.number][0])["total"]
    assert in_ledger != skewed.gross_total.amount
    assert (f"totals {in_ledger} {skewed.currency} but the CRM invoice totals {skewed.gross_total.rounded()}"
            in (stopped.last_error or "")), stopped.last_error
    done = [r for r in receipts if r is not stopped]
    assert {r.source_id for r in done} == {inv.source_id for inv in paid if inv is not skewed}
    assert all(r.status == "done" for r in done), [(r.number, r.status, r.last_error) for r in done]
    for r in done:
        assert [r.ledger_id] == pushed_ids[r.number], "booked beside the pushed invoice instead of paying it"
        assert led.attachments(rig.ledger, r.ledger_id) == [r.document_name]
        stated = Invoice.model_validate_json(r.invoice_json)
        paid_in_ledger = sum((amount for _, amount in led.payments(rig.ledger, r.ledger_id)), Decimal(0))
        assert paid_in_ledger == stated.gross_total.amount
    assert led.payments(rig.ledger, pushed_ids[skewed.number][0]) == []
    assert booked_documents(rig.ledger.dump_state()) == before  # no sales receipt, no new invoice

    after = rig.ledger.dump_state()
    rig.sync_until_settled(service)
    assert rig.ledger.dump_state() == after
    assert len(service.store.receipts("demo", limit=1000)) == len(receipts)
