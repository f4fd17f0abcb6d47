"""``pouracquit sandbox --tenants N --write-config FILE``: many companies on the emulators.

Each tenant is a company of its own at the vendors (its own emulator pair, data
and rate limits, sandbox/fleet.py); the config written is a deployment for the
fleet: ``FILE`` with [store] url (PostgreSQL), [tenants] and [fleet], and one
``tenants/<name>.toml`` per company beside it. ``pouracquit worker --config FILE``
and ``pouracquit scheduler --config FILE`` then run it.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from rich.console import Console

from pouracquit.common.errors import ConfigError
from pouracquit.sandbox.fleet import PAIRS, SOURCES, launch_tenants

from .toml_out import dumps

# the fleet shares one PostgreSQL store; the database must exist (createdb pouracquit)
DEFAULT_STORE_URL = "postgresql://postgres@127.0.0.1:5432/pouracquit"


def _pairs(source: str | None, ledger: str | None) -> list[tuple[str, str]] | None:
    if source is None and ledger is None:
        return None  # every tenant its pair, in turn over the six
    chosen = [(s, led) for s, led in PAIRS if source in (None, s) and ledger in (None, led)]
    if not chosen:
        raise ConfigError(f"no sandbox pair {source or 'any'} → {ledger or 'any'} (CRMs: {', '.join(SOURCES)})")
    return chosen


def sandbox_tenants_command(tenants: int, write_config: str, count: int, paid: int | None,
                            source: str | None, ledger: str | None, store_url: str | None) -> int:
    """Run one emulator pair per tenant until interrupted; write the deployment's config files."""
    config = Path(write_config).resolve()
    fleet = launch_tenants(tenants, config.parent, invoices_per_tenant=count, paid_total=paid,
                           pairs=_pairs(source, ledger), store_url=store_url or DEFAULT_STORE_URL,
                           config_name=config.name)
    console = Console()
    try:
        fleet.write(dumps)
        for tenant in fleet.tenants:
            console.print(f"{tenant.name}: {tenant.source} {tenant.launched.source.url} → {tenant.ledger} "
                          f"{tenant.launched.ledger.url}  ({tenant.paid} paid of {tenant.invoices})", markup=False)
        console.print(f"config written to {config} (companies in {config.parent / 'tenants'}); "
                      f"{fleet.paid} paid invoices in all. Run `pouracquit scheduler --config {config}` and "
                      f"`pouracquit worker --config {config}`", markup=False)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        console.print("sandboxes running; Ctrl-C to stop")
        stop.wait()
    finally:
        fleet.stop()
    return 0
