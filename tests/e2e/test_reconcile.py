"""Acceptance of the reconciliation (issue 13): after a demo-like run on the
sandboxes `report reconcile` exits 0; after one booking is deleted in the ledger
(through QuickBooks' own API) and one paid amount changed in the CRM, it exits 1
naming exactly those two, each with its fix."""

from __future__ import annotations

import json
import math
import threading
from decimal import Decimal

from pouracquit.app.cli import main
from pouracquit.app.daemon import ConnectionJobs, build_scheduler
from pouracquit.app.metrics import Metrics
from pouracquit.app.report_cmd import daily_reconcile, reconcile_command
from pouracquit.connectors.quickbooks import paid
from pouracquit.core.insight.reconcile import drift_samples
from pouracquit.sandbox.demo_data import demo_invoices
from pouracquit.state.tables import Receipt

from .conftest import post_json


def _done(service) -> list[Receipt]:  # type: ignore[no-untyped-def]
    rows = service.store.receipts("demo", "done", limit=1000)
    return sorted((r for r in rows if r.kind == "receipt"), key=lambda r: r.number or "")


def test_reconcile_clean_then_two_drifts(make_rig, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=10)
    service = rig.service()
    rig.sync_until_settled(service)
    settings = rig.settings()
    capsys.readouterr()
    assert reconcile_command(settings, fmt="json") == 0, capsys.readouterr().out
    clean = json.loads(capsys.readouterr().out)
    assert clean[0]["drifts"] == [] and clean[0]["receipts_checked"] >= 5
    assert clean[0]["ledger_documents"] >= clean[0]["receipts_checked"]
    assert drift_samples(service) == [({"connection": "demo"}, 0.0)]
    assert reconcile_command(settings, start="2026-04-01", fmt="json") == 0  # a period: still in step
    assert json.loads(capsys.readouterr().out)[0]["receipts_checked"] == clean[0]["receipts_checked"]

    deleted, changed = _done(service)[:2]
    ledger = service.wiring(settings.connection("demo")).ledger
    # the read-back pages: three documents a query give what one query of 1000 gives
    whole = list(ledger.paid_state(None))
    monkeypatch.setattr(paid, "PAGE_MAX", 3)
    assert list(ledger.paid_state(None)) == whole and len(whole) > 3
    row = ledger.api.read("test.read", "SalesReceipt", deleted.ledger_id)
    ledger.api.client().delete_object("SalesReceipt", json.dumps({"Id": row["Id"], "SyncToken": row["SyncToken"]}))
    lowered = changed.amount - Decimal("0.01")
    post_json(f"{rig.source.url}/_sandbox/hubspot/invoices/{changed.source_id}",
              {"properties": {"hs_amount_paid": f"{lowered:.2f}"}})

    assert reconcile_command(settings, fmt="json") == 1
    drifts = json.loads(capsys.readouterr().out)[0]["drifts"]
    assert sorted((d["kind"], d["number"]) for d in drifts) == sorted(
        [("deleted_in_ledger", deleted.number), ("amount_differs", changed.number)])
    assert all(d["fix"] for d in drifts)
    assert drift_samples(service) == [({"connection": "demo"}, 2.0)]
    metrics = Metrics(service)
    assert b'pouracquit_reconciliation_drift{connection="demo",tenant="default"} 2.0' in metrics.exposition()
    # `pouracquit run` schedules the same check daily, under the connection's lock
    scheduler = build_scheduler(service, {"demo": ConnectionJobs(service, "demo", metrics)})
    assert scheduler.get_job("reconcile:demo") is not None
    daily_reconcile(service, "demo", threading.Lock())()
    assert len(service.store.events(kind="reconciled", connection="demo")) == 4
    assert main(["report", "reconcile", "--config", str(rig.write_config())]) == 1
    text = capsys.readouterr().out
    assert f"invoice {deleted.number} (ledger {deleted.ledger_id})" in text
    assert f"{lowered:.2f} EUR paid" in text or f"{lowered:.2f} USD paid" in text

    # a third: an invoice marked open again in the CRM while its booking says paid
    reopened = _done(service)[2]
    post_json(f"{rig.source.url}/_sandbox/hubspot/invoices/{reopened.source_id}",
              {"properties": {"hs_invoice_status": "open"}})
    assert reconcile_command(settings, fmt="json") == 1
    drifts = json.loads(capsys.readouterr().out)[0]["drifts"]
    assert ("paid_in_ledger_open_in_crm", reopened.number) in [(d["kind"], d["number"]) for d in drifts]
    assert len(drifts) == 3


def test_reconcile_clean_on_xero(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=8, ledger="xero")
    service = rig.service()
    rig.sync_until_settled(service)
    capsys.readouterr()
    assert reconcile_command(rig.settings(), fmt="json") == 0, capsys.readouterr().out
    result = json.loads(capsys.readouterr().out)[0]
    assert result["drifts"] == [] and result["receipts_checked"] == len(_done(service)) >= 3
    assert result["ledger_documents"] >= result["receipts_checked"]
    # a ledger that answers only 5xx: not "in step", and the metric says it could not tell
    rig.faults(rig.ledger, error_rate=1.0)
    assert reconcile_command(rig.settings(vendor_retry_attempts=1)) == 1
    assert "demo: not reconciled: " in capsys.readouterr().out
    assert math.isnan(drift_samples(service)[0][1])


def test_reconcile_clean_in_invoice_payment_mode(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=8)
    rig.launched.connection["ledger"]["mode"] = "invoice_payment"
    service = rig.service()
    rig.sync_until_settled(service)
    capsys.readouterr()
    # an Invoice carries its issue date, before the payment: a period still finds it
    assert reconcile_command(rig.settings(), start="2026-03-01", fmt="json") == 0, capsys.readouterr().out
    done = _done(service)
    assert done and all(r.ledger_id and r.ledger_id.startswith("Invoice:") for r in done)


def test_reconcile_before_the_first_sync(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=6)
    paid = [d for d in demo_invoices(6) if d["status"] == "paid"]
    # history paid before the start date is owed nothing: in step
    rig.launched.connection["start_date"] = "2026-12-01"
    assert reconcile_command(rig.settings(), fmt="json") == 0, capsys.readouterr().out
    capsys.readouterr()
    # from a start date before it, every paid invoice is owed a receipt the next sync makes
    rig.launched.connection["start_date"] = "2026-01-01"
    assert reconcile_command(rig.settings(), fmt="json") == 1
    drifts = json.loads(capsys.readouterr().out)[0]["drifts"]
    assert {d["kind"] for d in drifts} == {"paid_not_booked"} and len(drifts) == len(paid)
    assert {d["fix"] for d in drifts} == {"pouracquit sync --connection demo"}
