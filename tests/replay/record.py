"""Re-record a sandbox session into tests/replay/<source>-<ledger>/ (docs/recording.md).

    .venv/bin/python tests/replay/record.py hubspot quickbooks [--count 10]

Starts the two emulators through sandbox.launch (as ``pouracquit sandbox`` does), writes a config for
them, runs ``pouracquit sync --record`` against it in this process and stops the emulators.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from pouracquit.app.cli import main
from pouracquit.app.toml_out import dumps
from pouracquit.sandbox.launch import DEMO_SELLER, launch, state_key

HERE = Path(__file__).resolve().parent


def record(source: str, ledger: str, count: int, seed: int) -> Path:
    target = HERE / f"{source}-{ledger}"
    shutil.rmtree(target, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="pouracquit-record-"))
    launched = launch(source, ledger, work / "secrets", count=count, seed=seed, name="replay")
    try:
        config = work / "config.toml"
        config.write_text(dumps({"data_dir": str(work / "data"), "store": {"encryption_key": state_key(work)},
                                 "seller": DEMO_SELLER, "connections": [launched.connection]}), encoding="utf-8")
        code = main(["sync", "--config", str(config), "--record", str(target)])
        print(f"{source} → {ledger}: sync exit {code}, recorded in {target}")
    finally:
        launched.stop()
        shutil.rmtree(work, ignore_errors=True)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source")
    parser.add_argument("ledger")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    record(args.source, args.ledger, args.count, args.seed)
