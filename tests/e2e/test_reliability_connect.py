"""`pouracquit connect quickbooks` rides out a transient 5xx from Intuit's
discovery document instead of calling it a configuration error, and a
successful connect clears a recorded disconnection."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from pouracquit.app import connect as connect_module
from pouracquit.app.connect import connect_command
from pouracquit.app.status import connection_status
from pouracquit.core.disconnections import disconnected, record_disconnected
from pouracquit.core.service import Service


def _discovery_fails(rig: Any, times: int) -> None:
    rig.faults(rig.ledger, scripted=[{"kind": "error", "method": "GET", "path": "openid_configuration",
                                      "count": times}])


def _connect_as_browser(settings: Any) -> int | None:
    """Run connect in a thread, approve at the sandbox and follow its redirect."""
    urls: list[str] = []
    got = threading.Event()
    rc: list[int] = []
    thread = threading.Thread(target=lambda: rc.append(connect_command(
        settings, "quickbooks", port=0, open_browser=False, on_url=lambda u: (urls.append(u), got.set()))),
        daemon=True)
    thread.start()
    assert got.wait(20), "connect printed no URL"
    answer = requests.get(urls[0], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    requests.get(answer.headers["Location"], timeout=10)
    thread.join(15)
    assert not thread.is_alive()
    return rc[0] if rc else None


def test_transient_discovery_failure_is_retried_and_connect_clears_the_disconnection(
        make_rig, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(connect_module, "DESCRIBE_BACKOFF", 0.01)
    rig = make_rig(count=1, source="hubspot", ledger="quickbooks")
    settings = rig.settings()
    service = Service.open(settings)
    record_disconnected(service.store, settings.connection("demo"), "ledger", "quickbooks",
                        "quickbooks refused the refresh token (invalid_grant)")
    assert set(connection_status(service)["demo"]["disconnected"]) == {"ledger"}
    _discovery_fails(rig, 2)

    assert _connect_as_browser(settings) == 0
    assert rig.calls(rig.ledger)["discovery"] == 3
    assert disconnected(service.store, "demo") == {}


def test_discovery_down_for_good_is_exit_1_not_a_config_error(make_rig, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(connect_module, "DESCRIBE_BACKOFF", 0.01)
    rig = make_rig(count=1, source="hubspot", ledger="quickbooks")
    _discovery_fails(rig, 100)
    assert connect_command(rig.settings(), "quickbooks", port=0, open_browser=False, timeout=0.1) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "HTTP 503" in err[0] and "try again" in err[0]
    assert rig.calls(rig.ledger)["discovery"] == connect_module.DESCRIBE_ATTEMPTS
