"""The pipeline on in-memory parts: receipts and credit notes, numbering,
issue dates, leases lost mid-way, drains past one batch, errors of our own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from engine_fakes import FakeLedger, FakeRenderer, FakeSource, wiring
from sqlalchemy import update

from pouracquit.common.model import Invoice
from pouracquit.connectors.base import ReceiptOrder
from pouracquit.core.intake import IntakeReport, take_page
from pouracquit.core.pipeline import Pipeline
from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt

Make = Callable[..., Invoice]
REFUNDED_AT = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def parts(store: Store, tmp_path: Path) -> tuple[FakeSource, FakeLedger, FakeRenderer]:
    return FakeSource(), FakeLedger(), FakeRenderer()


def sync(store: Store, tmp: Path, parts: tuple[FakeSource, FakeLedger, FakeRenderer], **policy: float) -> Pipeline:
    source, ledger, renderer = parts
    w = wiring(store, tmp, source, ledger, renderer, **policy)
    for page in source.changes(None):
        with store.unit() as u:
            take_page(u, "conn", page, IntakeReport())
    pipeline = Pipeline(w, "me")
    pipeline.drain()
    return pipeline


def test_receipt_then_credit_note_numbered_dated_and_linked(store: Store, tmp_path: Path, parts, make_invoice: Make
                                                            ) -> None:  # type: ignore[no-untyped-def]
    source, ledger, renderer = parts
    source.put(make_invoice())
    sync(store, tmp_path, parts)
    source.put(make_invoice(paid="0", modified_at=REFUNDED_AT))
    sync(store, tmp_path, parts)
    sync(store, tmp_path, parts)
    receipt, credit = renderer.rendered
    assert (receipt.number, receipt.issued_on, receipt.credits) == ("F-2026-0001", date(2026, 3, 1), None)
    assert credit.number == f"AV-{datetime.now(UTC).year}-000001" and credit.credits is not None
    assert (credit.credits.number, credit.credits.issue_date, credit.credits.reason) == (
        "F-2026-0001", date(2026, 3, 1), "refund")
    booked, credited = ledger.orders
    assert booked.credits is None and credited.credits is not None and credited.credits.ledger_id == "L0"
    assert credited.invoice.gross_total == booked.invoice.gross_total
    assert source.attached["inv-1"] == [f"Facture-{receipt.number}.pdf", f"Avoir-{credit.number}.pdf"]
    assert {r.status for r in store.receipts()} == {"done"}


def test_an_unnumbered_invoice_is_dated_the_day_it_was_numbered(store: Store, tmp_path: Path, parts,
                                                                 make_invoice: Make) -> None:  # type: ignore[no-untyped-def]
    source, _ledger, renderer = parts
    source.put(make_invoice(number=""))
    sync(store, tmp_path, parts)
    (paid,) = renderer.rendered
    assert paid.issued_on == datetime.now(UTC).date() or (datetime.now(UTC).date() - paid.issued_on).days <= 1
    assert paid.number.endswith("000001")


def test_one_drain_works_past_one_batch(store: Store, tmp_path: Path, parts, make_invoice: Make,
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    source, ledger, _renderer = parts
    source.put(*(make_invoice(f"s{i}", number=f"F-{i}") for i in range(7)))
    real_due = Store.due
    monkeypatch.setattr(Store, "due", lambda self, c, now, limit=3, skip=frozenset(): real_due(self, c, now, 3, skip))
    sync(store, tmp_path, parts)
    assert len(ledger.orders) == 7


def test_a_worker_that_lost_its_lease_writes_nothing_more(store: Store, tmp_path: Path, parts,
                                                          make_invoice: Make) -> None:  # type: ignore[no-untyped-def]
    source, ledger, renderer = parts
    source.put(make_invoice())
    pipeline: list[Pipeline] = []

    def stolen(paid) -> None:  # type: ignore[no-untyped-def]
        # another worker takes the receipt while this one renders (its lease ran out)
        with store.unit() as u:
            u.session.exec(update(Receipt).values(lease_owner="other"))  # type: ignore[call-overload]
        pipeline[0].heartbeat.renew_now()

    renderer.fail = stolen
    w = wiring(store, tmp_path, source, ledger, renderer)
    for page in source.changes(None):
        with store.unit() as u:
            take_page(u, "conn", page, IntakeReport())
    pipeline.append(Pipeline(w, "me"))
    (rid,) = store.due("conn", datetime.now(UTC))
    assert pipeline[0].process(rid) == ("busy", None)
    assert ledger.orders == [] and source.attached == {}


def test_an_error_of_our_own_machinery_is_retried_not_failed(store: Store, tmp_path: Path, parts,
                                                             make_invoice: Make) -> None:  # type: ignore[no-untyped-def]
    source, _ledger, renderer = parts
    source.put(make_invoice())

    def broken(paid) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("XMLSchemaParseError: not a built-in type")

    renderer.fail = broken
    sync(store, tmp_path, parts)
    (receipt,) = store.receipts()
    assert (receipt.status, receipt.step, receipt.attempts) == ("pending", "render", 1)
    assert "XMLSchemaParseError" in (receipt.last_error or "")


def test_a_credit_note_waits_for_its_receipt_to_be_booked(store: Store, tmp_path: Path, parts,
                                                          make_invoice: Make) -> None:  # type: ignore[no-untyped-def]
    source, ledger, _renderer = parts
    source.put(make_invoice())

    def refuse(order: ReceiptOrder) -> None:
        from pouracquit.common.errors import RetryableError
        if order.credits is None:
            raise RetryableError("ledger down")

    ledger.before_write = refuse
    sync(store, tmp_path, parts)
    source.put(make_invoice(paid="0"))
    sync(store, tmp_path, parts)
    credit = next(r for r in store.receipts() if r.kind == "credit_note")
    assert credit.step in ("number", "ledger_record") and credit.status == "pending"
    assert ledger.orders == []


def test_a_start_date_keeps_the_history_out_and_backfill_brings_it_once(
        store: Store, tmp_path: Path, parts, make_invoice: Make) -> None:  # type: ignore[no-untyped-def]
    from pouracquit.app.backfill import queue_backfill
    from pouracquit.core.intake import IntakePolicy

    source, ledger, renderer = parts
    old = make_invoice("old", number="F-1")  # paid 2026-03-05
    source.put(old, make_invoice("new", number="F-2", payments=(), paid=None))
    policy = IntakePolicy(start_date=date(2026, 4, 1))
    report = IntakeReport()
    with store.unit() as u:
        take_page(u, "conn", next(source.changes(None)), report, policy=policy)
    assert report.before_start == 1 and store.receipts() == []
    for _ in range(2):  # a second backfill finds the receipt and queues nothing more
        with store.unit() as u:
            queue_backfill(u, "conn", next(source.changes(None)), date(2026, 1, 1), date(2026, 4, 1), book=False,
                           report=IntakeReport())
    Pipeline(wiring(store, tmp_path, source, ledger, renderer), "me").drain()
    (receipt,) = store.receipts()
    assert (receipt.source_id, receipt.status, receipt.ledger_id) == ("old", "done", None)
    assert ledger.orders == [] and source.attached["old"]  # archived and attached, not booked
    with store.unit() as u:  # the next sync sees nothing new in it
        report = IntakeReport()
        take_page(u, "conn", next(source.changes(None)), report, policy=policy)
    assert report.events["paid"] == 0 and len(store.receipts()) == 1


def test_a_document_that_cannot_be_produced_spends_no_number(store: Store, tmp_path: Path, parts,
                                                             make_invoice: Make) -> None:  # type: ignore[no-untyped-def]
    source, _ledger, _renderer = parts
    source.put(make_invoice("bad", number="", customer="Sans Adresse"), make_invoice("good", number=""))
    sync(store, tmp_path, parts)
    by_source = {r.source_id: r for r in store.receipts()}
    assert (by_source["bad"].status, by_source["bad"].number) == ("quarantined", None)
    assert by_source["good"].number is not None and by_source["good"].number.endswith("000001")


def test_an_unusable_ledger_does_not_hold_up_the_crm(store: Store, tmp_path: Path, parts,
                                                     make_invoice: Make) -> None:  # type: ignore[no-untyped-def]
    from pouracquit.common.errors import ConfigError

    source, ledger, renderer = parts
    source.put(*(make_invoice(f"s{i}", number=f"F-{i}") for i in range(3)))
    calls: list[str] = []

    def refused(order: ReceiptOrder) -> None:
        calls.append(order.number)
        raise ConfigError("quickbooks refused the refresh token (invalid_grant): pouracquit connect quickbooks")

    ledger.before_write = refused
    w = wiring(store, tmp_path, source, ledger, renderer, workers=1)  # one at a time: the count below is exact
    for page in source.changes(None):
        with store.unit() as u:
            take_page(u, "conn", page, IntakeReport())
    report = Pipeline(w, "me").drain()
    assert report.ledger_down and "invalid_grant" in report.ledger_down
    assert report.outcomes["waiting"] == 3 and len(calls) == 1  # known down: asked once
    assert all(len(source.attached[f"s{i}"]) == 1 for i in range(3))  # the CRM side went on
    assert {(r.status, r.step) for r in store.receipts()} == {("pending", "ledger_record")}
    ledger.before_write = lambda order: None  # reconnected
    with store.unit() as u:  # (the wait would end by itself after backoff_max_seconds)
        u.session.exec(update(Receipt).values(next_attempt_at=None))  # type: ignore[call-overload]
    Pipeline(w, "me").drain()
    assert {r.status for r in store.receipts()} == {"done"} and len(ledger.orders) == 3
    assert all(len(source.attached[f"s{i}"]) == 1 for i in range(3))  # not attached twice
