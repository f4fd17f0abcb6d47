"""The whole life of an invoice after its receipt, as a user lives it on the
sandboxes: each event that can follow a receipt, two more syncs, then a new
paid invoice that must still get its receipt; every sync exits 0."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from pouracquit.app.cli import main
from pouracquit.core.document.validate import validate_pdf
from pouracquit.core.service import Service

COUNT = 20


def invoices(rig: Any) -> dict[str, dict[str, Any]]:
    return {inv["id"]: inv["properties"] for inv in rig.source.dump_state()["invoices"]}


def pick(rig: Any, status: str) -> str:
    return next(i for i, p in sorted(invoices(rig).items()) if p["hs_invoice_status"] == status
                and p.get("hs_currency", "EUR") == "EUR")


def sync(config: Path) -> int:
    return main(["sync", "--config", str(config)])


def settle(config: Path, rig: Any) -> None:
    """Sync (exit 0), then again while receipts wait for a retry."""
    assert sync(config) == 0
    for _ in range(40):
        service = Service.open(rig.settings())
        try:
            pending = service.store.receipts("demo", "pending")
        finally:
            service.close()
        if not pending:
            return
        time.sleep(0.1)
        assert sync(config) == 0
    raise AssertionError(f"receipts still pending: {[(r.id, r.step, r.last_error) for r in pending]}")


def refund(rig: Any, ref: str, left: Decimal) -> None:
    total = Decimal(invoices(rig)[ref]["hs_amount_billed"])
    rig.source.touch(ref, {"hs_amount_paid": f"{left:.2f}", "hs_balance_due": f"{total - left:.2f}",
                           "hs_invoice_status": "open" if left < total else "paid"})


def delete(rig: Any, ref: str) -> None:
    with rig.source.lock:  # HubSpot deletes softly: the record is archived and leaves every search
        rig.source.store.objects["invoices"][ref]["archived"] = True


EVENTS = {
    "full refund": lambda rig, ref: refund(rig, ref, Decimal("0")),
    "partial refund": lambda rig, ref: refund(rig, ref, Decimal(invoices(rig)[ref]["hs_amount_billed"]) / 2),
    "void": lambda rig, ref: rig.source.touch(ref, {"hs_invoice_status": "voided", "hs_balance_due": "0.00"}),
    "edited": lambda rig, ref: rig.source.touch(ref, {"hs_invoice_date": "2026-02-02T00:00:00Z"}),
    "deleted": delete,
}
CREDITED = {"full refund", "partial refund", "void"}


def test_what_follows_a_receipt_never_stops_the_connection(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=COUNT)
    config = rig.write_config()
    paid = [i for i, p in sorted(invoices(rig).items()) if p["hs_invoice_status"] == "paid"
            and p.get("hs_currency", "EUR") == "EUR"]
    affected = dict(zip(EVENTS, paid, strict=False))
    assert len(affected) == len(EVENTS), "the seed has too few paid invoices"
    waiting = pick(rig, "open")
    settle(config, rig)
    for event, ref in affected.items():
        EVENTS[event](rig, ref)
    settle(config, rig)
    settle(config, rig)
    total = invoices(rig)[waiting]["hs_amount_billed"]
    rig.source.touch(waiting, {"hs_amount_paid": total, "hs_balance_due": "0.00", "hs_invoice_status": "paid",
                               "hs_payment_date": "2026-11-02T00:00:00Z"})
    settle(config, rig)

    service = Service.open(rig.settings())
    try:
        mine = {(r.source_id, r.kind): r for r in service.store.receipts("demo", limit=1000)}
        assert mine[(waiting, "receipt")].status == "done"
        ledger = rig.ledger.dump_state()
        credited = []
        for event, ref in affected.items():
            assert mine[(ref, "receipt")].status == "done", event
            credit = mine.get((ref, "credit_note"))
            assert (credit is not None) == (event in CREDITED), event
            notes = [n for n in rig.source.dump_state()["notes"]
                     if ref in n.get("associations", {}).get("invoices", [])]
            assert len(notes) == (2 if credit else 1), event  # each document attached once
            if credit is None:
                continue
            credited.append(credit.number)
            assert credit.status == "done" and credit.number and credit.number.startswith("AV-"), event
            assert credit.document_sha256 is not None
            pdf = (Path(rig.settings().archive) / credit.document_sha256[:2] / credit.document_sha256[2:4]
                   / f"{credit.document_sha256}.pdf").read_bytes()
            assert validate_pdf(pdf, paid=False) == [], event
        booked = ledger.get("RefundReceipts", []) + ledger.get("CreditMemos", [])
        assert sorted(b["DocNumber"] for b in booked) == sorted(credited)
        receipts = {r.source_id for r in mine.values() if r.kind == "receipt" and r.status == "done"}
        assert len(ledger.get("SalesReceipts", [])) == len(receipts)
    finally:
        service.close()


def test_a_first_run_books_nothing_paid_before_the_start_date(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=6)
    rig.config["connections"][0]["start_date"] = "2026-12-01"  # after every seeded payment
    config = rig.write_config()
    assert sync(config) == 0
    out = capsys.readouterr().out
    assert "get no receipt; `pouracquit backfill --connection demo --from DATE` makes them" in out
    service = Service.open(rig.settings())
    try:
        assert service.store.receipts("demo") == []
    finally:
        service.close()
    assert rig.ledger.dump_state().get("SalesReceipts", []) == []
    assert main(["backfill", "--connection", "demo", "--from", "2026-01-01", "--config", str(config)]) == 0
    service = Service.open(rig.settings())
    try:
        backfilled = service.store.receipts("demo")
        assert backfilled and {r.status for r in backfilled} == {"done"}
    finally:
        service.close()
    assert sync(config) == 0  # and the next sync makes nothing more
    assert len(rig.ledger.dump_state()["SalesReceipts"]) == len(backfilled)
