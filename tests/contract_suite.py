"""The connector contract suite. Every connector passes it unchanged.

A connector's contract test file is a few lines: a harness that starts its
sandbox and inspects it, and a class that inherits ``SourceContract`` or
``LedgerContract`` with that harness. The suite checks: changes since a
cursor, resume without duplicates, attach idempotency (also after a response
lost once the vendor committed), record-and-find idempotency, and error
classification.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest
from support import DictTokens, fast_context

from pouracquit.connectors.base import CrmSource, Document, Ledger, ReceiptOrder
from pouracquit.connectors.registry import factory
from pouracquit.core.errors import BadRecord, RetryableError
from pouracquit.core.model import Invoice
from pouracquit.sandbox.launch import EMULATORS
from pouracquit.sandbox.server import Sandbox

TIME_FACTOR = 0.02
SEEDED = 30


def set_faults(box: Sandbox, **faults: Any) -> None:
    body = json.dumps(faults).encode()
    req = urllib.request.Request(f"{box.url}/_sandbox/faults", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


def build(box: Sandbox, vendor: str, role: str, tmp: Path) -> Any:
    settings = EMULATORS[vendor].settings(box, tmp / "secrets")
    settings.pop("vendor")
    ctx = fast_context(DictTokens(), TIME_FACTOR, connection="contract")
    return factory(vendor, role).from_settings(settings, ctx)  # type: ignore[arg-type]


def document(name: str = "facture-acquittee-CONTRACT-1.pdf") -> Document:
    return Document(name=name, content=b"%PDF-1.7\n% contract test document\n%%EOF\n")


class SourceHarness(Protocol):
    vendor: str
    attach_write: str  # a path regex matching the write that stores the file

    def invoice_ids(self, box: Sandbox) -> list[str]: ...

    def touch(self, box: Sandbox, ref: str) -> None: ...

    def attachments(self, box: Sandbox, ref: str) -> list[str]: ...


class LedgerHarness(Protocol):
    vendor: str
    record_write: str
    attach_write: str
    write_method: str  # the HTTP method of those writes (POST, or PUT for Xero)

    def receipts(self, box: Sandbox, number: str) -> list[str]: ...

    def attachments(self, box: Sandbox, ref: str) -> list[str]: ...


@dataclass
class SourceRig:
    box: Sandbox
    source: CrmSource


@dataclass
class LedgerRig:
    box: Sandbox
    ledger: Ledger


def read_all(source: CrmSource, cursor: str | None) -> tuple[list[Invoice], list[str], str | None]:
    invoices: list[Invoice] = []
    rejected: list[str] = []
    for page in source.changes(cursor):
        invoices.extend(page.invoices)
        rejected.extend(sid for sid, _ in page.rejected)
        cursor = page.cursor if page.cursor is not None else cursor
    return invoices, rejected, cursor


class SourceContract:
    harness: ClassVar[SourceHarness]

    @pytest.fixture
    def rig(self, tmp_path: Path) -> Iterator[SourceRig]:
        emu = EMULATORS[self.harness.vendor]
        box = emu.make(time_factor=TIME_FACTOR).start()
        box.seed(emu.demo_seed(SEEDED, 11))
        try:
            yield SourceRig(box, build(box, self.harness.vendor, "source", tmp_path))
        finally:
            box.stop()

    def test_changes_cover_every_record(self, rig: SourceRig) -> None:
        invoices, rejected, cursor = read_all(rig.source, None)
        assert cursor is not None
        ids = [inv.source_id for inv in invoices] + rejected
        assert sorted(ids) == sorted(self.harness.invoice_ids(rig.box))
        assert len(ids) == len(set(ids)), "a record came twice in one pass"
        assert all(isinstance(inv, Invoice) and inv.lines for inv in invoices)

    def test_resume_without_duplicates(self, rig: SourceRig) -> None:
        invoices, _, cursor = read_all(rig.source, None)
        again, rejected, same = read_all(rig.source, cursor)
        assert again == [] and rejected == []
        ref = invoices[len(invoices) // 2].source_id
        self.harness.touch(rig.box, ref)
        changed, _, _ = read_all(rig.source, same)
        assert [inv.source_id for inv in changed] == [ref]

    def test_get_matches_changes(self, rig: SourceRig) -> None:
        invoices, _, _ = read_all(rig.source, None)
        first = invoices[0]
        got = rig.source.get(first.source_id)
        assert got.content_fingerprint() == first.content_fingerprint()
        assert got.amount_paid == first.amount_paid and got.status == first.status

    def test_attach_is_idempotent(self, rig: SourceRig) -> None:
        ref = self.harness.invoice_ids(rig.box)[0]
        first = rig.source.attach(ref, document(), may_exist=False)
        assert rig.source.attach(ref, document(), may_exist=True) == first
        assert self.harness.attachments(rig.box, ref) == [document().name]

    def test_attach_after_a_lost_response(self, rig: SourceRig) -> None:
        ref = self.harness.invoice_ids(rig.box)[1]
        set_faults(rig.box, scripted=[{"kind": "drop", "method": "POST", "path": self.harness.attach_write}])
        try:
            rig.source.attach(ref, document(), may_exist=False)
        except RetryableError:
            pass
        rig.source.attach(ref, document(), may_exist=True)
        assert self.harness.attachments(rig.box, ref) == [document().name]

    def test_rate_limits_are_absorbed(self, rig: SourceRig) -> None:
        set_faults(rig.box, rate_limit_rate=0.3, seed=3)
        invoices, rejected, _ = read_all(rig.source, None)
        assert len(invoices) + len(rejected) == len(self.harness.invoice_ids(rig.box))

    def test_outage_is_retryable(self, rig: SourceRig) -> None:
        set_faults(rig.box, error_rate=1.0)
        with pytest.raises(RetryableError):
            read_all(rig.source, None)


def order_for(invoice: Invoice, number: str) -> ReceiptOrder:
    return ReceiptOrder(key=f"pa-contract-{number}", number=number, invoice=invoice)


class LedgerContract:
    harness: ClassVar[LedgerHarness]

    @pytest.fixture
    def rig(self, tmp_path: Path) -> Iterator[LedgerRig]:
        box = EMULATORS[self.harness.vendor].make(time_factor=TIME_FACTOR).start()
        try:
            yield LedgerRig(box, build(box, self.harness.vendor, "ledger", tmp_path))
        finally:
            box.stop()

    def test_record_then_find(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        order = order_for(make_invoice(source_id="c-1", number="C-0001"), "C-0001")
        assert rig.ledger.find_receipt(order) is None
        ref = rig.ledger.record_receipt(order, may_exist=False)
        assert rig.ledger.find_receipt(order) == ref
        assert rig.ledger.record_receipt(order, may_exist=True) == ref
        assert self.harness.receipts(rig.box, "C-0001") == [ref]

    def test_record_after_a_lost_response(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        invoice = make_invoice(source_id="c-2", number="C-0002", lines=[("1", "50", "10"), ("3", "9.99", "5.5")])
        order = order_for(invoice, "C-0002")
        set_faults(rig.box, scripted=[{"kind": "drop", "method": self.harness.write_method,
                                       "path": self.harness.record_write}])
        try:
            rig.ledger.record_receipt(order, may_exist=False)
        except RetryableError:
            pass
        ref = rig.ledger.record_receipt(order, may_exist=True)
        assert self.harness.receipts(rig.box, "C-0002") == [ref]

    def test_attach_is_idempotent_even_after_a_lost_response(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        ref = rig.ledger.record_receipt(order_for(make_invoice(source_id="c-3"), "C-0003"), may_exist=False)
        set_faults(rig.box, scripted=[{"kind": "drop", "method": self.harness.write_method,
                                       "path": self.harness.attach_write}])
        try:
            rig.ledger.attach(ref, document(), may_exist=False)
        except RetryableError:
            pass
        first = rig.ledger.attach(ref, document(), may_exist=True)
        assert rig.ledger.attach(ref, document(), may_exist=True) == first
        assert self.harness.attachments(rig.box, ref) == [document().name]

    def test_unmapped_vat_rate_is_a_bad_record(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        invoice = make_invoice(source_id="c-4", lines=[("1", "100", "7")])
        with pytest.raises(BadRecord, match="7"):
            rig.ledger.record_receipt(order_for(invoice, "C-0004"), may_exist=False)

    def test_outage_is_retryable(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        set_faults(rig.box, error_rate=1.0)
        with pytest.raises(RetryableError):
            rig.ledger.record_receipt(order_for(make_invoice(source_id="c-5"), "C-0005"), may_exist=False)

    def test_rate_limits_are_absorbed(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        set_faults(rig.box, rate_limit_rate=0.3, seed=5)
        for i in range(6):
            order = order_for(make_invoice(source_id=f"r-{i}", number=f"R-{i}"), f"R-{i}")
            ref = rig.ledger.record_receipt(order, may_exist=False)
            assert self.harness.receipts(rig.box, f"R-{i}") == [ref]

