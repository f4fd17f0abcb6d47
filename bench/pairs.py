"""One sync of a CRM → ledger pair on the sandboxes, with the calls each
emulator answered by endpoint: what the calls-per-receipt figures come from."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pouracquit.app.demo import _demo_settings
from pouracquit.core.config import parse_settings
from pouracquit.core.service import Service
from pouracquit.core.sync import sync_connection
from pouracquit.sandbox.launch import launch

SOURCES = ("hubspot", "salesforce", "zoho")
LEDGERS = ("quickbooks", "xero")
PAIRS = [(s, led) for s in SOURCES for led in LEDGERS]


@dataclass
class PairRun:
    source: str
    ledger: str
    receipts: int
    seconds: float
    calls: dict[str, int]  # vendor -> calls
    by_endpoint: dict[str, dict[str, int]]  # vendor -> endpoint -> calls
    failed: int

    @property
    def per_receipt(self) -> float:
        return sum(self.calls.values()) / self.receipts if self.receipts else float("nan")


def run_pair(source: str, ledger: str, count: int, *, time_factor: float = 1.0,
             settings: dict[str, Any] | None = None) -> PairRun:
    """Seed ``count`` demo invoices, run one sync at ``time_factor`` (1.0: the vendors'
    real windows), count what each emulator answered."""
    workdir = Path(tempfile.mkdtemp(prefix="pouracquit-bench-"))
    launched = launch(source, ledger, workdir / "secrets", count=count, time_factor=time_factor)
    try:
        raw = _demo_settings(workdir, launched)
        raw.update(settings or {})
        parsed = parse_settings(raw, origin="bench")
        service = Service.open(parsed)
        clock = time.monotonic()
        try:
            result = sync_connection(service, "demo")
        finally:
            service.close()
        seconds = time.monotonic() - clock
        done = service.store.receipts("demo", "done", limit=1_000_000)
        counts = {vendor: box.call_counts() for vendor, box in launched.sandboxes.items()}
        return PairRun(source, ledger, len(done), seconds, {v: c["total"] for v, c in counts.items()},
                       {v: dict(c["by_endpoint"]) for v, c in counts.items()},
                       result.outcomes["failed"] + (1 if result.error else 0))
    finally:
        launched.stop()
        shutil.rmtree(workdir, ignore_errors=True)
