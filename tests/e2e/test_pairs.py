"""All six CRM → accounting pairs, from configuration alone, through the same
pipeline: every paid invoice booked once, its PDF attached once on each side,
and a second sync creates nothing."""

from __future__ import annotations

import importlib

import pytest

SOURCES = {"hubspot": "HubSpotHarness", "salesforce": "SalesforceHarness", "zoho": "ZohoHarness"}
LEDGERS = {"quickbooks": "QuickBooksHarness", "xero": "XeroHarness"}


def harness(vendor: str):  # type: ignore[no-untyped-def]
    """The contract suite's harness for ``vendor``: it knows how to inspect that sandbox."""
    name = {**SOURCES, **LEDGERS}[vendor]
    return getattr(importlib.import_module(f"contract.test_{vendor}_contract"), name)()


@pytest.mark.parametrize("ledger", sorted(LEDGERS))
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_pair_books_every_paid_invoice_once(make_rig, source: str, ledger: str) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=14, source=source, ledger=ledger)
    service = rig.service()
    rig.sync_until_settled(service)
    receipts = service.store.receipts("demo", limit=1000)
    assert receipts and all(r.status == "done" for r in receipts), [(r.status, r.last_error) for r in receipts]
    assert len({r.source_id for r in receipts}) == len(receipts)
    src, led = harness(source), harness(ledger)
    for r in receipts:
        assert led.receipts(rig.ledger, r.number) == [r.ledger_id]
        assert led.attachments(rig.ledger, r.ledger_id) == [r.document_name]
        assert src.attachments(rig.source, r.source_id) == [r.document_name]
    before = rig.ledger.dump_state()
    rig.sync_until_settled(service)
    assert len(service.store.receipts("demo", limit=1000)) == len(receipts)
    assert rig.ledger.dump_state() == before
