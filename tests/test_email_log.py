"""A sent e-mail logged on the CRM record, against each CRM's sandbox (HubSpot note,
Salesforce EmailMessage, Zoho note): one record per e-mail, found again (not written
twice) when a replay may have written it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import DictTokens, fast_context

from pouracquit.common.errors import PermanentError
from pouracquit.connectors.base import BatchEmailLog, CrmSource, EmailLog, SentEmail
from pouracquit.connectors.hubspot.mapping import HubSpotMapper
from pouracquit.connectors.registry import factory
from pouracquit.connectors.salesforce.mapping import SalesforceMapper
from pouracquit.connectors.zoho.mapping import ZohoMapper
from pouracquit.mappings import load_mapping
from pouracquit.sandbox.launch import emulator
from pouracquit.sandbox.server import Sandbox

SCALE = 0.01


def sent(key: str = "pouracquit.r1@atelier-lumiere.example") -> SentEmail:
    return SentEmail(key=key, message_id=f"<{key}>", sender="facturation@atelier-lumiere.example",
                     to="compta@lefevre.example", subject="Facture acquittée F-2026-0001 - Atelier Lumière SAS",
                     text="Bonjour,\n\nVeuillez trouver ci-joint la facture acquittée.",
                     sent_at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC), attachment="Facture-F-2026-0001.pdf")


@pytest.fixture(params=["hubspot", "salesforce", "zoho"])
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Sandbox, Any]]:
    emu = emulator(request.param, "source")
    box = emu.make(time_factor=SCALE).start()
    box.seed(emu.demo_seed(4, 7))
    settings = emu.settings(box, tmp_path / "secrets")
    settings.pop("vendor")
    source = factory(request.param, "source").from_settings(settings, fast_context(DictTokens(), SCALE))
    yield box, source
    box.stop()


def logged(box: Sandbox, ref: str) -> list[dict[str, Any]]:
    """What the vendor holds on record ``ref`` that carries one of our markers."""
    vendor = box.vendor
    if vendor == "hubspot":
        rows = [n for n in box.dump_state()["notes"] if ref in n["associations"].get("invoices", [])]
        return [{"id": n["id"], "text": n["properties"]["hs_note_body"]} for n in rows
                if "[pouracquit:" in n["properties"]["hs_note_body"]]
    if vendor == "salesforce":
        rows = box.org.records["EmailMessage"].values()  # type: ignore[attr-defined]
        return [{"id": r["Id"], "text": r["TextBody"], "status": r["Status"], "subject": r["Subject"]}
                for r in rows if r["RelatedToId"] == ref]
    return [{"id": n["id"], "text": n["Note_Content"], "subject": n["Note_Title"]}
            for n in box.notes.get(ref, [])]  # type: ignore[attr-defined]


def test_a_sent_email_is_logged_once_and_found_on_a_replay(crm: tuple[Sandbox, Any]) -> None:
    box, source = crm
    assert isinstance(source, CrmSource) and isinstance(source, EmailLog)
    invoice = next(inv for page in source.changes(None) for inv in page.invoices)
    first = source.log_email(invoice.source_id, sent(), may_exist=False)
    assert source.log_email(invoice.source_id, sent(), may_exist=True) == first
    second = source.log_email(invoice.source_id, sent("pouracquit.r2@atelier-lumiere.example"), may_exist=True)
    rows = logged(box, invoice.source_id)
    assert sorted(r["id"] for r in rows) == sorted([first, second])
    row = next(r for r in rows if r["id"] == first)
    assert "[pouracquit:pouracquit.r1@atelier-lumiere.example]" in row["text"]
    assert "Veuillez trouver ci-joint" in row["text"]
    if box.vendor == "salesforce":
        assert row["status"] == "3" and row["subject"].startswith("Facture acquittée F-2026-0001")


def test_emails_logged_in_a_batch_are_found_again_one_by_one(crm: tuple[Sandbox, Any]) -> None:
    box, source = crm
    if not isinstance(source, BatchEmailLog):
        pytest.skip(f"{box.vendor} logs one e-mail per call")
    first, second = [inv.source_id for page in source.changes(None) for inv in page.invoices][:2]
    entries = [(first, sent("pouracquit.r1@atelier-lumiere.example")),
               (second, sent("pouracquit.r2@atelier-lumiere.example")),
               (first, sent("pouracquit.r3@atelier-lumiere.example"))]
    box.calls.clear()
    answer = source.log_emails(entries)
    assert box.call_counts()["total"] <= 2  # one batch call (HubSpot reads its association type once)
    assert sorted(answer) == [e.key for _, e in entries] and all(isinstance(v, str) for v in answer.values())
    for ref, email in entries:
        assert source.log_email(ref, email, may_exist=True) == answer[email.key]
        assert email.key in next(r["text"] for r in logged(box, ref) if r["id"] == answer[email.key])
    assert sorted(r["id"] for ref in (first, second) for r in logged(box, ref)) == sorted(answer.values())


def test_salesforce_refuses_an_email_on_a_person_record(crm: tuple[Sandbox, Any]) -> None:
    box, source = crm
    if box.vendor != "salesforce":
        pytest.skip("Salesforce's own rule")
    contact = next(iter(box.org.records["Contact"]))  # type: ignore[attr-defined]
    with pytest.raises(PermanentError, match="FIELD_INTEGRITY_EXCEPTION"):
        source.log_email(contact, sent(), may_exist=False)
    invoice = next(iter(box.org.records["Invoice__c"]))  # type: ignore[attr-defined]
    answer = source.log_emails([(contact, sent("pouracquit.a@x.example")), (invoice, sent("pouracquit.b@x.example"))])
    assert isinstance(answer["pouracquit.a@x.example"], PermanentError)  # that one alone: the batch goes on
    assert "FIELD_INTEGRITY_EXCEPTION" in str(answer["pouracquit.a@x.example"])
    assert [r["id"] for r in logged(box, invoice)] == [answer["pouracquit.b@x.example"]]


@pytest.mark.parametrize("vendor", ["hubspot", "salesforce", "zoho"])
def test_the_buyer_address_is_the_companys_billing_email_when_mapped_else_the_contacts(vendor: str) -> None:
    section = "company" if vendor == "hubspot" else "account"
    contact = {"firstname": "Léa", "lastname": "Roy", "email": "lea@client.example", "First_Name": "Léa",
               "Last_Name": "Roy", "Email": "lea@client.example", "FirstName": "Léa", "LastName": "Roy"}
    company = {"name": "Client SA", "Name": "Client SA", "Account_Name": "Client SA",
               "billing_email": "factures@client.example"}

    def party(overrides: dict[str, Any]) -> str:
        mapping = load_mapping(vendor, {section: overrides})
        if vendor == "hubspot":
            return HubSpotMapper(mapping)._party(contact, company, ("1", "2")).email
        if vendor == "salesforce":
            inv = mapping["invoice"]
            return SalesforceMapper(mapping)._party({inv["account"]: company, inv["contact"]: contact}).email
        return ZohoMapper(mapping)._party({}, company, contact).email

    assert party({}) == "lea@client.example"
    assert party({"email": "billing_email"}) == "factures@client.example"
