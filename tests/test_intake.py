"""Intake on a real state store, no sandbox: what follows a receipt (refunds,
voids, edits) and records that must never stop a page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlmodel import select

from pouracquit.common.model import Invoice, InvoiceStatus
from pouracquit.connectors.base import Page
from pouracquit.core import intake as intake_module
from pouracquit.core.dry_run import DryUnit
from pouracquit.core.intake import IntakePolicy, IntakeReport, take_page
from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt, Snapshot

Make = Callable[..., Invoice]
LATER = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)


def take(store: Store, *invoices: Invoice, cursor: str = "c1", policy: IntakePolicy | None = None) -> IntakeReport:
    report = IntakeReport()
    with store.unit() as u:
        take_page(u, "conn", Page(invoices=list(invoices), cursor=cursor), report, policy=policy)
    return report


def rows(store: Store) -> list[Receipt]:
    with store.session() as session:
        found = list(session.exec(select(Receipt)))
    return sorted(found, key=lambda r: (r.kind != "receipt", r.payment_version))


def test_full_refund_after_the_receipt_queues_one_credit_note(store: Store, make_invoice: Make) -> None:
    take(store, make_invoice())
    refunded = make_invoice(paid="0", modified_at=LATER)
    report = take(store, refunded, cursor="c2")
    assert report.events["refunded"] == 1 and not report.rejected
    receipt, credit = rows(store)
    assert (credit.kind, credit.payment_version, credit.original_receipt_id) == ("credit_note", 1, receipt.id)
    assert credit.amount == receipt.amount == Decimal("240.00")
    stated = Invoice.model_validate_json(credit.invoice_json)
    assert stated.lines == Invoice.model_validate_json(receipt.invoice_json).lines
    assert stated.issue_date.isoformat() == "2026-04-02" and stated.fully_paid
    for _ in range(2):  # the next syncs see the same record: nothing more
        take(store, refunded, cursor="c3")
    assert len(rows(store)) == 2
    assert store.connection_states()["conn"].cursor == "c3"


def test_partial_refunds_each_get_their_credit_note_never_more_than_paid(store: Store, make_invoice: Make) -> None:
    take(store, make_invoice(lines=[("1", "100", "20"), ("1", "50", "5.5")]))
    take(store, make_invoice(lines=[("1", "100", "20"), ("1", "50", "5.5")], paid="100.00"))
    take(store, make_invoice(lines=[("1", "100", "20"), ("1", "50", "5.5")], paid="0"))
    _receipt, first, second = rows(store)
    total = Decimal("172.75")  # 120.00 + 52.75
    assert first.amount == total - Decimal("100.00")
    first_lines = Invoice.model_validate_json(first.invoice_json).lines
    assert {line.vat_rate for line in first_lines} == {Decimal("20"), Decimal("5.5")}
    assert second.amount == Decimal("100.00")
    assert first.amount + second.amount == total


def test_void_after_the_receipt_credits_what_is_left(store: Store, make_invoice: Make) -> None:
    take(store, make_invoice())
    take(store, make_invoice(paid="200.00"))
    take(store, make_invoice(paid=None, status=InvoiceStatus.VOID))
    _receipt, refund, cancel = rows(store)
    assert (refund.amount, cancel.amount) == (Decimal("40.00"), Decimal("200.00"))
    assert '"cancellation"' in (cancel.credits_json or "")


def test_flag_policy_records_the_refund_and_queues_nothing(store: Store, make_invoice: Make) -> None:
    take(store, make_invoice())
    report = take(store, make_invoice(paid="0"), policy=IntakePolicy(refunds="flag"))
    assert [r.kind for r in rows(store)] == ["receipt"]
    assert report.notices and "refunded" in report.notices[0][1]


def test_an_edit_after_the_receipt_is_a_notice_not_a_document(store: Store, make_invoice: Make) -> None:
    take(store, make_invoice())
    report = take(store, make_invoice(customer="Autre Client SARL"))
    assert len(rows(store)) == 1 and report.notices


def test_an_unexpected_error_quarantines_only_its_record(store: Store, make_invoice: Make,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    real = intake_module.diff

    def broken(before, now):  # type: ignore[no-untyped-def]
        if now.source_id == "bad":
            raise TypeError("got multiple values for argument 'event'")
        return real(before, now)

    monkeypatch.setattr(intake_module, "diff", broken)
    report = take(store, make_invoice("bad"), make_invoice("good", number="F-2"), cursor="after")
    assert "TypeError" in report.rejected["bad"]
    assert [r.source_id for r in rows(store)] == ["good"]
    assert store.connection_states()["conn"].cursor == "after"
    assert [q.source_id for q in store.quarantined("conn")] == ["bad"]
    with store.session() as session:  # the failed record left no half-written snapshot
        assert session.get(Snapshot, ("default", "conn", "bad")) is None


def test_a_value_the_database_refuses_quarantines_the_record(store: Store, make_invoice: Make) -> None:
    long_id = "x" * 250  # source_id is 200 characters in the store
    report = take(store, make_invoice(long_id), make_invoice("good", number="F-2"), cursor="after")
    assert long_id in report.rejected and "source_id" in report.rejected[long_id]  # named before any write
    assert [r.source_id for r in rows(store)] == ["good"]
    assert store.connection_states()["conn"].cursor == "after"


def test_a_database_error_on_one_record_quarantines_it(store: Store, make_invoice: Make,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import DataError

    real = intake_module.new_receipt

    def refused(connection, invoice, version, **kw):  # type: ignore[no-untyped-def]
        if invoice.source_id == "bad":
            raise DataError("INSERT", {}, Exception("value too long for type character varying(60)"))
        return real(connection, invoice, version, **kw)

    monkeypatch.setattr(intake_module, "new_receipt", refused)
    report = take(store, make_invoice("bad"), make_invoice("good", number="F-2"), cursor="after")
    assert "value too long" in report.rejected["bad"]
    assert [r.source_id for r in rows(store)] == ["good"]


def test_a_foreign_invoice_is_queued_with_its_euro_rate(store: Store, make_invoice: Make) -> None:
    take(store, make_invoice(currency="USD"), make_invoice("rated", currency="USD", exchange_rate="0.9"))
    stated = {r.source_id: Invoice.model_validate_json(r.invoice_json) for r in rows(store)}
    assert stated["inv-1"].exchange_rate and stated["inv-1"].exchange_rate_source.startswith("BCE")
    assert (stated["rated"].exchange_rate, stated["rated"].exchange_rate_source) == (Decimal("0.9"), "CRM")


def test_a_currency_without_a_rate_is_quarantined(store: Store, make_invoice: Make) -> None:
    report = take(store, make_invoice(currency="XPF"), make_invoice("good", number="F-2"))
    assert "exchange_rate" in report.rejected["inv-1"]
    assert [r.source_id for r in rows(store)] == ["good"]


def test_a_dry_run_plans_what_a_sync_would_and_writes_nothing(store: Store, make_invoice: Make) -> None:
    take(store, make_invoice())  # the receipt is issued
    with store.session() as session:
        before = (list(session.exec(select(Receipt))), session.exec(select(Snapshot)).all())
    dry, report = DryUnit(store), IntakeReport()
    refunded, fresh = make_invoice(paid="0", modified_at=LATER), make_invoice("inv-2", number="F-2")
    take_page(dry, "conn", Page(invoices=[refunded, fresh, fresh], cursor="c9"), report)
    # the same plan a sync makes: the refund's credit note against the stored receipt, one new receipt
    # (the record met twice in one run is planned once)
    assert sorted(p.kind for p in report.planned) == ["credit_note", "receipt"]
    assert {k[2] for k in dry.receipts} == {"credit_note", "receipt"} and dry.cursors == {"conn": "c9"}
    with store.session() as session:
        after = (list(session.exec(select(Receipt))), session.exec(select(Snapshot)).all())
    assert [r.id for r in after[0]] == [r.id for r in before[0]]
    assert [(s.source_id, s.amount_paid) for s in after[1]] == [(s.source_id, s.amount_paid) for s in before[1]]


def test_a_dry_run_record_that_fails_leaves_none_of_its_writes(store: Store, make_invoice: Make,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    dry, report = DryUnit(store), IntakeReport()

    def explode(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(DryUnit, "put_snapshot", explode)
    take_page(dry, "conn", Page(invoices=[make_invoice()], cursor=None), report)
    assert list(report.rejected) == ["inv-1"] and dry.receipts == {} and ("conn", "inv-1") in dry.quarantined
