"""Helpers the connector tests share (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from sqlalchemy import create_engine, text

from pouracquit.common.calls import CallMeter, RetryPolicy
from pouracquit.connectors.registry import ConnectorContext
from pouracquit.core.document import Seller

SELLER = Seller(
    name="Atelier Numérique",
    legal_form="SAS",
    share_capital=Decimal("10000"),
    address={"line1": "12 rue de la Paix", "postal_code": "75002", "city": "Paris"},
    siren="732829320",
    siret="73282932000074",
    rcs_city="Paris",
    ape="6201Z",
    vat_number="FR44732829320",
    email="compta@atelier.example",
    phone="+33 1 23 45 67 89",
    iban="FR7630006000011234567890189",
    bic="AGRIFRPP",
)


class DictTokens:
    """A TokenStore in a dict, recording every put."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.puts: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def put(self, name: str, value: str) -> None:
        self.values[name] = value
        self.puts.append((name, value))

    def exclusive(self, name: str) -> threading.Lock:
        return self._lock


def fast_context(tokens: DictTokens, window_scale: float, connection: str = "t") -> ConnectorContext:
    """A connector context with quick retries and vendor windows scaled like the sandbox's."""
    return ConnectorContext(connection=connection, meter=CallMeter(), tokens=tokens,
                            retry=RetryPolicy(attempts=4, backoff_base=0.01, backoff_max=0.5),
                            window_scale=window_scale)


@contextmanager
def fresh_database(admin_url: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A PostgreSQL database of its own (tables and advisory locks are per database), dropped
    afterwards unless ``keep``; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
