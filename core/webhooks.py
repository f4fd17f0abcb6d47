"""Webhook intake: verify a vendor's signed notification, answer at once,
and let one worker per connection run a targeted sync of the records named.
Polling stays the safety net for anything a webhook misses."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from pouracquit.common.errors import ConfigError, WebhookRejected
from pouracquit.connectors.base import WebhookLedger, WebhookRequest, WebhookSource

from .service import Service
from .sync import sync_refs

log = structlog.get_logger("pouracquit.webhooks")
T = TypeVar("T")


class ConnectionWorker:
    """Runs one connection's targeted syncs, one at a time, under the lock
    its scheduled syncs also take."""

    def __init__(self, service: Service, name: str, lock: threading.Lock) -> None:
        self.service, self.name, self.lock = service, name, lock
        self._queue: queue.Queue[list[str]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"webhooks-{name}", daemon=True)

    def start(self) -> ConnectionWorker:
        self._thread.start()
        return self

    def push(self, refs: list[str]) -> None:
        self._queue.put(refs)

    def _next_batch(self) -> list[str]:
        refs = list(self._queue.get(timeout=0.5))
        while True:  # events that arrived meanwhile ride along
            try:
                refs += [r for r in self._queue.get_nowait() if r not in refs]
            except queue.Empty:
                return refs

    def _run(self) -> None:
        while not self.service.stop.is_set():
            try:
                refs = self._next_batch()
            except queue.Empty:
                continue
            with self.lock:
                try:
                    sync_refs(self.service, self.name, refs)
                except Exception:
                    log.exception("targeted sync crashed", connection=self.name)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class WebhookIntake:
    """Routes ``POST /webhooks/<vendor>`` to the connections whose source is that vendor."""

    def __init__(self, service: Service, workers: dict[str, ConnectionWorker]) -> None:
        self.service, self.workers = service, workers

    def receive(self, vendor: str, request: WebhookRequest) -> tuple[int, dict[str, Any]]:
        ledgers = [c for c in self.service.connections() if c.ledger.vendor == vendor]
        if ledgers:
            return self._ledger_changes(vendor, ledgers, request)
        targets = [c for c in self.service.connections() if c.source.vendor == vendor and c.name in self.workers]
        if not targets:
            return 404, {"error": f"no connection takes {vendor} webhooks"}
        sources = {c.name: self.service.wiring(c).source for c in targets}
        if not all(isinstance(s, WebhookSource) for s in sources.values()):
            return 404, {"error": f"{vendor} sources do not take webhooks"}
        verified, reasons = _verify_each(targets, lambda c: sources[c.name].parse_webhook(request))
        if not verified:
            return _rejected(vendor, reasons)
        for conn, refs in verified:
            if refs:
                self.workers[conn.name].push(refs)
        return 200, {"accepted": len(verified)}

    def _ledger_changes(self, vendor: str, targets: list[Any], request: WebhookRequest) -> tuple[int, dict[str, Any]]:
        """A change made in the ledger to a record pouracquit booked goes into the
        audit trail; a deleted or voided booking is raised in /status for a person:
        pouracquit never books a paid invoice again on its own."""
        ledgers = {c.name: self.service.wiring(c).ledger for c in targets}
        if not all(isinstance(ledger, WebhookLedger) for ledger in ledgers.values()):
            return 404, {"error": f"{vendor} ledgers do not take webhooks"}
        verified, reasons = _verify_each(targets, lambda c: ledgers[c.name].parse_ledger_webhook(request))
        if not verified:
            return _rejected(vendor, reasons)
        noted = 0
        for conn, changes in verified:
            for change in changes:
                for receipt in self.service.store.receipts_booked_as(conn.name, change.ref):
                    with self.service.store.unit() as u:
                        u.log(conn.name, "ledger_changed", receipt_id=receipt.id, source_id=receipt.source_id,
                              ledger_id=change.ref, operation=change.operation, destructive=change.destructive)
                    noted += 1
                    if change.destructive:
                        log.warning("a booked receipt was removed in the ledger", connection=conn.name,
                                    receipt_id=receipt.id, operation=change.operation)
        return 200, {"accepted": len(verified), "receipts_noted": noted}


def _verify_each(targets: list[Any], parse: Callable[[Any], T]) -> tuple[list[tuple[Any, T]], list[str]]:
    """Each connection may be a different vendor app: the ones whose secret
    signed the webhook take it; the others say why they refused it."""
    verified, reasons = [], []
    for conn in targets:
        try:
            verified.append((conn, parse(conn)))
        except WebhookRejected as exc:
            reasons.append(str(exc))
        except ConfigError as exc:  # a secret missing or empty: nothing is verified with it
            log.error("webhook secret unusable", connection=conn.name, reason=str(exc))
            reasons.append(f"connection {conn.name} cannot verify webhooks: fix its configuration")
    return verified, reasons


def _rejected(vendor: str, reasons: list[str]) -> tuple[int, dict[str, Any]]:
    log.warning("webhook rejected", vendor=vendor, reasons=reasons)
    return 401, {"error": "; ".join(sorted(set(reasons)))}
