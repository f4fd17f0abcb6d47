"""Two worker processes refreshing one connection's rotating refresh token at once
(every worker does, on its first task of each tenant): the second must read the
token the first stored, not spend the retired one and report the connection lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import build_invoice
from test_fleet_rig import Deployment, fleet_db, needs_pg, tenant_name  # noqa: F401 - fleet_db: a fixture

from pouracquit.connectors.base import ReceiptOrder
from pouracquit.core.tenants import Tenants
from pouracquit.sandbox.launch import launch


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=needs_pg)])
@pytest.mark.parametrize("ledger", ["quickbooks", "xero"])
def test_workers_refreshing_at_once_both_keep_the_connection(tmp_path: Path, request: pytest.FixtureRequest,
                                                             store: str, ledger: str) -> None:
    url = request.getfixturevalue("fleet_db") if store == "postgres" else f"sqlite:///{tmp_path / 'state.sqlite'}"
    launched = launch(None, ledger, tmp_path / "secrets", count=2, time_factor=0.05)
    try:
        deployment = Deployment(tmp_path, url)
        name = tenant_name("acme")
        deployment.add_tenant(name, launched.connection)
        settings = deployment.settings()
        workers = [Tenants.open(settings) for _ in range(2)]  # each its own services and connectors
        ledgers = [w.service(name).wiring(w.service(name).settings.connection("demo")).ledger for w in workers]
        start, answers = threading.Barrier(2), {}
        order = ReceiptOrder(key="pa-race", number="F-RACE-1", invoice=build_invoice())

        def first_call(i: int) -> None:
            start.wait()
            try:
                answers[i] = ledgers[i].find_receipt(order) or "ok"  # a read: the first call refreshes
            except Exception as exc:
                answers[i] = f"{type(exc).__name__}: {exc}"

        threads = [threading.Thread(target=first_call, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert answers == {0: "ok", 1: "ok"}
        for w in workers:
            w.close()
    finally:
        launched.stop()
