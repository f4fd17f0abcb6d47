"""A QuickBooks token answer lost in transit: Intuit has already retired the
refresh token we sent, so the retry gets invalid_grant and the company is
disconnected. That side is recorded as disconnected at once, with the command
that fixes it, and /status and /metrics show it until the token works again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support import DictTokens

from pouracquit.app.metrics import Metrics
from pouracquit.app.status import connection_status
from pouracquit.common.calls import RetryPolicy
from pouracquit.common.errors import ConfigError
from pouracquit.connectors.quickbooks.ledger import QuickBooksLedger
from pouracquit.connectors.quickbooks.session import TOKEN_NAME
from pouracquit.connectors.registry import ConnectorContext
from pouracquit.core.config import load_settings
from pouracquit.core.disconnections import DISCONNECTED, DisconnectionWatch, disconnected
from pouracquit.core.service import Service
from pouracquit.sandbox.quickbooks.emulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REALM_ID,
    DEMO_REFRESH_TOKEN,
    QuickBooksSandbox,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"
TIME_FACTOR = 0.01


@pytest.fixture
def sandbox() -> Iterator[QuickBooksSandbox]:
    with QuickBooksSandbox(time_factor=TIME_FACTOR) as sb:
        yield sb  # type: ignore[misc]


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    monkeypatch.setenv("QB_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    monkeypatch.setenv("QB_REFRESH_TOKEN", DEMO_REFRESH_TOKEN)
    settings = load_settings(EXAMPLE)
    settings = settings.model_copy(update={"data_dir": tmp_path})
    service = Service.open(settings)
    yield service
    service.store.engine.dispose()


def _ledger(service: Service, sb: QuickBooksSandbox, tokens: DictTokens) -> QuickBooksLedger:
    conn = service.settings.connection("main")
    # What the service gives each connection's connectors (see the report: core/service.py wires it).
    meter = service.meter.watched_by(DisconnectionWatch(service.store, conn))
    ctx = ConnectorContext(connection="main", meter=meter, tokens=tokens,
                           retry=RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.05),
                           window_scale=TIME_FACTOR)
    return QuickBooksLedger.from_settings({
        "base_url": sb.url, "discovery_url": sb.discovery_url, "realm_id": DEMO_REALM_ID,
        "client_id": DEMO_CLIENT_ID, "client_secret": {"env": "QB_CLIENT_SECRET"},
        "refresh_token": {"env": "QB_REFRESH_TOKEN"}, "minor_version": 75}, ctx)


def _gauge(service: Service, side: str) -> float:
    prefix = f'pouracquit_connection_disconnected{{connection="main",side="{side}",tenant="default"}} '
    [line] = [line for line in Metrics(service).exposition().decode().splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


def test_lost_token_answer_shows_the_disconnection_at_once(sandbox: QuickBooksSandbox, service: Service) -> None:
    assert _gauge(service, "ledger") == 0 and _gauge(service, "source") == 0
    # QuickBooks rotates the token, then the answer never arrives: the retry presents the retired one.
    requests.post(sandbox.url + "/_sandbox/faults", timeout=5, json={
        "scripted": [{"kind": "drop", "method": "POST", "path": "tokens/bearer", "count": 1}]}).raise_for_status()
    tokens = DictTokens()
    with pytest.raises(ConfigError, match="invalid_grant"):
        _ledger(service, sandbox, tokens).api.query("customer.find", "select * from Customer")

    lost = connection_status(service)["main"]["disconnected"]
    assert set(lost) == {"ledger"}
    assert lost["ledger"]["vendor"] == "quickbooks"
    assert lost["ledger"]["fix"] == "pouracquit connect quickbooks --connection main"
    assert "invalid_grant" in lost["ledger"]["reason"]
    assert _gauge(service, "ledger") == 1 and _gauge(service, "source") == 0

    # Every later pass meets the same refusal: the trail records the loss once.
    with pytest.raises(ConfigError):
        _ledger(service, sandbox, tokens).api.query("customer.find", "select * from Customer")
    assert len(service.store.events(kind=DISCONNECTED, connection="main")) == 1

    # Reconnected (a new grant kept in the store): the next refresh clears it.
    sandbox.issuer.add_refresh_token("granted-again", DEMO_CLIENT_ID, "com.intuit.quickbooks.accounting")
    tokens.put(TOKEN_NAME, "granted-again")
    _ledger(service, sandbox, tokens).api.query("customer.find", "select * from Customer")
    assert disconnected(service.store, "main") == {}
    assert _gauge(service, "ledger") == 0


def test_invalid_client_points_at_the_app_credentials(service: Service) -> None:
    conn = service.settings.connection("main")
    DisconnectionWatch(service.store, conn).refreshed(
        "quickbooks", ConfigError("quickbooks refused the client credentials (invalid_client): check client_id"))
    assert disconnected(service.store, "main")["ledger"]["fix"] == (
        "check client_id and client_secret in connections.main.ledger")


def test_a_vendor_the_connection_does_not_use_is_ignored(service: Service) -> None:
    DisconnectionWatch(service.store, service.settings.connection("main")).refreshed("xero", ConfigError("no"))
    assert disconnected(service.store, "main") == {}
