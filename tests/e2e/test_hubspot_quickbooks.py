"""A paid HubSpot invoice becomes a QuickBooks sales receipt with its PDF
attached on both sides: exactly once, through faults, and not at all in a dry run."""

from __future__ import annotations

from collections import Counter

from pouracquit.app.cli import main


def paid_ids(rig) -> set[str]:  # type: ignore[no-untyped-def]
    return {
        inv["id"] for inv in rig.source.dump_state()["invoices"]
        if inv["properties"]["hs_invoice_status"] == "paid"
    }


def ledger_receipts(rig) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(r["DocNumber"] for r in rig.ledger.dump_state().get("SalesReceipts", []))


def ledger_attachments(rig) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(
        link["EntityRef"]["value"]
        for att in rig.ledger.dump_state().get("Attachables", [])
        for link in att.get("AttachableRef", [])
    )


def crm_notes(rig) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(
        ref for note in rig.source.dump_state()["notes"] for ref in note.get("associations", {}).get("invoices", [])
    )


def assert_exactly_once(rig, service) -> None:  # type: ignore[no-untyped-def]
    done = service.store.receipts("demo", "done", limit=10_000)
    assert {r.source_id for r in done} == paid_ids(rig)
    assert len(done) == len(paid_ids(rig))
    assert all(n == 1 for n in ledger_receipts(rig).values()), ledger_receipts(rig)
    assert len(ledger_receipts(rig)) == len(done)
    assert ledger_attachments(rig) == Counter({r.ledger_id: 1 for r in done})
    assert crm_notes(rig) == Counter({r.source_id: 1 for r in done})
    files = rig.source.dump_state()["files"]
    assert len(files) == len(done)


def test_demo_data_end_to_end_and_second_sync_creates_nothing(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=60)
    service = rig.service()
    first = rig.sync_until_settled(service)[0]
    assert first.seen == 60
    assert first.outcomes["done"] == len(paid_ids(rig)) >= 25
    assert_exactly_once(rig, service)
    writes_before = rig.ledger.call_counts()["by_operation"]
    second = rig.sync_until_settled(service)[0]
    assert second.planned == [] and second.outcomes == Counter()
    assert rig.ledger.call_counts()["by_operation"] == writes_before
    assert_exactly_once(rig, service)


def test_partial_payment_then_full_gives_one_receipt(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=20)
    service = rig.service()
    rig.sync_until_settled(service)
    partial = next(inv for inv in rig.source.dump_state()["invoices"]
                   if inv["properties"]["hs_invoice_status"] == "open"
                   and inv["properties"].get("hs_amount_paid") not in (None, "0", "0.00"))
    props = partial["properties"]
    rig.source.touch(partial["id"], {"hs_invoice_status": "paid", "hs_amount_paid": props["hs_amount_billed"],
                                     "hs_balance_due": "0.00"})
    rig.sync_until_settled(service)
    mine = [r for r in service.store.receipts("demo", limit=10_000) if r.source_id == partial["id"]]
    assert [r.status for r in mine] == ["done"]
    assert_exactly_once(rig, service)


def test_responses_lost_after_commit_still_yield_exactly_once(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=30)
    rig.faults(rig.ledger, scripted=[
        {"kind": "drop", "method": "POST", "path": "/batch$", "count": 2},
        {"kind": "drop", "method": "POST", "path": "salesreceipt", "count": 3},
        {"kind": "drop", "method": "POST", "path": "upload", "count": 3},
    ])
    rig.faults(rig.source, scripted=[
        {"kind": "drop", "method": "POST", "path": "^/files/v3/files$", "count": 3},
        {"kind": "drop", "method": "POST", "path": "^/crm/v3/objects/notes$", "count": 3},
    ])
    service = rig.service()
    rig.sync_until_settled(service)
    assert_exactly_once(rig, service)


def test_a_429_storm_slows_the_sync_and_loses_nothing(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=30)
    rig.faults(rig.ledger, rate_limit_rate=0.3, seed=1)
    rig.faults(rig.source, rate_limit_rate=0.3, seed=2)
    service = rig.service()
    rig.sync_until_settled(service)
    assert_exactly_once(rig, service)
    assert service.meter.error_snapshot()[("quickbooks", "RateLimited")] > 0


def test_dry_run_writes_nothing_anywhere(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=20)
    config = rig.write_config()
    assert main(["sync", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would create" in out
    assert not (rig.tmp / "data" / "pouracquit.sqlite").exists()
    assert rig.ledger.dump_state().get("SalesReceipts", []) == []
    assert rig.source.dump_state()["notes"] == [] and rig.source.dump_state()["files"] == []
    assert not any(name in rig.calls(rig.ledger) for name in ("write", "upload", "batch"))


def test_failing_receipt_stops_with_its_reason_and_exit_code(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=10)
    rig.faults(rig.ledger, scripted=[{"kind": "error", "method": "POST", "path": "salesreceipt|/batch$",
                                      "count": 1000}])
    config = rig.write_config(max_attempts=1, vendor_retry_attempts=2)
    assert main(["sync", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "ledger_record" in err and "503" in err
    assert main(["receipts", "list", "--config", str(config), "--status", "failed"]) == 0
    listed = capsys.readouterr().out
    assert "failed" in listed
    rig.faults(rig.ledger)
    service = rig.service()
    failed = service.store.receipts("demo", "failed")
    assert failed
    assert main(["receipts", "retry", failed[0].id, "--config", str(config)]) == 0
    assert main(["receipts", "show", failed[0].id, "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    assert '"status": "done"' in shown and "retry_requested" in shown
