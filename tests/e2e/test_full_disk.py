"""A full disk: `sync` says so plainly and exits non-zero, nothing is corrupted,
and once there is room again the next sync finishes exactly once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pouracquit.app.cli import main


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only): room for the state store, not for the archive."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_clear_error_and_nothing_is_lost(make_rig, small_disk: Path) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=40)
    rig.config["data_dir"] = str(small_disk)
    # leases of receipts the failed run held lapse after lease_seconds: kept short here
    config = rig.write_config(max_attempts=50, lease_seconds=1)
    run = [sys.executable, "-m", "pouracquit.app.cli"]
    first = subprocess.run([*run, "sync", "--config", str(config)], capture_output=True, text=True,
                           timeout=300, check=False)
    assert first.returncode != 0
    assert "no space left" in first.stderr.lower() or "disk is full" in first.stderr.lower(), first.stderr[-1500:]
    assert "Traceback" not in first.stderr

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    time.sleep(1.5)
    second = subprocess.run([*run, "sync", "--config", str(config)], capture_output=True, text=True,
                            timeout=300, check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    service = rig.service()
    receipts = service.store.receipts("demo", limit=1000)
    stuck = [(r.status, r.step, r.last_error) for r in receipts if r.status != "done"]
    assert receipts and not stuck, stuck
    numbers = [r["DocNumber"] for r in rig.ledger.dump_state()["SalesReceipts"]]
    assert sorted(numbers) == sorted(r.number for r in receipts)
    assert main(["archive", "verify", "--config", str(config)]) == 0
