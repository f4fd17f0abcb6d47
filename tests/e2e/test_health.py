"""Health semantics of the admin API over real HTTP, without vendors:
/healthz follows the scheduler thread, /readyz the state store (never a
vendor), /status and /metrics say each connection's freshness, and a sync
job that crashes is recorded in the store at once."""

from __future__ import annotations

import dataclasses
import json
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from engine_fakes import FakeLedger, FakeRenderer, FakeSource, wiring
from prometheus_client.parser import text_string_to_metric_families

from pouracquit.app.admin import AdminServer
from pouracquit.app.daemon import ConnectionJobs, scheduler_liveness
from pouracquit.app.metrics import Metrics
from pouracquit.app.toml_out import dumps
from pouracquit.connectors.base import Page
from pouracquit.core.config import load_settings
from pouracquit.core.service import Service

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def fetch(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
            return resp.status, json.loads(body) if body.startswith("{") else {"text": body}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode())


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("POURACQUIT_STATE_KEY", Fernet.generate_key().decode())
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["data_dir"] = str(tmp_path / "data")
    data["admin"] = {"bind": "127.0.0.1:0"}
    config = tmp_path / "c.toml"
    config.write_text(dumps(data), encoding="utf-8")
    service = Service.open(load_settings(config))
    yield service
    service.store.engine.dispose()


class CrashingSource(FakeSource):
    """A connector bug: an exception outside the error hierarchy the pipeline acts on."""

    def changes(self, cursor: str | None) -> Iterator[Page]:
        raise TypeError("unsupported operand type(s) for +: 'NoneType' and 'Decimal'")


def test_healthz_follows_the_scheduler_thread(service: Service) -> None:
    scheduler = BackgroundScheduler()
    admin = AdminServer(service, liveness=scheduler_liveness(scheduler)).start()
    try:
        assert fetch(admin.url + "/healthz")[0] == 503  # not started yet
        scheduler.start()
        assert fetch(admin.url + "/healthz") == (200, {"status": "alive"})
        scheduler.shutdown()
        code, body = fetch(admin.url + "/healthz")
        assert code == 503 and body["reason"] == "the scheduler thread is not running"
    finally:
        admin.stop()


def test_ready_without_any_sync_and_status_says_stale(service: Service) -> None:
    admin = AdminServer(service).start()
    try:
        assert fetch(admin.url + "/readyz") == (200, {"ready": True, "reasons": {}})
        main = fetch(admin.url + "/status")[1]["main"]
        assert main["stale"] is True and main["last_success_at"] is None and main["last_success_age_seconds"] is None
        assert main["stale_after_seconds"] == 900
        text = fetch(admin.url + "/metrics")[1]["text"]
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        # a one-company service labels its series with the tenant "default"
        assert samples[("pouracquit_sync_stale", (("connection", "main"), ("tenant", "default")))] == 1
        assert samples[("pouracquit_state_store_up", ())] == 1
        assert samples[("pouracquit_sync_runs_total", (("connection", "main"), ("result", "crashed"),
                                                        ("tenant", "default")))] == 0
        assert ("pouracquit_build_info", (("version", _version()),)) in samples
        assert ("process_resident_memory_bytes", ()) in samples
    finally:
        admin.stop()


def test_readyz_is_503_only_when_the_store_is_unreachable(service: Service) -> None:
    admin = AdminServer(service).start()
    try:
        assert fetch(admin.url + "/readyz")[0] == 200
        service.store.engine.dispose()
        Path(service.settings.store_url.removeprefix("sqlite:///")).unlink()  # SQLite reopens it empty: no tables
        code, body = fetch(admin.url + "/readyz")
        assert code == 503 and body["reasons"]["store"].startswith("state store unreachable")
        assert fetch(admin.url + "/healthz")[0] == 200  # alive, only not ready
        text = fetch(admin.url + "/metrics")[1]["text"]  # the process metrics still go out
        assert "pouracquit_state_store_up 0.0" in text and "process_cpu_seconds_total" in text
    finally:
        admin.stop()


def test_a_crashed_sync_job_is_recorded_at_once(service: Service, tmp_path: Path) -> None:
    fake = wiring(service.store, tmp_path, CrashingSource(), FakeLedger(), FakeRenderer())
    service._wirings["main"] = dataclasses.replace(fake, connection="main")
    metrics = Metrics(service)
    ConnectionJobs(service, "main", metrics).sync()
    state = service.store.connection_states()["main"]
    assert state.last_error == ("sync crashed: TypeError: unsupported operand type(s) for +: 'NoneType' and "
                                "'Decimal'")
    assert state.last_run_at is not None and state.last_success_at is None
    text = metrics.exposition().decode()
    # prometheus-client writes the labels in name order
    assert 'pouracquit_sync_runs_total{connection="main",result="crashed",tenant="default"} 1.0' in text
    assert 'pouracquit_job_crashes_total{connection="main",job="sync",tenant="default"} 1.0' in text
    assert 'pouracquit_sync_duration_seconds_count{connection="main",tenant="default"} 1.0' in text


def _version() -> str:
    from importlib import metadata

    return metadata.version("pouracquit")


def test_a_gauge_added_later_is_read_at_each_scrape(service: Service) -> None:
    readings = iter([2.0, 5.0])
    metrics = Metrics(service)
    metrics.add_gauge("pouracquit_test_drift", "A gauge another module adds.", ("connection",),
                      lambda svc: [({"connection": svc.settings.connections[0].name}, next(readings))])
    assert 'pouracquit_test_drift{connection="main",tenant="default"} 2.0' in metrics.exposition().decode()
    assert 'pouracquit_test_drift{connection="main",tenant="default"} 5.0' in metrics.exposition().decode()
