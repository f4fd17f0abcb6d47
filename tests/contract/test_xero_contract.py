"""Xero passes the ledger contract; every API call it makes there matches Xero's OpenAPI spec."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from contract_match import LedgerMatchContract
from contract_suite import LedgerContract, LedgerRig
from xero_spec import violations

from pouracquit.connectors.xero.credit import credit_note_id, ref_of
from pouracquit.connectors.xero.format import euros_per_unit
from pouracquit.sandbox.xero.emulator import XeroSandbox


def _day(value: str) -> date:
    """Xero's ``/Date(ms+0000)/``."""
    return datetime.fromtimestamp(int(value[6:19]) / 1000, UTC).date()


class XeroHarness:
    vendor = "xero"
    record_write = r"/api\.xro/2\.0/Invoices$"
    attach_write = r"/(Invoices|CreditNotes)/[^/]+/Attachments/[^/]+$"
    credit_write = r"/api\.xro/2\.0/CreditNotes$"
    write_method = "PUT"
    payment_mode: Mapping[str, Any] | None = {"mode": "invoice_payment"}
    payment_write = r"/api\.xro/2\.0/Payments$"

    def receipts(self, box: XeroSandbox, number: str) -> list[str]:
        return [i["InvoiceID"] for i in box.dump_state()["Invoices"]
                if i["InvoiceNumber"] == number]

    def _document(self, box: XeroSandbox, ref: str) -> dict[str, Any]:
        note = credit_note_id(ref)
        state = box.dump_state()
        rows = state["CreditNotes"] if note else state["Invoices"]
        return next(r for r in rows if r["CreditNoteID" if note else "InvoiceID"] == (note or ref))

    def attachments(self, box: XeroSandbox, ref: str) -> list[str]:
        return [a["FileName"] for a in self._document(box, ref)["Attachments"]]

    def credit_notes(self, box: XeroSandbox, number: str) -> list[str]:
        return [ref_of(c["CreditNoteID"]) for c in box.dump_state()["CreditNotes"] if c["CreditNoteNumber"] == number]

    def booked(self, box: XeroSandbox, ref: str) -> Mapping[str, Any]:
        """Xero holds CurrencyRate as units of the document's currency per euro; read back per unit."""
        row = self._document(box, ref)
        return {"currency": row["CurrencyCode"], "rate": euros_per_unit(Decimal(str(row["CurrencyRate"]))),
                "total": Decimal(str(row["Total"]))}

    def payments(self, box: XeroSandbox, ref: str) -> list[tuple[date, Decimal]]:
        return sorted((_day(p["Date"]), Decimal(str(p["Amount"]))) for p in self._document(box, ref)["Payments"])


class TestXeroLedger(LedgerContract, LedgerMatchContract):
    harness = XeroHarness()

    @pytest.fixture(autouse=True)
    def _calls_match_the_spec(self, rig: LedgerRig) -> Iterator[None]:
        yield
        assert violations(rig.box.exchanges) == []  # type: ignore[attr-defined]
