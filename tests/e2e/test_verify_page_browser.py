"""The public verification page, as a person's browser shows it (Debian's
Chromium, headless): the verdict, the number and the amount are on screen."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pouracquit.app.admin import AdminServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as root, without the network: the flags the machine notes prescribe
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90, check=False)
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_verify_page_in_a_real_browser(make_rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=4)
    service = rig.service()
    rig.sync_until_settled(service)
    receipt = service.store.receipts("demo", "done")[0]
    admin = AdminServer(service).start()
    try:
        url = f"{admin.url}/receipts/{receipt.id}/verify"
        dom = chromium(tmp_path, "--dump-dom", url)
        shot = tmp_path / "verify.png"
        chromium(tmp_path, f"--screenshot={shot}", "--window-size=800,600", url)
    finally:
        admin.stop()
    assert 'class="verdict ok"' in dom and "Document authentique" in dom
    assert receipt.number and receipt.number in dom
    assert "Atelier Lumière SAS" in dom
    assert shot.exists() and shot.read_bytes().startswith(b"\x89PNG")
