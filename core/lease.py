"""Leases renewed while work runs.

A receipt is leased to one worker for ``lease_seconds``. A step can outlast
that (a slow vendor, a long render), and another worker would then take the
receipt and perform the same step. So the holder renews its leases every
third of the period; a lease it could not renew is lost, and the holder stops
before its next vendor write. A killed worker renews nothing: its receipts
are free again after one short period, not after minutes.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from pouracquit.common.errors import LeaseLost
from pouracquit.state.store import Store

log = structlog.get_logger("pouracquit.lease")


class Heartbeat:
    """Renews the leases one worker holds, in one background thread."""

    def __init__(self, store: Store, owner: str, seconds: float) -> None:
        self.store, self.owner, self.seconds = store, owner, seconds
        self._held: set[str] = set()
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def until(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.seconds)

    def hold(self, receipt_id: str) -> None:
        with self._lock:
            self._held.add(receipt_id)
            self._lost.discard(receipt_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
                self._thread.start()

    def drop(self, receipt_id: str) -> None:
        with self._lock:
            self._held.discard(receipt_id)
            self._lost.discard(receipt_id)

    def check(self, receipt_id: str) -> None:
        """Raise LeaseLost when this worker no longer holds ``receipt_id``."""
        with self._lock:
            lost = receipt_id in self._lost
        if lost:
            raise LeaseLost(f"lease on receipt {receipt_id} was lost to another worker")

    def close(self) -> None:
        """Stop renewing; a later ``hold`` starts a new thread."""
        with self._lock:
            thread, self._thread = self._thread, None
            stop, self._stop = self._stop, threading.Event()
        stop.set()
        if thread is not None:
            thread.join(timeout=5)

    def renew_now(self) -> None:
        """One round of renewals (the thread's work; tests call it directly)."""
        with self._lock:
            held = list(self._held)
        for receipt_id in held:
            try:
                kept = self.store.renew(receipt_id, self.owner, self.until())
            except SQLAlchemyError as exc:
                # the store hiccuped: the lease still runs for two thirds of its period
                log.warning("lease renewal failed, will try again", receipt_id=receipt_id, error=str(exc)[:200])
                continue
            if not kept:
                with self._lock:
                    # a receipt finished and released since the round began is not lost
                    lost = receipt_id in self._held
                    if lost:
                        self._lost.add(receipt_id)
                if lost:
                    log.warning("lease lost", receipt_id=receipt_id, owner=self.owner)

    def _beat(self) -> None:
        stop = self._stop
        while not stop.wait(self.seconds / 3):
            self.renew_now()
