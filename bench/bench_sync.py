"""Benchmark (not a test): one demo sync per CRM → ledger pair on the sandboxes,
at the vendors' real rate limits; prints receipts per second and API calls
per receipt, the scarce resource.

    .venv/bin/python bench/bench_sync.py [COUNT] [SOURCE:LEDGER ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pouracquit.app import logs
from pouracquit.app.demo import run_demo

PAIRS = ["hubspot:quickbooks", "hubspot:xero", "salesforce:quickbooks", "zoho:quickbooks"]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    pairs = sys.argv[2:] or PAIRS
    logs.configure("json", "error")
    print(f"{'pair':<24}{'receipts':>9}{'seconds':>9}{'receipts/s':>12}{'calls/receipt':>15}  calls")
    for pair in pairs:
        source, ledger = pair.split(":")
        with tempfile.TemporaryDirectory() as out:
            s = run_demo(source, ledger, Path(out), count)
        rate = s["receipts_created"] / s["seconds"] if s["seconds"] else 0.0
        print(f"{pair:<24}{s['receipts_created']:>9}{s['seconds']:>9.1f}{rate:>12.2f}"
              f"{s['api_calls_per_receipt']:>15}  {s['api_calls']}  failed={s['failed']}")


if __name__ == "__main__":
    main()
