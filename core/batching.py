"""Booking many fresh receipts per ledger call (the ledger's BatchBooking).

Only receipts no earlier attempt touched are offered, their intents committed
just before the call; anything the batch did not settle goes on one by one
through the pipeline, which looks up before it writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from pouracquit.common.errors import BadRecord, ConfigError, LeaseLost, PermanentError, RetryableError
from pouracquit.common.model import Invoice
from pouracquit.connectors.base import BatchBooking, ReceiptOrder
from pouracquit.state.tables import Receipt

if TYPE_CHECKING:
    from .pipeline import Pipeline

log = structlog.get_logger("pouracquit.pipeline")


def book_in_batches(self: Pipeline, due: list[str], ledger: BatchBooking) -> None:
    """Book the receipts waiting at ``ledger_record`` that no attempt has
    touched yet, ``ledger.batch_size`` per call, intents committed first."""
    fresh: list[Receipt] = []
    for receipt_id in due:
        receipt = self.w.store.claim(receipt_id, self.owner, self.heartbeat.until())
        if (receipt is not None and receipt.step == "ledger_record" and receipt.intent is None
                and receipt.kind == "receipt"):
            fresh.append(receipt)
            self.heartbeat.hold(receipt_id)
        elif receipt is not None:
            self.w.store.release(receipt_id, self.owner)
    try:
        for start in range(0, len(fresh), ledger.batch_size):
            if self.stop.is_set():
                break
            chunk = [r for r in fresh[start:start + ledger.batch_size] if not _lost(self, r.id)]
            _book_batch(self, chunk, ledger)
    finally:
        for receipt in fresh:
            self.heartbeat.drop(receipt.id)
            self.w.store.release(receipt.id, self.owner)

def _lost(self: Pipeline, receipt_id: str) -> bool:
    try:
        self.heartbeat.check(receipt_id)
    except LeaseLost:
        return True
    return False

def _book_batch(self: Pipeline, chunk: list[Receipt], ledger: BatchBooking) -> None:
    try:
        with self.w.store.unit() as u:
            for receipt in chunk:
                self._update(u, receipt.id, intent="ledger_record")
    except LeaseLost:
        return  # a lease lapsed: no intent was committed, each receipt goes on its own way
    from .pipeline import idempotency_key  # the pipeline imports this module

    orders = {
        receipt.id: ReceiptOrder(key=idempotency_key(receipt.id), number=receipt.number or "",
                                 invoice=Invoice.model_validate_json(receipt.invoice_json))
        for receipt in chunk
    }
    try:
        booked = ledger.record_receipts(list(orders.values()))
    except ConfigError as exc:
        self.ledger_down = str(exc)  # each receipt's own attempt records it and goes on with the CRM
        return
    except (RetryableError, PermanentError, BadRecord) as exc:
        # the intents are committed: each receipt's own attempt looks up before writing
        log.warning("batch booking failed, receipts go one by one", connection=self.w.connection,
                    receipts=len(chunk), error=f"{type(exc).__name__}: {exc}")
        return
    for receipt in chunk:
        result = booked.get(orders[receipt.id].key)
        try:
            if isinstance(result, str):
                self._complete(receipt, "ledger_record", {"ledger_id": result})
            elif isinstance(result, PermanentError):
                self._stop_receipt(receipt, "failed", f"ledger_record: {result}")
        except LeaseLost:
            continue  # its intent stands: the worker that holds it now finds the booking
