"""End-to-end rigs: real sandboxes over HTTP, real SDKs, a real SQLite file."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pouracquit.app.toml_out import dumps
from pouracquit.core.config import Settings, parse_settings
from pouracquit.core.service import Service
from pouracquit.core.sync import SyncResult, sync_connection
from pouracquit.sandbox.launch import DEMO_SELLER, Launched, launch, state_key
from pouracquit.sandbox.server import Sandbox

TIME_FACTOR = 0.05


def post_json(url: str, body: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@dataclass
class Rig:
    launched: Launched
    tmp: Path
    config: dict[str, Any]

    @property
    def source(self) -> Sandbox:
        return self.launched.source

    @property
    def ledger(self) -> Sandbox:
        return self.launched.ledger

    def faults(self, box: Sandbox, **knobs: Any) -> None:
        post_json(f"{box.url}/_sandbox/faults", knobs)

    def settings(self, **pipeline: Any) -> Settings:
        data = json.loads(json.dumps(self.config))
        data["pipeline"].update(pipeline)
        return parse_settings(data, origin="e2e")

    def write_config(self, **pipeline: Any) -> Path:
        data = json.loads(json.dumps(self.config))
        data["pipeline"].update(pipeline)
        path = self.tmp / "pouracquit.toml"
        path.write_text(dumps(data), encoding="utf-8")
        return path

    def service(self, **pipeline: Any) -> Service:
        return Service.open(self.settings(**pipeline))

    def sync_until_settled(self, service: Service, limit: float = 60.0) -> list[SyncResult]:
        """Sync, then keep draining while receipts wait for a retry."""
        results = [sync_connection(service, "demo")]
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            pending = service.store.receipts("demo", "pending", limit=10_000)
            if not pending:
                break
            time.sleep(0.05)
            results.append(sync_connection(service, "demo"))
        return results

    def calls(self, box: Sandbox) -> dict[str, int]:
        return dict(box.call_counts()["by_endpoint"])


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    started: list[Launched] = []

    def make(count: int = 60, source: str | None = None, ledger: str | None = None) -> Rig:
        launched = launch(source, ledger, tmp_path / "secrets", count=count, time_factor=TIME_FACTOR)
        started.append(launched)
        launched.connection["interval_seconds"] = 1
        launched.connection["jitter_seconds"] = 0
        config = {
            "data_dir": str(tmp_path / "data"),
            "time_factor": TIME_FACTOR,
            "store": {"encryption_key": state_key(tmp_path / "secrets")},
            "seller": DEMO_SELLER,
            # the suite already runs one test per core: render pools would only add start-up and contention
            # (tests/e2e/test_render_pool.py runs the pool itself)
            "document": {"render_processes": 0},
            "log": {"format": "json"},
            "admin": {"bind": "127.0.0.1:0"},
            "pipeline": {"vendor_retry_attempts": 6, "vendor_backoff_seconds": 0.01, "backoff_seconds": 0.05,
                         "backoff_max_seconds": 0.5, "max_attempts": 12},
            "connections": [launched.connection],
        }
        return Rig(launched, tmp_path, config)

    yield make
    for launched in started:
        launched.stop()
