"""Many companies on the sandboxes (sandbox/fleet.py): one emulator pair per tenant,
the paid total chosen exactly, a deployment config the engine reads, each company
with an identity of its own; and the readers the fleet's chaos run counts with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from stdnum.fr import siret, tva

from pouracquit.app.sandbox_fleet import _pairs
from pouracquit.app.toml_out import dumps
from pouracquit.common.errors import ConfigError
from pouracquit.core.config import load_settings
from pouracquit.core.tenants import load_tenant
from pouracquit.sandbox.demo_data import demo_invoices
from pouracquit.sandbox.fleet import (
    PAIRS,
    crm_attachments,
    invoices_for_paid,
    launch_tenants,
    ledger_bookings,
    paid_invoices,
    tenant_seller,
)


@pytest.mark.parametrize("paid", [1, 7, 40, 41, 123])
def test_a_demo_set_has_exactly_the_paid_invoices_asked(paid: int) -> None:
    count = invoices_for_paid(paid, seed=3)
    assert sum(1 for inv in demo_invoices(count, 3) if inv["status"] == "paid") == paid
    assert count == 1 or sum(1 for inv in demo_invoices(count - 1, 3) if inv["status"] == "paid") < paid


def test_every_company_has_an_identity_of_its_own() -> None:
    sellers = [tenant_seller(i, 7) for i in range(200)]
    assert len({s["siren"] for s in sellers}) == len({s["vat_number"] for s in sellers}) == 200
    assert all(siret.is_valid(s["siret"]) and tva.is_valid(s["vat_number"]) for s in sellers)


def test_tenants_get_their_own_emulators_data_and_config(tmp_path: Path) -> None:
    fleet = launch_tenants(7, tmp_path, paid_total=50, seed=5, store_url="postgresql://u@127.0.0.1:5432/x",
                           broker="redis://127.0.0.1:6379/3", queue="q1", prefix="acme")
    try:
        assert [t.paid for t in fleet.tenants] == [8, 7, 7, 7, 7, 7, 7] and fleet.paid == 50
        assert [(t.source, t.ledger) for t in fleet.tenants] == [*PAIRS, PAIRS[0]]
        urls = {box.url for t in fleet.tenants for box in (t.launched.source, t.launched.ledger)}
        assert len(urls) == 14  # one pair of servers per company
        config = fleet.write(dumps)
        deployment = load_settings(config)
        assert deployment.store_url.startswith("postgresql") and deployment.fleet.queue == "q1"
        assert deployment.fleet.broker == "redis://127.0.0.1:6379/3"
        assert deployment.tenants is not None and sorted(p.stem for p in deployment.tenants.dir.glob("*.toml")) == [
            t.name for t in fleet.tenants]
        companies = [load_tenant(deployment, t.name) for t in fleet.tenants]
        assert len({c.company.siren for c in companies}) == 7
        assert all(c.document.render_processes == 0 for c in companies)
        for tenant in fleet.tenants:
            crm, books = tenant.states()
            assert len(paid_invoices(tenant.source, crm)) == tenant.paid
            assert crm_attachments(tenant.source, crm) == (Counter(), 0)
            assert ledger_bookings(tenant.ledger, books) == []
        assert config.stat().st_mode & 0o077 == 0  # the files name secrets
    finally:
        fleet.stop()


def test_the_command_picks_pairs_from_source_and_ledger() -> None:
    assert _pairs(None, None) is None
    assert _pairs("zoho", None) == [("zoho", "quickbooks"), ("zoho", "xero")]
    assert _pairs(None, "xero") == [(s, "xero") for s in ("hubspot", "salesforce", "zoho")]
    with pytest.raises(ConfigError):
        _pairs("pipedrive", None)


def test_the_command_writes_the_deployment_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "deploy" / "fleet.toml"
    code = ("import sys; from pouracquit.app.sandbox_fleet import sandbox_tenants_command as run; "
            "sys.exit(run(3, sys.argv[1], 10, 12, 'zoho', None, None))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)  # read what it printed so far, without waiting
    out, deadline = b"", time.monotonic() + 60
    try:
        while b"Ctrl-C" not in out:  # its last line: the files are written and SIGTERM is handled
            assert proc.poll() is None and time.monotonic() < deadline, out
            time.sleep(0.1)
            out += proc.stdout.read() or b""
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert b"12 paid invoices in all" in out
    deployment = load_settings(config)
    names = sorted(p.stem for p in (config.parent / "tenants").glob("*.toml"))
    assert len(names) == 3 and deployment.store_url.startswith("postgresql")
    assert {load_tenant(deployment, n).connections[0].source.vendor for n in names} == {"zoho"}


def test_a_refresh_token_used_twice_shows_granted_then_refused(tmp_path: Path) -> None:
    fleet = launch_tenants(1, tmp_path, invoices_per_tenant=3, pairs=[("hubspot", "xero")], store_url="sqlite://")
    try:
        tenant = fleet.tenants[0]
        ledger = tenant.launched.connection["ledger"]
        secret, token = (Path(ledger[k]["file"]).read_text() for k in ("client_secret", "refresh_token"))
        for _ in range(2):  # two processes holding the same stored token
            requests.post(f"{ledger['identity_url']}/connect/token", timeout=5, auth=(ledger["client_id"], secret),
                          data={"grant_type": "refresh_token", "refresh_token": token})
        assert [(u.token, u.granted) for u in tenant.refreshes] == [(token[:6], True), (token[:6], False)]
    finally:
        fleet.stop()
