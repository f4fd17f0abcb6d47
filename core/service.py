"""Process-wide wiring: one store, one call meter, one renderer, and each
configured connection's source, ledger and pipeline parts built once."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet

from pouracquit.common.calls import CallMeter, GateFactory, RetryPolicy, local_gates
from pouracquit.common.errors import ConfigError
from pouracquit.connectors.registry import ConnectorContext, factory
from pouracquit.state.credentials import CredentialStore
from pouracquit.state.db import open_engine
from pouracquit.state.store import Store

from .archive import Archive
from .config import ConnectionSettings, Settings
from .datadir import secure_data_dir
from .delivery.step import EmailStep
from .disconnections import DisconnectionWatch
from .pipeline import Wiring

if TYPE_CHECKING:
    from .document import Renderer, RenderPool


def worker_id() -> str:
    """Who holds a lease: host, process and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Service:
    settings: Settings
    store: Store
    meter: CallMeter = field(default_factory=CallMeter)
    owner: str = field(default_factory=worker_id)
    stop: threading.Event = field(default_factory=threading.Event)
    # the connectors' rate gates by (connection, vendor): in-process by default; a fleet's workers
    # share each connection's budget through Redis (fleet/rates.py)
    gates: Callable[[str, str], GateFactory] = lambda _connection, _vendor: local_gates
    _renderer: Renderer | RenderPool | None = None
    _fernet: Fernet | None = None
    _wirings: dict[str, Wiring] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings) -> Service:
        """Open (and migrate) the state store named by ``settings``."""
        secure_data_dir(settings)  # before SQLite creates anything in it
        return cls(settings=settings, store=Store(open_engine(settings.store_url), settings.tenant))

    @property
    def tenant(self) -> str:
        return self.store.tenant

    def cipher(self) -> Fernet:
        """The store's Fernet cipher; read on first use so commands that keep
        no token never need the key."""
        with self._lock:
            if self._fernet is None:
                ref = self.settings.store.encryption_key
                try:
                    self._fernet = Fernet(ref.value().get_secret_value().encode())
                except ConfigError as exc:
                    raise ConfigError(f"store.encryption_key: {exc} (create a key with `pouracquit keygen`)") from None
                except ValueError:
                    raise ConfigError(f"store.encryption_key: the key in {ref.describe()} is not a Fernet key "
                                      f"(create one with `pouracquit keygen`)") from None
            return self._fernet

    @property
    def renderer(self) -> Renderer | RenderPool:
        from .document import Renderer, RenderPool  # WeasyPrint and Saxon load with the first document

        with self._lock:
            if self._renderer is None:
                doc = self.settings.document
                self._renderer = (RenderPool(self.settings.company, doc, doc.render_processes)
                                  if doc.render_processes >= 2 else Renderer(self.settings.company, doc))
            return self._renderer

    def close(self) -> None:
        """Stop the render workers, if any."""
        if self._renderer is None:
            return
        from .document import RenderPool

        if isinstance(self._renderer, RenderPool):
            self._renderer.close()

    def connections(self, only: str | None = None) -> list[ConnectionSettings]:
        if only:
            return [self.settings.connection(only)]
        return [c for c in self.settings.connections if c.enabled]

    def _context(self, conn: ConnectionSettings, vendor: str, mapping: dict) -> ConnectorContext:  # type: ignore[type-arg]
        p = self.settings.pipeline
        return ConnectorContext(
            connection=conn.name,
            # a refused token refresh is recorded as a disconnection at once, with its fix
            meter=self.meter.watched_by(DisconnectionWatch(self.store, conn)),
            tokens=CredentialStore(self.store, conn.name, self.cipher),
            retry=RetryPolicy(attempts=p.vendor_retry_attempts, backoff_base=p.vendor_backoff_seconds),
            window_scale=self.settings.time_factor,
            mapping=mapping,
            replays=self.store,  # webhook signatures seen survive a restart
            gates=self.gates(conn.name, vendor),
        )

    def wiring(self, conn: ConnectionSettings) -> Wiring:
        """Build (once) the connectors of ``conn``; a bad key names its path."""
        with self._lock:
            if conn.name in self._wirings:
                return self._wirings[conn.name]
        # the key must be usable before any vendor call: a refresh token rotated at
        # the vendor and then not storable would disconnect the customer for good
        self.cipher()
        parts = {}
        for role, endpoint, mapping in (
            ("source", conn.source, conn.mapping.source),
            ("ledger", conn.ledger, conn.mapping.ledger),
        ):
            try:
                cls = factory(endpoint.vendor, role)  # type: ignore[arg-type]
                parts[role] = cls.from_settings(endpoint.settings(), self._context(conn, endpoint.vendor, mapping))
            except ConfigError as exc:
                raise ConfigError(f"connections.{conn.name}.{role}: {exc}") from None
        archive = Archive(self.settings.archive)
        archive.sweep_temporary()
        wiring = Wiring(
            connection=conn.name,
            source=parts["source"],  # type: ignore[arg-type]
            ledger=parts["ledger"],  # type: ignore[arg-type]
            store=self.store,
            renderer=self.renderer,
            archive=archive,
            numbering=self.settings.numbering,
            policy=self.settings.pipeline,
            email=EmailStep.of(self.settings, parts["source"]),  # type: ignore[arg-type]
        )
        with self._lock:
            return self._wirings.setdefault(conn.name, wiring)
