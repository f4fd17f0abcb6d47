"""Shared fixtures: invoices, state stores on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel
from support import DictTokens

from pouracquit.common.model import Invoice, InvoiceStatus, Line, Party, Payment, PaymentMethod
from pouracquit.common.money import Money
from pouracquit.state.db import open_engine
from pouracquit.state.store import Store

PG_ADMIN_URL = os.environ.get("POURACQUIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def build_invoice(
    source_id: str = "inv-1",
    lines: list[tuple[str, str, str]] | None = None,
    paid: str | None = "all",
    status: InvoiceStatus | None = None,
    number: str = "F-2026-0001",
    currency: str = "EUR",
    customer: str = "Société Générale d'Équipements Lefèvre",
    **extra: Any,
) -> Invoice:
    """An invoice from (quantity, unit price, VAT rate) triples; ``paid`` is
    "all", None, or an amount."""
    triples = lines or [("2", "100.00", "20")]
    base = Invoice.model_construct(
        lines=tuple(Line(description=f"Ligne {i}", quantity=q, unit_price=p, vat_rate=r)
                    for i, (q, p, r) in enumerate(triples, 1)),
        currency=currency,
    )
    gross = Invoice.gross_total.fget(base).amount  # type: ignore[attr-defined]
    amount = gross if paid == "all" else Decimal(paid or "0")
    payments = (
        (Payment(amount=Money(amount=amount, currency=currency), paid_at=datetime(2026, 3, 5, 9, 30, tzinfo=UTC),
                 method=PaymentMethod.TRANSFER, reference="VIR-001"),)
        if amount else ()
    )
    if status is None:
        status = InvoiceStatus.PAID if paid == "all" else InvoiceStatus.OPEN
    fields: dict[str, Any] = dict(
        source_id=source_id, number=number, currency=currency, issue_date=date(2026, 3, 1),
        customer=Party(name=customer, email="compta@lefevre.example"),
        lines=base.lines, payments=payments, status=status,
        amount_paid=Money(amount=amount, currency=currency),
        modified_at=datetime(2026, 3, 5, 10, 0, tzinfo=UTC),
    )
    fields.update(extra)
    return Invoice(**fields)


@pytest.fixture
def make_invoice() -> Callable[..., Invoice]:
    return build_invoice


@pytest.fixture
def tokens() -> DictTokens:
    """An in-memory TokenStore for a connector under test."""
    return DictTokens()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    name = f"pouracquit_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite store migrated once per test session; each test copies it (a copy opens
    in milliseconds where running the migrations takes a third of a second)."""
    path = tmp_path_factory.mktemp("template") / "state.sqlite"
    open_engine(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated state store on each supported database."""
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "state.sqlite")
        engine = open_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    else:
        url = request.getfixturevalue("pg_url")
        engine = open_engine(url)
        with engine.begin() as conn:  # every table the migrations made, so a new one is never forgotten
            tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    yield Store(engine)
    engine.dispose()


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    """JSON log lines at info and above, so a failing test shows what happened."""
    from pouracquit.app import logs
    logs.configure("json", "info")
