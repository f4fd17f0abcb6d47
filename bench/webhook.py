"""Webhook → attached: a payment made in the HubSpot sandbox (the emulator signs
and sends HubSpot's v3 webhook) until its receipt is done (booked in QuickBooks,
attached on both sides), through `pouracquit run` at the vendors' real limits.
Polling is set to an hour, so only the webhook can bring the receipt in time."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from pouracquit.app.demo import _demo_settings
from pouracquit.app.toml_out import dumps
from pouracquit.sandbox.launch import launch
from pouracquit.state.db import make_engine
from pouracquit.state.tables import Receipt


@dataclass
class Latency:
    payments: int
    p50: float
    p95: float
    worst: float


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> dict | None:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - the local admin API
            return json.loads(answer.read())
    except (OSError, ValueError, urllib.error.HTTPError):
        return None


def _wait(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition was not met in time")
        time.sleep(0.05)


def measure(payments: int = 20, count: int = 60) -> Latency:
    workdir = Path(tempfile.mkdtemp(prefix="pouracquit-webhook-"))
    launched = launch("hubspot", "quickbooks", workdir / "secrets", count=count)
    port = _port()
    raw = _demo_settings(workdir, launched)
    raw["admin"] = {"bind": f"127.0.0.1:{port}"}
    raw["log"] = {"format": "json", "level": "error"}
    raw["connections"][0]["interval_seconds"] = 3600  # the first poll only: webhooks do the rest
    config = workdir / "pouracquit.toml"
    config.write_text(dumps(raw), encoding="utf-8")
    base = f"http://127.0.0.1:{port}"
    daemon = subprocess.Popen([sys.executable, "-m", "pouracquit.app.cli", "run", "--config", str(config)],  # noqa: S603
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    engine = make_engine(f"sqlite:///{workdir / 'data' / 'pouracquit.sqlite'}")

    def done(ref: str) -> bool:
        with Session(engine, info={"tenant": "default"}) as session:
            row = session.exec(select(Receipt).where(Receipt.source_id == ref)).first()
            return row is not None and row.status == "done"

    def settled() -> bool:
        status = _status(base + "/status")
        demo = (status or {}).get("demo") or {}
        return bool(demo.get("last_success_at")) and demo.get("receipts", {}).get("pending", 0) == 0

    try:
        _wait(settled, timeout=600)
        launched.source.webhooks.url = f"{base}/webhooks/hubspot"
        opens = [inv for inv in launched.source.dump_state()["invoices"]
                 if inv["properties"]["hs_invoice_status"] == "open"][:payments]
        seconds = []
        for inv in opens:
            props = inv["properties"]
            started = time.monotonic()
            launched.source.touch(inv["id"], {"hs_invoice_status": "paid", "hs_amount_paid": props["hs_amount_billed"],
                                              "hs_balance_due": "0.00", "hs_payment_date": "2026-11-28T10:00:00.000Z"})
            _wait(lambda ref=inv["id"]: done(ref), timeout=120)
            seconds.append(time.monotonic() - started)
        cuts = statistics.quantiles(seconds, n=20, method="inclusive") if len(seconds) > 1 else seconds * 19
        return Latency(len(seconds), statistics.median(seconds), cuts[-1], max(seconds))
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        engine.dispose()
        launched.stop()
        shutil.rmtree(workdir, ignore_errors=True)
