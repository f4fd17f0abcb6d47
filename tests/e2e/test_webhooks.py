"""Webhooks: a payment in the HubSpot sandbox reaches an attached receipt
through the signed webhook and a targeted sync, long before the next poll;
unsigned or wrongly signed webhooks trigger nothing."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import Session, select

from pouracquit.state.db import make_engine
from pouracquit.state.tables import Receipt

from .test_service import fetch, free_port, wait_for


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_webhook_payment_to_receipt_latency_and_bad_signatures(make_rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=30)
    port = free_port()
    rig.config["admin"] = {"bind": f"127.0.0.1:{port}"}
    rig.launched.connection["interval_seconds"] = 3600  # only the first sync polls: webhooks do the rest
    config = rig.write_config()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "service.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "pouracquit.app.cli", "run", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'pouracquit.sqlite'}")
    try:
        wait_for(lambda: _ready(base), timeout=90)
        wait_for(lambda: json.loads(fetch(base + "/status")[1])["demo"]["receipts"].get("pending", 0) == 0)
        rig.source.webhooks.url = f"{base}/webhooks/hubspot"

        before = rig.source.call_counts()["total"]
        body = json.dumps([{"objectId": 1, "objectTypeId": "0-53"}]).encode()
        stamp = str(int(time.time() * 1000))
        assert post(base + "/webhooks/hubspot", body, {"X-HubSpot-Request-Timestamp": stamp}) == 401
        assert post(base + "/webhooks/hubspot", body, {"X-HubSpot-Request-Timestamp": stamp,
                                                       "X-HubSpot-Signature-v3": "Zm9yZ2Vk"}) == 401
        time.sleep(0.5)
        assert rig.source.call_counts()["total"] == before, "a rejected webhook triggered vendor calls"

        opens = [inv for inv in rig.source.dump_state()["invoices"]
                 if inv["properties"]["hs_invoice_status"] == "open"]
        assert len(opens) >= 4
        latencies = []
        for inv in opens:
            props = inv["properties"]
            started = time.monotonic()
            rig.source.touch(inv["id"], {"hs_invoice_status": "paid", "hs_amount_paid": props["hs_amount_billed"],
                                         "hs_balance_due": "0.00",
                                         "hs_payment_date": "2026-11-28T10:00:00.000Z"})
            wait_for(lambda ref=inv["id"]: _done(engine, ref), timeout=20)
            latencies.append(time.monotonic() - started)
        p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]
        print(f"webhook payment → attached receipt: n={len(latencies)} "
              f"median={statistics.median(latencies):.2f}s p95={p95:.2f}s")
        assert max(latencies) < 10
        assert all(d["ok"] for d in rig.source.webhooks.delivered)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        engine.dispose()


def _ready(base: str) -> bool:
    """Serving, and the first poll is done (/readyz alone answers as soon as the store does)."""
    try:
        return fetch(base + "/readyz")[0] == 200 and bool(json.loads(fetch(base + "/status")[1])["demo"]
                                                          ["last_success_at"])
    except OSError:
        return False


def _done(engine, source_id: str) -> bool:  # type: ignore[no-untyped-def]
    with Session(engine, info={"tenant": "default"}) as session:
        row = session.exec(select(Receipt).where(Receipt.source_id == source_id)).first()
        return row is not None and row.status == "done"
