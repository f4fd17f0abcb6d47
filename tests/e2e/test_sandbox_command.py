"""`pouracquit sandbox --write-config`: the emulators alone, and a config a user
can run `sync` against by hand."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from pouracquit.app.cli import main


def test_sandbox_command_writes_a_working_config(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "try.toml"
    proc = subprocess.Popen([sys.executable, "-m", "pouracquit.app.cli", "sandbox", "--count", "12",
                             "--write-config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not config.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.2)
        assert config.exists()
        assert "{ file = " in config.read_text() and "secret" not in config.read_text().split("file")[0]
        assert main(["sync", "--config", str(config)]) == 0
        assert "API calls: hubspot" in capsys.readouterr().out
        assert main(["receipts", "list", "--config", str(config), "--status", "done"]) == 0
        assert len(capsys.readouterr().out.strip().splitlines()) > 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
