"""Locks the fleet's processes take in the state store's database.

On PostgreSQL both are session-level advisory locks on a connection of their
own, held for as long as the work they guard: the server lets go of one when
its session ends, so the lock of a worker or scheduler that was killed goes
with its connection, never waits for a timeout of ours. The session asks the
server for TCP keepalives, so a machine that vanished without closing its
sockets (power loss) lets go within about a minute too.

On SQLite the store serves one machine: the sync lock is a lock in this
process (one worker process) and the scheduler's is an ``flock`` on a file
beside the database, which the kernel releases with the process.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import structlog
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = structlog.get_logger("pouracquit.fleet.locks")

# seconds before the server probes an idle lock session, between probes, probes lost before it ends the
# session (PostgreSQL's tcp_keepalives_* settings, which a session may set for itself:
# https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-TCP-KEEPALIVES-IDLE)
KEEPALIVE = (30, 10, 3)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def lock_engine(store_url: str) -> Engine | None:
    """An engine for lock sessions (one connection each, no pool, no open
    transaction left idle); None on SQLite."""
    url = make_url(store_url)
    if url.get_backend_name() != "postgresql":
        return None
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _try_lock(engine: Engine, key: int) -> Connection | None:
    """A session holding advisory lock ``key``, or None when another session holds it."""
    conn = engine.connect()
    try:
        idle, interval, count = KEEPALIVE
        conn.execute(text(f"SET tcp_keepalives_idle = {idle}; SET tcp_keepalives_interval = {interval}; "
                          f"SET tcp_keepalives_count = {count}"))
        if conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
            return conn
    except BaseException:
        conn.close()
        raise
    conn.close()
    return None


def _let_go(conn: Connection, key: int) -> None:
    try:
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    except SQLAlchemyError as exc:  # the session is gone, and its lock with it
        log.warning("advisory lock session lost before its release", error=str(exc).splitlines()[0])
    finally:
        conn.close()


class SyncLocks:
    """One sync per connection of a tenant at a time, across the fleet."""

    def __init__(self, store_url: str) -> None:
        self._engine = lock_engine(store_url)
        self._local: dict[int, threading.Lock] = {}
        self._mutex = threading.Lock()

    @contextmanager
    def hold(self, tenant: str, connection: str, wait: float = 0.0) -> Iterator[bool]:
        """Yields True while this process holds the lock, False when another does (for ``wait`` seconds)."""
        key = lock_key(f"sync:{tenant}/{connection}")
        if self._engine is None:
            with self._mutex:
                lock = self._local.setdefault(key, threading.Lock())
            got = lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)
            try:
                yield got
            finally:
                if got:
                    lock.release()
            return
        deadline = time.monotonic() + wait
        while (conn := _try_lock(self._engine, key)) is None and time.monotonic() < deadline:
            time.sleep(0.5)
        try:
            yield conn is not None
        finally:
            if conn is not None:
                _let_go(conn, key)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


class Leadership:
    """The scheduler's lock: whoever holds it leads, the others stand by."""

    def __init__(self, store_url: str, name: str) -> None:
        self.key = lock_key(name)
        self._engine = lock_engine(store_url)
        self._conn: Connection | None = None
        self._file: IO[bytes] | None = None
        if self._engine is None:
            database = make_url(store_url).database or "pouracquit.sqlite"
            self._path = Path(f"{database}.{name.replace('/', '_')}.lock")

    def acquire(self) -> bool:
        """True while this process leads: takes the lock if free, and checks a held one is still held."""
        if self._engine is None:
            return self._flock()
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except SQLAlchemyError as exc:  # the server restarted or the network cut: the lock went with it
                log.warning("scheduler lock session lost", error=str(exc).splitlines()[0])
                self._conn.close()
                self._conn = None
        try:
            self._conn = _try_lock(self._engine, self.key)
        except SQLAlchemyError as exc:
            log.warning("scheduler lock unavailable", error=str(exc).splitlines()[0])
            return False
        return self._conn is not None

    def _flock(self) -> bool:
        if self._file is not None:
            return True
        handle = open(self._path, "ab")  # held open for as long as this process leads
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        os.chmod(self._path, 0o600)
        self._file = handle
        return True

    def release(self) -> None:
        if self._conn is not None:
            _let_go(self._conn, self.key)
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._engine is not None:
            self._engine.dispose()
