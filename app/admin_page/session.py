"""Who may use the admin page: a login with the admin token opens a session
held in a signed cookie; every POST carries the session's CSRF token; login
attempts are rate-limited per client address.

Sessions live in this process's memory and are signed with a key drawn at
start-up: a restart or a logout ends them. The stdlib's HMAC signs them
(itsdangerous is not a dependency).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque

SESSION_SECONDS = 8 * 3600  # a working day, then the token again
LOGIN_SECONDS = 600  # the login form's CSRF nonce lives this long
MAX_SESSIONS = 1000  # beyond, the oldest go: a flood of logins cannot grow memory without end
ATTEMPTS = 5  # login attempts per client address...
ATTEMPT_WINDOW = 60.0  # ...in this many seconds


class Sessions:
    """Signed session ids, their CSRF tokens and the login form's nonce."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._live: dict[str, float] = {}  # session id -> expiry (epoch seconds)
        self._lock = threading.Lock()

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def open(self) -> str:
        """A new session: the cookie value ``<id>.<expiry>.<signature>``."""
        sid, expires = secrets.token_urlsafe(32), int(time.time()) + SESSION_SECONDS
        with self._lock:
            now = time.time()
            self._live = {s: e for s, e in self._live.items() if e > now}
            while len(self._live) >= MAX_SESSIONS:
                self._live.pop(min(self._live, key=self._live.__getitem__))
            self._live[sid] = expires
        return f"{sid}.{expires}.{self._sign('session', f'{sid}.{expires}')}"

    def valid(self, cookie: str | None) -> str | None:
        """The session id a cookie holds when it is ours, unexpired and not logged out."""
        sid, _, rest = (cookie or "").partition(".")
        expires, _, signature = rest.partition(".")
        if not (sid and expires.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature, self._sign("session", f"{sid}.{expires}")):
            return None
        with self._lock:
            live = self._live.get(sid)
        return sid if live is not None and live == int(expires) and live > time.time() else None

    def close(self, sid: str) -> None:
        with self._lock:
            self._live.pop(sid, None)

    def csrf(self, sid: str) -> str:
        """The token a session's forms carry: derived from the session, never stored."""
        return self._sign("csrf", sid)

    def login_nonce(self) -> str:
        """The value of the short-lived cookie the login form's token is derived from."""
        return secrets.token_urlsafe(24)

    def login_csrf(self, nonce: str) -> str:
        return self._sign("login", nonce)

    def csrf_matches(self, expected: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class LoginLimiter:
    """At most ATTEMPTS login attempts per address in any ATTEMPT_WINDOW seconds."""

    def __init__(self, attempts: int = ATTEMPTS, window: float = ATTEMPT_WINDOW) -> None:
        self.attempts, self.window = attempts, window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, address: str) -> int | None:
        """Count one attempt; None when allowed, else the seconds to wait (Retry-After)."""
        now = time.monotonic()
        with self._lock:
            for other in [a for a, times in self._seen.items() if times[-1] <= now - self.window]:
                del self._seen[other]  # forget quiet addresses: the table stays small
            times = self._seen.setdefault(address, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.attempts:
                return max(1, int(times[0] + self.window - now + 0.999))
            times.append(now)
            return None


def token_matches(given: str, token: str | None) -> bool:
    """The admin token, compared in constant time; no configured token lets nobody in."""
    return bool(token) and bool(given) and hmac.compare_digest(given.encode(), (token or "").encode())
