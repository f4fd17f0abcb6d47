"""`pouracquit run`: scheduler, admin API (health, readiness, metrics, status), SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_service_syncs_reports_and_stops_on_sigterm(make_rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=15)
    port = free_port()
    rig.config["admin"] = {"bind": f"127.0.0.1:{port}", "token": {"env": "TEST_ADMIN_TOKEN"}}
    config = rig.write_config()
    env = {**os.environ, "TEST_ADMIN_TOKEN": "admin-s3cret-token"}
    log = (tmp_path / "service.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "pouracquit.app.cli", "run", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _alive(base))
        assert fetch(base + "/status")[0] == 401
        assert fetch(base + "/status", "wrong")[0] == 401
        assert fetch(base + "/readyz", "admin-s3cret-token")[0] == 200  # the store answers: ready before any sync
        wait_for(lambda: json.loads(fetch(base + "/status", "admin-s3cret-token")[1])["demo"]["last_success_at"],
                 timeout=90)
        status = json.loads(fetch(base + "/status", "admin-s3cret-token")[1])["demo"]
        assert status["cursor"] and status["stale"] is False and status["last_success_age_seconds"] >= 0
        wait_for(lambda: json.loads(fetch(base + "/status", "admin-s3cret-token")[1])["demo"]["receipts"]
                 .get("done", 0) == len(_paid(rig)), timeout=90)
        code, metrics = fetch(base + "/metrics", "admin-s3cret-token")
        assert code == 200
        assert 'pouracquit_receipts{connection="demo",status="done",tenant="default"}' in metrics
        assert 'pouracquit_api_calls_total{tenant="default",vendor="quickbooks"}' in metrics
        assert 'pouracquit_sync_duration_seconds_bucket{connection="demo",le="1.0",tenant="default"}' in metrics
        assert 'pouracquit_sync_runs_total{connection="demo",result="ok",tenant="default"}' in metrics
        assert 'pouracquit_sync_stale{connection="demo",tenant="default"} 0.0' in metrics
        assert 'pouracquit_sync_last_success_age_seconds{connection="demo",tenant="default"}' in metrics
        assert "pouracquit_build_info{version=" in metrics and "process_resident_memory_bytes" in metrics
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    lines = (tmp_path / "service.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records, "the service logs JSON lines"
    assert all("admin-s3cret-token" not in line for line in lines)
    receipt_lines = [r for r in records if r.get("event") == "receipt done"]
    assert receipt_lines and all(r["connection"] == "demo" and r["receipt_id"] for r in receipt_lines)


def test_ready_before_any_sync_and_status_says_stale(make_rig) -> None:  # type: ignore[no-untyped-def]
    from pouracquit.app.admin import AdminServer

    rig = make_rig(count=1)
    service = rig.service()
    admin = AdminServer(service).start()
    try:
        assert fetch(admin.url + "/readyz")[0] == 200  # a connection that never synced is stale, not unready
        assert json.loads(fetch(admin.url + "/status")[1])["demo"]["stale"] is True
        assert fetch(admin.url + "/healthz")[0] == 200
    finally:
        admin.stop()


def _alive(base: str) -> bool:
    try:
        return fetch(base + "/healthz")[0] == 200
    except OSError:
        return False


def _paid(rig) -> list[str]:  # type: ignore[no-untyped-def]
    return [i for i in rig.source.dump_state()["invoices"] if i["properties"]["hs_invoice_status"] == "paid"]
