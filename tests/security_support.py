"""Settings for a service with a HubSpot source and a QuickBooks ledger that
are never called: enough for the admin API, webhooks and the data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from pouracquit.core.config import Settings, parse_settings
from pouracquit.sandbox.launch import DEMO_SELLER

WEBHOOK_SECRET = "app-secret"


def offline_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> Settings:
    """``extra`` top-level keys (``admin``...) override the defaults."""
    monkeypatch.setenv("T_STATE_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("T_HS_TOKEN", "pat-test")
    monkeypatch.setenv("T_HS_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("T_QB_SECRET", "qb-secret")
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "store": {"encryption_key": {"env": "T_STATE_KEY"}},
        "seller": DEMO_SELLER,
        "admin": {"bind": "127.0.0.1:0", "public_url": "https://pouracquit.example.com"},
        "connections": [{
            "name": "c",
            "source": {"vendor": "hubspot", "base_url": "http://127.0.0.1:9", "access_token": {"env": "T_HS_TOKEN"},
                       "webhook_secret": {"env": "T_HS_SECRET"}},
            "ledger": {"vendor": "quickbooks", "base_url": "http://127.0.0.1:9", "realm_id": "1", "client_id": "q",
                       "client_secret": {"env": "T_QB_SECRET"}},
        }],
    }
    data.update(extra)
    return parse_settings(data, origin="test")
