"""The companies one admin server answers for.

``pouracquit run`` gives the admin server its one ``Service`` (one company, the
tenant "default" or the one ``--tenant`` named); ``pouracquit admin`` gives it a
deployment's ``Tenants``: every company of the ``[tenants]`` directory, read
again when the files change, or the one company of a config without it.

Every read of a company's rows goes through that company's scoped store. The one
exception is ``route_of``: a receipt id alone (an old verify or survey link, made
before links carried their tenant) is looked up across the deployment for its
tenant column only, by the receipt table's primary key (ids are unique across
tenants); the page is then read through that tenant's store like any other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import select

from pouracquit.common.errors import ConfigError, one_line
from pouracquit.core.config import Settings
from pouracquit.core.service import Service
from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt

if TYPE_CHECKING:
    from pouracquit.core.tenants import Tenants

REFRESH_SECONDS = 5.0  # a tenant file added, changed or removed shows within this
# companies read at once by /metrics and /status: each read waits on the database far more than it
# computes, and the store's PostgreSQL pool holds 10 connections (state/db.py), shared with the pages
READERS = 4
T = TypeVar("T")


class Served:
    """One Service, or a deployment's tenants, behind one interface."""

    def __init__(self, source: Service | Tenants) -> None:
        self.one = source if isinstance(source, Service) else None
        self.tenants = None if isinstance(source, Service) else source
        # SIGTERM sets it: /readyz says "stopping" (the daemon's is its service's own)
        self.stop = source.stop if isinstance(source, Service) else threading.Event()
        self._lock = threading.Lock()
        self._refreshed = time.monotonic()

    @property
    def many(self) -> bool:
        """A deployment of several companies (``[tenants]``): /status summarises them, pages ask which."""
        return self.tenants is not None and self.tenants.many

    @property
    def works_receipts(self) -> bool:
        """This process works receipts itself (``run``); under ``admin`` the fleet's workers do."""
        return self.one is not None

    @property
    def settings(self) -> Settings:
        """The deployment's settings: the admin server's bind, token and public URL."""
        return self.one.settings if self.one is not None else self.tenants.settings  # type: ignore[union-attr]

    @property
    def store(self) -> Store:
        return self.one.store if self.one is not None else self.tenants.store  # type: ignore[union-attr]

    @property
    def home(self) -> str:
        """The tenant of this process's own work (its counters' label)."""
        return self.one.tenant if self.one is not None else self.store.tenant

    def _fresh(self) -> Tenants | None:
        if self.tenants is not None and self.tenants.many:
            with self._lock:
                due = time.monotonic() - self._refreshed >= REFRESH_SECONDS
                if due:
                    self._refreshed = time.monotonic()
            if due:
                self.tenants.refresh()
        return self.tenants

    def names(self) -> list[str]:
        """The companies worked: enabled, with a usable file."""
        tenants = self._fresh()
        return [self.home] if tenants is None else tenants.names()

    def known(self) -> list[str]:
        """Every company of the deployment, disabled and unusable ones too."""
        tenants = self._fresh()
        return [self.home] if tenants is None else tenants.names(enabled_only=False)

    def problems(self) -> dict[str, str]:
        """Tenant files that cannot be used, with why (one line each)."""
        tenants = self._fresh()
        return {} if tenants is None else {n: one_line(p) for n, p in tenants.problems().items()}

    def service(self, name: str) -> Service | None:
        """Company ``name``'s wiring, disabled or not; None when the deployment has no usable
        company of that name."""
        if self.one is not None:
            return self.one if name == self.one.tenant else None
        tenants = self._fresh()
        try:
            return tenants.service(name)  # type: ignore[union-attr]
        except ConfigError:
            return None

    def each(self, names: list[str], read: Callable[[str, Service], T]) -> list[tuple[str, T]]:
        """``read(name, service)`` for each usable company of ``names``, a few at once, in order."""
        services = [(name, service) for name in names if (service := self.service(name)) is not None]
        if len(services) < 2:
            return [(name, read(name, service)) for name, service in services]
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="admin-read") as pool:
            return list(zip([name for name, _ in services], pool.map(lambda pair: read(*pair), services),
                            strict=True))

    def route_of(self, receipt_id: str) -> str | None:
        """The tenant of a receipt id (a link without its tenant); None when no company has it."""
        if not self.many:
            return self.home
        table = Receipt.__table__  # type: ignore[attr-defined]
        # the tenant column by primary key, outside the tenant-scoped session on purpose (module note)
        with self.store.engine.connect() as conn:
            found = conn.execute(select(table.c.tenant).where(table.c.id == receipt_id)).scalar_one_or_none()
        return str(found) if found is not None else None
