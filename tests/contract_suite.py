"""The connector contract suite. Every connector passes it unchanged.

A connector's contract test file is a few lines: a harness that starts its
sandbox and inspects it, and a class that inherits ``SourceContract`` or
``LedgerContract`` with that harness. The suite checks: changes since a
cursor, resume without duplicates, attach idempotency (also after a response
lost once the vendor committed), record-and-find idempotency, and error
classification; for ledgers also credit notes (recorded once, found again,
attached once), a foreign-currency invoice booked in its currency at the
invoice's rate, and one ledger payment per invoice payment where the
connector has a per-payment mode.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest
from support import DictTokens, fast_context

from pouracquit.common.errors import BadRecord, RetryableError
from pouracquit.common.model import CreditReference, Invoice, Payment, PaymentMethod
from pouracquit.common.money import Money
from pouracquit.connectors.base import CrmSource, Document, Ledger, ReceiptOrder
from pouracquit.connectors.registry import factory
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


def build(box: Sandbox, vendor: str, role: str, tmp: Path, **extra: Any) -> Any:
    settings = EMULATORS[vendor].settings(box, tmp / "secrets")
    settings.pop("vendor")
    settings.update(extra)
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
    credit_write: str  # a path regex matching the write that books a credit note
    # Ledger settings that book an invoice plus one ledger payment per invoice payment
    # (e.g. {"mode": "invoice_payment"}); None when the connector has no such mode.
    payment_mode: Mapping[str, Any] | None
    payment_write: str  # in that mode, a path regex matching the write that books one payment

    def receipts(self, box: Sandbox, number: str) -> list[str]: ...

    def attachments(self, box: Sandbox, ref: str) -> list[str]:
        """File names attached to the booking ``ref`` (as record_receipt returned it)."""
        ...

    def credit_notes(self, box: Sandbox, number: str) -> list[str]:
        """The refs (as record_receipt returned them) of the credit documents numbered ``number``."""
        ...

    def booked(self, box: Sandbox, ref: str) -> Mapping[str, Any]:
        """The booking ``ref`` as the ledger holds it: ``{"currency": "USD", "rate": Decimal,
        "total": Decimal}``, rate in home currency (EUR) for ONE unit of the document's
        currency (Invoice.exchange_rate's convention, whatever the vendor stores), total
        in the document's currency, VAT included."""
        ...

    def payments(self, box: Sandbox, ref: str) -> list[tuple[date, Decimal]]:
        """(date, amount) of each ledger payment applied to booking ``ref``, oldest first."""
        ...


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


class LedgerCoreContract:
    """Receipts: record, find, attach, errors."""

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



REFUNDED_AT = datetime(2026, 4, 2, 14, 0, tzinfo=UTC)
TWO_PAYMENTS = [(date(2026, 3, 5), Decimal("400.00")), (date(2026, 3, 20), Decimal("800.00"))]


def two_payments(invoice: Invoice) -> Invoice:
    """``invoice`` (1200.00 gross) paid in two parts, as ``TWO_PAYMENTS``."""
    first = Payment(amount=Money(amount="400.00", currency="EUR"), paid_at=datetime(2026, 3, 5, 9, 30, tzinfo=UTC),
                    method=PaymentMethod.TRANSFER, reference="VIR-A")
    second = Payment(amount=Money(amount="800.00", currency="EUR"), paid_at=datetime(2026, 3, 20, 16, 0, tzinfo=UTC),
                     method=PaymentMethod.CARD, reference="CB-B")
    return invoice.model_copy(update={"payments": (first, second)})


def record_through_a_lost_payment(rig: LedgerRig, ledger: Ledger, order: ReceiptOrder,
                                  harness: LedgerHarness) -> str:
    """Record ``order`` while the answer to its first payment write is lost, then again."""
    set_faults(rig.box, scripted=[{"kind": "drop", "method": harness.write_method, "path": harness.payment_write}])
    try:
        ledger.record_receipt(order, may_exist=False)
    except RetryableError:
        pass
    return ledger.record_receipt(order, may_exist=True)


def credit_order(invoice: Invoice, number: str, original: str, reason: str = "refund",
                 ledger_id: str = "") -> ReceiptOrder:
    """A credit note (facture d'avoir) ``number`` crediting the whole of invoice
    ``original``: the same lines, one payment = the money returned, dated the refund."""
    refund = Payment(amount=invoice.gross_total, paid_at=REFUNDED_AT, method=PaymentMethod.TRANSFER,
                     reference="REMB-001")
    credited = invoice.model_copy(update={"payments": (refund,)})
    return ReceiptOrder(key=f"pa-contract-{number}", number=number, invoice=credited,
                        credits=CreditReference(number=original, issue_date=invoice.issue_date,
                                                reason=reason, ledger_id=ledger_id))  # type: ignore[arg-type]


class LedgerContract(LedgerCoreContract):
    """What every ledger passes: receipts, plus credit notes, foreign currency and
    (where the connector has a per-payment mode) one ledger payment per invoice payment."""

    harness: ClassVar[LedgerHarness]

    def test_credit_note_is_recorded_once_and_found_again(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        invoice = make_invoice(source_id="cn-1", number="CN-INV-1", lines=[("1", "80", "20"), ("2", "10", "5.5")])
        original = rig.ledger.record_receipt(order_for(invoice, "CN-INV-1"), may_exist=False)
        order = credit_order(invoice, "AV-0001", "CN-INV-1", ledger_id=original)
        assert rig.ledger.find_receipt(order) is None
        ref = rig.ledger.record_receipt(order, may_exist=False)
        assert ref != original
        assert rig.ledger.find_receipt(order) == ref
        assert rig.ledger.record_receipt(order, may_exist=True) == ref
        assert self.harness.credit_notes(rig.box, "AV-0001") == [ref]
        assert self.harness.receipts(rig.box, "CN-INV-1") == [original]
        assert self.harness.booked(rig.box, ref)["total"] == invoice.gross_total.amount

    def test_credit_note_after_a_lost_response(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        invoice = make_invoice(source_id="cn-2", number="CN-INV-2")
        order = credit_order(invoice, "AV-0002", "CN-INV-2")
        set_faults(rig.box, scripted=[{"kind": "drop", "method": self.harness.write_method,
                                       "path": self.harness.credit_write}])
        try:
            rig.ledger.record_receipt(order, may_exist=False)
        except RetryableError:
            pass
        ref = rig.ledger.record_receipt(order, may_exist=True)
        assert self.harness.credit_notes(rig.box, "AV-0002") == [ref]

    def test_cancellation_is_a_credit_note_too(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        invoice = make_invoice(source_id="cn-3", number="CN-INV-3")
        order = credit_order(invoice, "AV-0003", "CN-INV-3", reason="cancellation")
        ref = rig.ledger.record_receipt(order, may_exist=False)
        assert rig.ledger.record_receipt(order, may_exist=True) == ref
        assert self.harness.credit_notes(rig.box, "AV-0003") == [ref]

    def test_attach_to_a_credit_note_is_idempotent(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        order = credit_order(make_invoice(source_id="cn-4", number="CN-INV-4"), "AV-0004", "CN-INV-4")
        ref = rig.ledger.record_receipt(order, may_exist=False)
        pdf = document("facture-avoir-AV-0004.pdf")
        first = rig.ledger.attach(ref, pdf, may_exist=False)
        assert rig.ledger.attach(ref, pdf, may_exist=True) == first
        assert self.harness.attachments(rig.box, ref) == [pdf.name]

    def test_foreign_currency_is_booked_in_its_currency_at_the_invoice_rate(self, rig: LedgerRig, make_invoice) -> None:  # type: ignore[no-untyped-def]
        invoice = make_invoice(source_id="fx-1", number="FX-0001", currency="USD", customer="Acme Corp",
                               lines=[("3", "120.50", "0")], exchange_rate=Decimal("0.9215"),
                               exchange_rate_source="ECB 2026-03-01")
        ref = rig.ledger.record_receipt(order_for(invoice, "FX-0001"), may_exist=False)
        booked = self.harness.booked(rig.box, ref)
        assert booked["currency"] == "USD"
        assert Decimal(booked["rate"]).quantize(Decimal("0.0001")) == Decimal("0.9215")
        assert booked["total"] == invoice.gross_total.amount
        assert rig.ledger.record_receipt(order_for(invoice, "FX-0001"), may_exist=True) == ref
        assert self.harness.receipts(rig.box, "FX-0001") == [ref]

    def test_each_payment_is_booked_once_in_payment_mode(self, rig: LedgerRig, make_invoice,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
        if self.harness.payment_mode is None:
            pytest.skip(f"{self.harness.vendor} books one receipt per invoice only")
        ledger = build(rig.box, self.harness.vendor, "ledger", tmp_path, **self.harness.payment_mode)
        invoice = two_payments(make_invoice(source_id="pm-1", number="PM-0001", lines=[("1", "1000", "20")]))
        order = order_for(invoice, "PM-0001")
        ref = record_through_a_lost_payment(rig, ledger, order, self.harness)
        assert ledger.record_receipt(order, may_exist=True) == ref
        assert self.harness.payments(rig.box, ref) == TWO_PAYMENTS
