"""The connectors' OAuth tokens in the state store, sealed with Fernet."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken

from pouracquit.common.errors import ConfigError

from .store import Store
from .tables import Credential
from .types import utcnow


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
