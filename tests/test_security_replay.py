"""A captured HubSpot webhook is refused again after a restart: the signatures
accepted are kept in the state store for the replay window, then pruned."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from security_support import WEBHOOK_SECRET, offline_settings
from sqlmodel import select

from pouracquit.connectors.base import WebhookRequest
from pouracquit.connectors.hubspot.webhook import sign
from pouracquit.core.service import Service
from pouracquit.core.webhooks import WebhookIntake
from pouracquit.state.store import Store
from pouracquit.state.tables import WebhookSeen

URL = "https://pouracquit.example.com/webhooks/hubspot"
BODY = json.dumps([{"objectId": 42, "objectTypeId": "0-53", "subscriptionType": "object.propertyChange"}]).encode()


class Pushes:
    """Stands in for a connection's worker: records the refs pushed."""

    def __init__(self) -> None:
        self.refs: list[list[str]] = []

    def push(self, refs: list[str]) -> None:
        self.refs.append(refs)


def _request(stamp_ms: int) -> WebhookRequest:
    headers = {"x-hubspot-request-timestamp": str(stamp_ms),
               "x-hubspot-signature-v3": sign(WEBHOOK_SECRET, "POST", URL, BODY, stamp_ms)}
    return WebhookRequest(method="POST", url=URL, headers=headers, body=BODY)


def _receive(settings: Any, request: WebhookRequest) -> tuple[int, Pushes]:
    """One service process: open the store, take one webhook, close."""
    service = Service.open(settings)
    pushes = Pushes()
    try:
        status, _ = WebhookIntake(service, {"c": pushes}).receive("hubspot", request)  # type: ignore[dict-item]
    finally:
        service.store.engine.dispose()
    return status, pushes


def test_a_replay_is_refused_after_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = offline_settings(tmp_path, monkeypatch)
    captured = _request(int(time.time() * 1000))
    status, pushes = _receive(settings, captured)
    assert status == 200 and pushes.refs == [["42"]]
    status, pushes = _receive(settings, captured)  # a new process: new Service, new store object
    assert status == 401 and pushes.refs == []
    assert _receive(settings, _request(int(time.time() * 1000) + 1))[0] == 200, "a new delivery still passes"


def test_two_connections_each_take_the_same_delivery_once(store: Store) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"  # the PostgreSQL store is shared
    now = datetime.now(UTC)
    until = now + timedelta(minutes=5)
    assert store.first_sight(a, "sig", now, until)
    assert store.first_sight(b, "sig", now, until)
    assert not store.first_sight(a, "sig", now, until)


def test_expired_signatures_are_pruned(store: Store) -> None:
    a = f"a-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    assert store.first_sight(a, "old", now - timedelta(minutes=10), now - timedelta(minutes=5))
    assert store.first_sight(a, "new", now, now + timedelta(minutes=5))
    with store.session() as session:
        rows = session.exec(select(WebhookSeen).where(WebhookSeen.connection == a))
        assert [row.expires_at > now for row in rows] == [True]
    # past its window the timestamp check refuses a signature anyway: remembering it is no longer needed
    assert store.first_sight(a, "old", now, now + timedelta(minutes=5))
