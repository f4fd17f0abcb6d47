"""Secrets: encrypted at rest, never in a log line."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from pouracquit.app import logs
from pouracquit.common.errors import ConfigError
from pouracquit.core.sync import sync_connection
from pouracquit.sandbox.hubspot.emulator import HubSpotSandbox
from pouracquit.sandbox.quickbooks.emulator import DEMO_CLIENT_SECRET as QBO_SECRET
from pouracquit.sandbox.quickbooks.emulator import DEMO_REFRESH_TOKEN as QBO_REFRESH
from pouracquit.state.credentials import CredentialStore
from pouracquit.state.tables import Credential


def issued_tokens(box) -> set[str]:  # type: ignore[no-untyped-def]
    """Every access and refresh token a sandbox ever issued (rotated ones included)."""
    issuer = getattr(box, "tokens", None) or box.issuer
    return set(issuer._access) | set(issuer._refresh)


def test_no_secret_reaches_any_log_line(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=12)
    buffer = io.StringIO()
    logs.configure("json", "debug", stream=buffer)
    try:
        rig.faults(rig.ledger, rate_limit_rate=0.2, error_rate=0.1, seed=4)  # retries log their errors too
        service = rig.service()
        result = sync_connection(service, "demo")
        assert result.error is None
        service.store.receipts("demo", "done")
    finally:
        logs.configure("json", "info")
    output = buffer.getvalue()
    assert output.count("\n") > 20, "the sync logged too little to prove anything"
    secrets = {HubSpotSandbox.DEMO_CLIENT_SECRET, HubSpotSandbox.DEMO_REFRESH_TOKEN, QBO_SECRET, QBO_REFRESH}
    secrets |= issued_tokens(rig.source) | issued_tokens(rig.ledger)
    assert len(secrets) > 5
    leaked = sorted(s for s in secrets if s in output)
    assert leaked == []


def test_tokens_are_sealed_in_the_store(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=3)
    service = rig.service()
    sync_connection(service, "demo")
    with service.store.session() as session:
        rows = list(session.exec(select(Credential)))
    assert rows, "the rotating QuickBooks refresh token is kept"
    current = issued_tokens(rig.source) | issued_tokens(rig.ledger)
    for row in rows:
        assert not any(token in row.value for token in current)
        assert Fernet(service.settings.store.encryption_key.value().get_secret_value().encode()).decrypt(
            row.value.encode()).decode() in current

    other = CredentialStore(service.store, "demo", lambda: Fernet(Fernet.generate_key()))
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        other.get(rows[0].name)


def test_a_missing_key_is_a_clear_error(make_rig, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=1)
    rig.config["store"] = {}
    monkeypatch.delenv("POURACQUIT_STATE_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"store\.encryption_key: .*POURACQUIT_STATE_KEY.*keygen"):
        rig.service().cipher()


def test_redaction_processor() -> None:
    event = {"event": "x", "access_token": "abc", "Authorization": "Bearer abc",
             "error": "GET failed with header Authorization: Bearer s3cr3t-token and Zoho-oauthtoken 1000.xyz"}
    out = logs.redact(None, "info", dict(event))
    assert out["access_token"] == out["Authorization"] == "[redacted]"
    assert "s3cr3t-token" not in json.dumps(out) and "1000.xyz" not in json.dumps(out)
