"""OAuth 2.0 bookkeeping shared by the emulators: codes, expiring access
tokens, refresh tokens that may rotate on every use (as QuickBooks and Xero do),
the scopes each grant carries, and RFC 6749 section 5.2 error bodies."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Grant:
    client_id: str
    scope: str
    expires_at: float = 0.0


@dataclass
class TokenIssuer:
    """Issues and checks tokens. ``access_ttl`` is in vendor seconds and is
    scaled by ``time_factor``; ``rotate`` makes every refresh return a new
    refresh token and retire the old one."""

    access_ttl: float = 3600.0
    rotate: bool = False
    time_factor: float = 1.0
    clients: dict[str, str] = field(default_factory=dict)
    _codes: dict[str, _Grant] = field(default_factory=dict)
    _access: dict[str, _Grant] = field(default_factory=dict)
    _refresh: dict[str, _Grant] = field(default_factory=dict)
    _static: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register_client(self, client_id: str, secret: str) -> None:
        self.clients[client_id] = secret

    def add_refresh_token(self, token: str, client_id: str, scope: str = "") -> None:
        """Pre-issue a refresh token (the sandbox's ready-made demo grant)."""
        with self._lock:
            self._refresh[token] = _Grant(client_id, scope)

    def add_static_token(self, token: str) -> None:
        """A non-expiring bearer token (a HubSpot private-app token, say)."""
        self._static.add(token)

    def client_ok(self, client_id: str | None, secret: str | None) -> bool:
        return client_id is not None and self.clients.get(client_id) == secret

    def issue_code(self, client_id: str, scope: str) -> str:
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = _Grant(client_id, scope, time.monotonic() + 600 * self.time_factor)
        return code

    def _new_pair(self, grant: _Grant, refresh_token: str | None) -> dict[str, Any]:
        access = secrets.token_urlsafe(24)
        expires = time.monotonic() + self.access_ttl * self.time_factor
        self._access[access] = _Grant(grant.client_id, grant.scope, expires)
        if refresh_token is None or self.rotate:
            if refresh_token is not None:
                self._refresh.pop(refresh_token, None)
            refresh_token = secrets.token_urlsafe(24)
            self._refresh[refresh_token] = _Grant(grant.client_id, grant.scope)
        return {
            "access_token": access,
            "refresh_token": refresh_token,
            "expires_in": int(self.access_ttl),
            "token_type": "bearer",
        }

    def exchange_code(self, code: str, client_id: str) -> dict[str, Any] | None:
        with self._lock:
            grant = self._codes.pop(code, None)
            if grant is None or grant.client_id != client_id or grant.expires_at < time.monotonic():
                return None
            return self._new_pair(grant, None)

    def refresh(self, refresh_token: str, client_id: str) -> dict[str, Any] | None:
        with self._lock:
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.client_id != client_id:
                return None
            return self._new_pair(grant, refresh_token)

    def grant_scope(self, refresh_token: str) -> str | None:
        with self._lock:
            grant = self._refresh.get(refresh_token)
        return grant.scope if grant else None

    def code_scope(self, code: str) -> str | None:
        with self._lock:
            grant = self._codes.get(code)
        return grant.scope if grant else None

    def scopes(self, access_token: str) -> frozenset[str] | None:
        """The scopes an access token was granted; None for a static token, which
        carries whatever its private app was given (every scope, here)."""
        if access_token in self._static:
            return None
        with self._lock:
            grant = self._access.get(access_token)
        return frozenset(grant.scope.replace(",", " ").split()) if grant else frozenset()

    def check(self, access_token: str | None) -> bool:
        if not access_token:
            return False
        if access_token in self._static:
            return True
        with self._lock:
            grant = self._access.get(access_token)
            return grant is not None and grant.expires_at > time.monotonic()


# RFC 6749 section 5.2: the token endpoint's error codes (HTTP 400 unless noted there).
RFC6749_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                            "unsupported_grant_type", "invalid_scope"})


def rfc6749_error(error: str, description: str, **extra: Any) -> dict[str, Any]:
    """A token endpoint error body: ``error`` and ``error_description`` (RFC 6749
    section 5.2), plus whatever fields a vendor keeps beside them."""
    if error not in RFC6749_ERRORS:
        raise ValueError(f"{error!r} is not an RFC 6749 token error")
    return {"error": error, "error_description": description, **extra}
