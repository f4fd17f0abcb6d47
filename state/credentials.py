"""The connectors' OAuth tokens in the state store, sealed with Fernet."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from pouracquit.common.errors import ConfigError

from .store import Store
from .tables import Credential
from .types import utcnow

# SQLite serves one machine: a lock per credential in this process is all there is to take
_LOCAL: dict[tuple[str, str, str], threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


class CredentialStore:
    """The connectors' TokenStore, one namespace per connection, encrypted at
    rest with Fernet: a copy of the database alone reveals no token."""

    def __init__(self, store: Store, connection: str, cipher: Callable[[], Fernet]) -> None:
        self._store, self._connection, self._cipher = store, connection, cipher

    def get(self, name: str) -> str | None:
        with self._store.session() as session:
            row = session.get(Credential, (self._store.tenant, self._connection, name))
        if row is None:
            return None
        try:
            return self._cipher().decrypt(row.value.encode()).decode()
        except InvalidToken:
            raise ConfigError(f"stored credential {self._connection}/{name} cannot be decrypted with the "
                              f"configured store.encryption_key (was the key changed?)") from None

    def put(self, name: str, value: str) -> None:
        sealed = self._cipher().encrypt(value.encode()).decode()
        with self._store.unit() as u:
            row = u.get(Credential, self._connection, name)
            if row is None:
                u.session.add(Credential(connection=self._connection, name=name, value=sealed))
            else:
                row.value, row.updated_at = sealed, utcnow()

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """One holder of credential ``name`` at a time, across every process on this store: a
        rotating refresh token read by two workers at once is spent by the first and refused
        (invalid_grant) to the second, which would then report the connection lost. The holder
        reads the stored token, refreshes and stores the new one before the next may read."""
        ident = (self._store.tenant, self._connection, name)
        if self._store.engine.dialect.name != "postgresql":
            with _LOCAL_GUARD:
                lock = _LOCAL.setdefault(ident, threading.Lock())
            with lock:
                yield
            return
        # a session-level lock on a connection of its own, so a killed holder's lock goes with it
        with self._store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            key = "/".join(ident)
            conn.execute(text("SELECT pg_advisory_lock(7202, hashtext(:k))"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(7202, hashtext(:k))"), {"k": key})
