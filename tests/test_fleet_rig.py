"""What the fleet's tests share: the machine's PostgreSQL, Redis and RabbitMQ (a
test skips when one is down), a database of their own, and a deployment of
tenants written as files, each fleet under a queue name of its own so parallel
runs never read each other's tasks or Redis keys. No test here; the others
import from it."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_ADMIN_URL
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from support import fresh_database

from pouracquit.app.toml_out import dumps
from pouracquit.core.config import Settings, load_settings
from pouracquit.sandbox.launch import DEMO_SELLER, state_key
from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt

REDIS_URL = os.environ.get("POURACQUIT_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("POURACQUIT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")


def _port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def _redis_up() -> bool:
    try:
        return bool(Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except RedisError:
        return False


def _pg_up() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except SQLAlchemyError:
        return False


needs_pg = pytest.mark.skipif(not _pg_up(), reason=f"PostgreSQL not reachable at {PG_ADMIN_URL}")
needs_redis = pytest.mark.skipif(not _redis_up(), reason=f"Redis not reachable at {REDIS_URL}")
needs_rabbit = pytest.mark.skipif(not _port_open("127.0.0.1", 5672), reason="RabbitMQ not reachable on :5672")


@pytest.fixture(scope="module")
def fleet_db() -> Iterator[str]:
    """A PostgreSQL database of this module's own (the store's tables and the advisory locks are
    per database), dropped afterwards."""
    with fresh_database(PG_ADMIN_URL, "test_fleet") as url:
        yield url


def tenant_name(label: str) -> str:
    """A tenant name no other test run uses (the Redis keys carry it)."""
    return f"{label}-{uuid.uuid4().hex[:6]}"


@dataclass
class Deployment:
    """A deployment config of many tenants under ``root``, its fleet on a queue of its own."""

    root: Path
    store_url: str
    broker: str = AMQP_URL
    fleet: dict[str, Any] = field(default_factory=dict)
    pipeline: dict[str, Any] = field(default_factory=dict)
    queue: str = field(default_factory=lambda: f"fleet-test-{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        self.key = state_key(self.root / "secrets")

    @property
    def path(self) -> Path:
        return self.root / "pouracquit.toml"

    @property
    def tenants_dir(self) -> Path:
        return self.root / "tenants"

    def write(self) -> Path:
        self.tenants_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "data_dir": str(self.root / "data"),
            "time_factor": 0.05,
            "store": {"url": self.store_url, "encryption_key": self.key},
            "log": {"format": "json"},
            "tenants": {"dir": str(self.tenants_dir)},
            "fleet": {"broker": self.broker, "redis": REDIS_URL, "queue": self.queue, "tick_seconds": 0.2,
                      **self.fleet},
            "pipeline": {"vendor_retry_attempts": 6, "vendor_backoff_seconds": 0.01, "backoff_seconds": 0.05,
                         "backoff_max_seconds": 0.5, "max_attempts": 12, "lease_seconds": 3.0, **self.pipeline},
        }
        self.path.write_text(dumps(config), encoding="utf-8")
        return self.path

    def add_tenant(self, name: str, connection: dict[str, Any], **sections: Any) -> None:
        data = {"seller": DEMO_SELLER, "document": {"render_processes": 0}, **sections,
                "connections": [json.loads(json.dumps(connection))]}
        self.tenants_dir.mkdir(parents=True, exist_ok=True)
        (self.tenants_dir / f"{name}.toml").write_text(dumps(data), encoding="utf-8")

    def settings(self) -> Settings:
        return load_settings(self.write())

    def forget(self) -> None:
        """Remove this fleet's Redis keys (all under its queue's name)."""
        forget_namespace(self.queue)


def forget_namespace(namespace: str) -> None:
    client = Redis.from_url(REDIS_URL)
    # the fleet's keys ("<queue>:...") and, with Redis as the broker, kombu's queue and bindings
    # ("<queue>", "_kombu.binding.<queue>"): the name is this test's own, so nothing else matches
    keys = list(client.scan_iter(match=f"*{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def offline_connection(name: str = "crm", interval: float = 3600.0) -> dict[str, Any]:
    """A connection whose vendors are never called (the scheduler only reads its settings)."""
    return {"name": name, "interval_seconds": interval, "jitter_seconds": 0, "start_date": "2026-01-01",
            "source": {"vendor": "hubspot"}, "ledger": {"vendor": "quickbooks"}}


def due_receipts(store: Store, connection: str, count: int, prefix: str) -> list[str]:
    """``count`` pending receipts put straight into the store (the scheduler only reads their ids)."""
    ids = [f"{prefix}{i:06d}" for i in range(count)]
    now = datetime.now(UTC)
    with store.session() as session:
        session.add_all([
            Receipt(id=rid, connection=connection, source_id=rid, payment_version=1, invoice_json="{}",
                    amount=Decimal("1.00"), currency="EUR", customer="Client", created_at=now)
            for rid in ids])
        session.commit()
    return ids


def booked_once(launched: Any, receipts: list[Receipt]) -> None:
    """Every receipt booked once at the ledger, its document attached once on each side, and
    nothing at the vendors that no receipt accounts for."""
    from contract.test_hubspot_contract import HubSpotHarness
    from contract.test_quickbooks_contract import QuickBooksHarness

    crm, ledger = HubSpotHarness(), QuickBooksHarness()
    assert len({r.source_id for r in receipts}) == len(receipts)
    for r in receipts:
        assert r.status == "done", (r.id, r.status, r.step, r.last_error)
        assert ledger.receipts(launched.ledger, r.number) == [r.ledger_id], r.number
        assert ledger.attachments(launched.ledger, r.ledger_id) == [r.document_name]
        assert crm.attachments(launched.source, r.source_id) == [r.document_name]
    state = launched.ledger.dump_state()  # the sandbox starts with an empty ledger
    assert len(state["SalesReceipts"]) + len(state["Invoices"]) == len(receipts)
    assert len(state["Attachables"]) == len(receipts)
