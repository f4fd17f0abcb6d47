"""What the chaos rigs share: sizes, the fault mix, and small HTTP and
process helpers (127.0.0.1 only)."""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------
# sizes


@dataclass(frozen=True)
class Size:
    invoices: int  # seeded in the CRM; about 60 % of them end up paid
    kills: int  # SIGKILLs per phase
    time_factor: float  # vendor time windows (rate limits, token lifetimes) scaled by this
    settle_seconds: float  # deadline for the undisturbed final run


SIZES = {
    # ~36 paid invoices and 8 kills per phase: both phases fit the CI budget on 2 cores
    "small": Size(invoices=60, kills=8, time_factor=0.05, settle_seconds=150),
    # >= 200 paid invoices and >= 20 kills per phase, by hand
    "large": Size(invoices=340, kills=22, time_factor=0.05, settle_seconds=600),
}

# The fault mix, for the second phase. Timed-out requests are held
# 2 s by the sandbox; the connectors' own HTTP timeout (FAULT_CLIENT_TIMEOUT)
# is shorter, so the client gives up first, as it would against a real vendor.
# The token endpoints are spared: a rotated refresh token whose answer is lost disconnects the
# company for good (Intuit, Xero), which no client can prevent and a person must reconnect
# (tests/test_reliability_disconnect.py); here it would only end the run early.
FAULTS = {"drop_rate": 0.05, "error_rate": 0.05, "rate_limit_rate": 0.05, "timeout_rate": 0.02,
          "timeout_seconds": 2.0, "spare": r"oauth2?/|/token"}
FAULT_CLIENT_TIMEOUT = 1.0
KILL_DELAY = (0.05, 1.5)
ALLOCATED = re.compile(r"^2026-(\d{6})$")  # numbers pouracquit allocates (series prefix "2026-")


def size_from_env(name: str | None = None) -> tuple[str, Size]:
    name = name or os.environ.get("POURACQUIT_CHAOS", "small")
    if name not in SIZES:
        raise SystemExit(f"POURACQUIT_CHAOS must be one of {sorted(SIZES)}, not {name!r}")
    base = SIZES[name]
    env = os.environ.get
    return name, Size(
        invoices=int(env("POURACQUIT_CHAOS_INVOICES", base.invoices)),
        kills=int(env("POURACQUIT_CHAOS_KILLS", base.kills)),
        time_factor=float(env("POURACQUIT_CHAOS_TIME_FACTOR", base.time_factor)),
        settle_seconds=float(env("POURACQUIT_CHAOS_SETTLE", base.settle_seconds)),
    )


def seed_from_env() -> int:
    raw = os.environ.get("POURACQUIT_CHAOS_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(1, 2**31)


# ---------------------------------------------------------------------------
# small HTTP and process helpers (127.0.0.1 only)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post_json(url: str, body: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cli(config: Path, *args: str, timeout: float = 120, **popen: Any) -> subprocess.CompletedProcess[str]:
    """``pouracquit <args> --config <config>`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "pouracquit.app.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=timeout, **popen)


