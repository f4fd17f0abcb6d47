"""`make bench`: every figure of docs/benchmarks.md measured in one run, written
beside its bound or baseline with the command that reproduces it, plots in docs/img/.

    .venv/bin/python bench/run.py [--count N] [--quick] [--out docs/benchmarks.md]

``--quick`` (a smoke run) uses small sizes and skips the 100k records.
A part that fails or cannot be measured is written down as such, never guessed.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pairs
import render
import report
import scale
import webhook

import fleet
from pouracquit.app import logs

ROOT = Path(__file__).resolve().parent.parent
# time factor per ledger: QuickBooks at its real window; Xero's 60 calls/min scaled by 4
# (rendering is not scaled, so a pair bound by its vendor limit stays so)
PAIR_FACTOR = {"quickbooks": 1.0, "xero": 0.25}


def _attempt(name: str, results: dict[str, Any], fn: Any) -> None:
    start = time.monotonic()
    print(f"[bench] {name}...", flush=True)
    try:
        results[name] = fn()
    except Exception as exc:  # noqa: BLE001 - a failed part is reported in the document, not hidden
        results[name] = exc
        traceback.print_exc()
    print(f"[bench] {name} done in {time.monotonic() - start:.0f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300, help="demo invoices per pair (default 300)")
    parser.add_argument("--quick", action="store_true", help="small sizes, no 100k records")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    logs.configure("json", "error")
    count = 40 if args.quick else args.count
    sizes = [1_000] if args.quick else [1_000, 10_000, 100_000]
    results: dict[str, Any] = {}
    started = time.monotonic()
    for source, ledger in pairs.PAIRS:
        _attempt(f"pair {source}:{ledger}", results, lambda s=source, led=ledger: pairs.run_pair(
            s, led, count, time_factor=PAIR_FACTOR[led]))
    _attempt("render", results, lambda: render.measure(10 if args.quick else 30))
    for n in sizes:
        _attempt(f"scale {n}", results, lambda n=n: scale.run(n))
    _attempt("webhook", results, lambda: webhook.measure(5 if args.quick else 20))
    # the fleet writes its own page (docs/benchmarks-fleet.md): workers, tenants, scaling
    _attempt("fleet", results, lambda: fleet.main([*(["--tenants", "6", "--paid", "60"] if args.quick else []),
                                                   "--out", str(args.out.with_name("benchmarks-fleet.md"))]))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,  # noqa: S607
                            text=True, check=False).stdout.strip()
    machine = {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit or "?",
               "python": platform.python_version(), "cpus": report.cpus(), "load": report.load(),
               "minutes": (time.monotonic() - started) / 60, "count": count}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.write(results, machine, ROOT / "docs" / "img", PAIR_FACTOR), encoding="utf-8")
    print(f"[bench] wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
