"""The ledger contract for ``match_existing = "by_number"``: invoices a CRM's native
sync already pushed (``sandbox.native_sync``) are paid, never booked again.

A ledger's contract class inherits ``LedgerMatchContract`` beside ``LedgerContract``
(same harness, same rig): every check runs on both ledgers unchanged.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from contract_suite import (
    TWO_PAYMENTS,
    LedgerHarness,
    LedgerRig,
    build,
    document,
    order_for,
    record_through_a_lost_payment,
    two_payments,
)

from pouracquit.common.errors import PermanentError
from pouracquit.common.model import Invoice, Party
from pouracquit.connectors.base import ReceiptOrder
from pouracquit.sandbox.native_sync import SEED_KEY, pushed


class LedgerMatchContract:
    harness: ClassVar[LedgerHarness]

    def _matching(self, rig: LedgerRig, tmp: Path, **extra: Any) -> Any:
        return build(rig.box, self.harness.vendor, "ledger", tmp, match_existing="by_number", **extra)

    def _pushed(self, rig: LedgerRig, invoice: Invoice, skew: Decimal = Decimal(0)) -> str:
        rig.box.seed({SEED_KEY: [pushed(invoice, skew=skew)]})
        found = self.harness.receipts(rig.box, invoice.number)
        assert len(found) == 1
        return found[0]

    def test_a_pushed_invoice_gets_its_payments_once(self, rig: LedgerRig, make_invoice,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
        ledger = self._matching(rig, tmp_path)
        invoice = two_payments(make_invoice(source_id="mx-1", number="MX-0001", lines=[("1", "1000", "20")]))
        existing = self._pushed(rig, invoice)
        order = order_for(invoice, "MX-0001")
        assert ledger.find_receipt(order) is None  # there, but not paid yet
        assert record_through_a_lost_payment(rig, ledger, order, self.harness) == existing
        assert ledger.record_receipt(order, may_exist=True) == existing
        assert ledger.find_receipt(order) == existing
        assert self.harness.receipts(rig.box, "MX-0001") == [existing]
        assert self.harness.payments(rig.box, existing) == TWO_PAYMENTS
        first = ledger.attach(existing, document(), may_exist=False)
        assert ledger.attach(existing, document(), may_exist=True) == first
        assert self.harness.attachments(rig.box, existing) == [document().name]

    def test_an_invoice_paid_in_the_ledger_gets_no_second_payment(self, rig: LedgerRig,  # type: ignore[no-untyped-def]
                                                                  make_invoice, tmp_path: Path) -> None:
        ledger = self._matching(rig, tmp_path)
        invoice = make_invoice(source_id="mx-2", number="MX-0002")
        existing = self._pushed(rig, invoice)
        # someone else (the native sync, a person) records the payment first
        ledger.record_receipt(ReceiptOrder(key="someone-else", number="MX-0002", invoice=invoice), may_exist=True)
        paid = self.harness.payments(rig.box, existing)
        assert ledger.record_receipt(order_for(invoice, "MX-0002"), may_exist=False) == existing
        assert self.harness.payments(rig.box, existing) == paid == [(date(2026, 3, 5), invoice.gross_total.amount)]

    def test_a_pushed_invoice_that_disagrees_stops_with_both_totals(self, rig: LedgerRig,  # type: ignore[no-untyped-def]
                                                                    make_invoice, tmp_path: Path) -> None:
        ledger = self._matching(rig, tmp_path)
        invoice = make_invoice(source_id="mx-3", number="MX-0003")  # 2 x 100.00 at 20 %: 240.00
        existing = self._pushed(rig, invoice, skew=Decimal("10"))
        with pytest.raises(PermanentError, match=r"totals 252\.00 EUR but the CRM invoice totals 240\.00 EUR"):
            ledger.record_receipt(order_for(invoice, "MX-0003"), may_exist=False)
        assert self.harness.payments(rig.box, existing) == []
        assert self.harness.receipts(rig.box, "MX-0003") == [existing]

    def test_a_number_held_by_another_customer_stops(self, rig: LedgerRig, make_invoice,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
        ledger = self._matching(rig, tmp_path)
        invoice = make_invoice(source_id="mx-4", number="MX-0004")
        other = invoice.model_copy(update={"customer": Party(name="Quelqu'un d'autre SARL", email="x@autre.example")})
        existing = self._pushed(rig, other)
        with pytest.raises(PermanentError, match="Quelqu'un d'autre SARL"):
            ledger.record_receipt(order_for(invoice, "MX-0004"), may_exist=False)
        assert self.harness.receipts(rig.box, "MX-0004") == [existing]
        assert self.harness.payments(rig.box, existing) == []

    def test_an_invoice_not_in_the_ledger_stops_when_set_so(self, rig: LedgerRig,  # type: ignore[no-untyped-def]
                                                            make_invoice, tmp_path: Path) -> None:
        ledger = self._matching(rig, tmp_path, unmatched="stop")
        invoice = make_invoice(source_id="mx-5", number="MX-0005")
        with pytest.raises(PermanentError, match="no invoice numbered MX-0005"):
            ledger.record_receipt(order_for(invoice, "MX-0005"), may_exist=False)
        assert self.harness.receipts(rig.box, "MX-0005") == []

    def test_an_invoice_not_in_the_ledger_is_booked_as_the_mode_says(self, rig: LedgerRig,  # type: ignore[no-untyped-def]
                                                                      make_invoice, tmp_path: Path) -> None:
        ledger = self._matching(rig, tmp_path)
        invoice = make_invoice(source_id="mx-6", number="MX-0006")
        ref = ledger.record_receipt(order_for(invoice, "MX-0006"), may_exist=False)
        assert ledger.record_receipt(order_for(invoice, "MX-0006"), may_exist=True) == ref
        assert ledger.find_receipt(order_for(invoice, "MX-0006")) == ref
        assert self.harness.receipts(rig.box, "MX-0006") == [ref]
