"""All six CRM → accounting pairs, from configuration alone, through the same
pipeline: every paid invoice booked once, its PDF attached once on each side,
and a second sync creates nothing."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from facturx import get_xml_from_pdf
from lxml import etree

from pouracquit.common.model import Invoice
from pouracquit.core.credit import issue_date
from pouracquit.core.intake import paid_on

RSM = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}"
RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
UDT = "{urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100}"

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
    archive = service.wiring(service.settings.connections[0]).archive
    currencies = set()
    for r in receipts:
        assert led.receipts(rig.ledger, r.number) == [r.ledger_id]
        assert led.attachments(rig.ledger, r.ledger_id) == [r.document_name]
        assert src.attachments(rig.source, r.source_id) == [r.document_name]
        stated = Invoice.model_validate_json(r.invoice_json)
        # the facture acquittée is the CRM invoice stamped paid: its dates, not the sync's
        xml = etree.fromstring(get_xml_from_pdf(archive.read(r.document_sha256 or ""), check_xsd=False)[1])
        assert xml.findtext(f"{RSM}ExchangedDocument/{RAM}IssueDateTime/{UDT}DateTimeString") == (
            issue_date(r, stated).strftime("%Y%m%d"))
        # BR-FR-CO-09: an invoice issued already paid (frame B2/S2/M2) carries its payment date in BT-9;
        # the CRM's due date is stated in the payment terms (BT-20) and printed on the page
        terms = xml.find(f".//{RAM}SpecifiedTradePaymentTerms")
        assert terms is not None and stated.last_payment is not None
        assert terms.findtext(f"{RAM}DueDateDateTime/{UDT}DateTimeString") == (
            paid_on(stated).strftime("%Y%m%d"))
        due = stated.due_date or stated.issue_date
        assert due.strftime("%d/%m/%Y") in (terms.findtext(f"{RAM}Description") or "")
        booked = led.booked(rig.ledger, r.ledger_id)
        assert booked["currency"] == stated.currency and booked["total"] == stated.gross_total.amount
        if stated.currency != "EUR":  # booked in its currency at the rate printed on the document
            assert stated.exchange_rate is not None  # Xero keeps 6 decimals of its inverse rate
            assert abs(booked["rate"] / stated.exchange_rate - 1) < Decimal("1e-5")
        currencies.add(stated.currency)
    assert currencies == {"EUR", "USD"}
    before = rig.ledger.dump_state()
    rig.sync_until_settled(service)
    assert len(service.store.receipts("demo", limit=1000)) == len(receipts)
    assert rig.ledger.dump_state() == before
