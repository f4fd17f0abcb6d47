"""A no-change pass at N CRM records (HubSpot → QuickBooks): a first `pouracquit sync`
reads every invoice (a start date after every seeded payment, so nothing is booked:
the intake alone, its calls, time and peak memory), then a second one with nothing
changed: what it costs is what every poll of a quiet account costs.

The sandboxes run in this process (windows scaled by ``TIME_FACTOR``); each sync is
a child process, so its peak RSS is pouracquit's own, not the emulators'.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pouracquit.app.demo import _demo_settings
from pouracquit.app.toml_out import dumps
from pouracquit.sandbox.launch import Launched, launch

TIME_FACTOR = 0.01
TIME = "/usr/bin/time"  # GNU time: the peak RSS of the sync process alone
NOTHING_PAID_SINCE = "2026-11-30"  # the demo history is paid from January to about August 2026


@dataclass
class Pass:
    calls: int
    seconds: float
    peak_rss_mb: float


@dataclass
class ScaleRun:
    records: int
    seed_seconds: float
    first: Pass
    quiet: Pass


def _calls(launched: Launched) -> int:
    return sum(box.call_counts()["total"] for box in launched.sandboxes.values())


def _sync(config: Path, launched: Launched, timeout: float) -> Pass:
    before = _calls(launched)
    start = time.monotonic()
    # GNU time prints the child's own peak RSS (KiB) last on stderr
    command = [TIME, "-f", "%M", sys.executable, "-m", "pouracquit.app.cli", "sync", "--config", str(config)]
    child = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    seconds = time.monotonic() - start
    if child.returncode not in (0, 1):
        raise RuntimeError(f"sync exited {child.returncode}: {child.stderr[-400:]}")
    peak = int(child.stderr.strip().splitlines()[-1]) / 1024
    return Pass(_calls(launched) - before, seconds, peak)


def run(records: int, timeout: float = 1800.0) -> ScaleRun:
    workdir = Path(tempfile.mkdtemp(prefix="pouracquit-scale-"))
    start = time.monotonic()
    launched = launch("hubspot", "quickbooks", workdir / "secrets", count=records, time_factor=TIME_FACTOR)
    seeded = time.monotonic() - start
    try:
        raw = _demo_settings(workdir, launched)
        raw["time_factor"] = TIME_FACTOR
        raw["log"] = {"format": "json", "level": "error"}
        raw["connections"][0]["start_date"] = NOTHING_PAID_SINCE
        config = workdir / "pouracquit.toml"
        config.write_text(dumps(raw), encoding="utf-8")
        first = _sync(config, launched, timeout)
        quiet = _sync(config, launched, timeout)
        return ScaleRun(records, seeded, first, quiet)
    finally:
        launched.stop()
        shutil.rmtree(workdir, ignore_errors=True)
