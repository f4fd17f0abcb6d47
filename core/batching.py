"""Many fresh receipts per vendor call: ledger bookings (the ledger's
BatchBooking) and CRM attachments (the source's BatchAttach).

Only receipts no earlier attempt touched are offered, their intents committed
just before the call; anything the batch did not settle goes on one by one
through the pipeline, which looks up before it writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from pouracquit.common.errors import BadRecord, ConfigError, LeaseLost, PermanentError, RetryableError
from pouracquit.common.model import Invoice
from pouracquit.connectors.base import AttachOrder, BatchAttach, BatchBooking, ReceiptOrder
from pouracquit.state.tables import Receipt

if TYPE_CHECKING:
    from .pipeline import Pipeline

log = structlog.get_logger("pouracquit.pipeline")

Answer = dict[str, str | PermanentError]
Tally = Callable[[str, str, str | None], None]


def book_in_batches(self: Pipeline, due: list[str], ledger: BatchBooking, tally: Tally) -> None:
    """Book the receipts waiting at ``ledger_record`` that no attempt has
    touched yet, ``ledger.batch_size`` per call, intents committed first;
    ``tally`` hears of each receipt the batch ends (failed, or done)."""
    _in_batches(self, due, "ledger_record", ledger.batch_size, lambda r: r.kind == "receipt",
                lambda chunk: _book_batch(self, chunk, ledger, tally))


def attach_in_batches(self: Pipeline, due: list[str], source: BatchAttach, tally: Tally) -> None:
    """Attach the documents of the receipts waiting at ``crm_attach`` that no
    attempt has touched yet, ``source.attach_batch_size`` per call, intents first."""
    _in_batches(self, due, "crm_attach", source.attach_batch_size, lambda r: r.crm_attachment_id is None,
                lambda chunk: _attach_batch(self, chunk, source, tally))


def attach_one(self: Pipeline, receipt: Receipt, invoice: Invoice, source: BatchAttach, may_exist: bool) -> str:
    """One receipt's attachment through the batch capability (the stored invoice
    names what the record links to, so nothing is read again)."""
    order = _attach_order(self, receipt, invoice, may_exist)
    result = source.attach_documents([order]).get(order.key)
    if isinstance(result, PermanentError):
        raise result
    if result is None:
        raise RetryableError(f"the CRM did not answer for attachment {order.key}")
    return result


def _in_batches(self: Pipeline, due: list[str], step: str, size: int, wanted: Callable[[Receipt], bool],
                run: Callable[[list[Receipt]], None]) -> None:
    fresh: list[Receipt] = []
    for receipt_id in due:
        receipt = self.w.store.claim(receipt_id, self.owner, self.heartbeat.until())
        if receipt is not None and receipt.step == step and receipt.intent is None and wanted(receipt):
            fresh.append(receipt)
            self.heartbeat.hold(receipt_id)
        elif receipt is not None:
            self.w.store.release(receipt_id, self.owner)
    try:
        for start in range(0, len(fresh), size):
            if self.stop.is_set():
                break
            run([r for r in fresh[start:start + size] if not _lost(self, r.id)])
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


def _intents(self: Pipeline, chunk: list[Receipt], step: str) -> bool:
    """Commit ``step`` as every receipt's intent; False (nothing committed) when a lease lapsed."""
    try:
        with self.w.store.unit() as u:
            for receipt in chunk:
                self._update(u, receipt.id, intent=step)
    except LeaseLost:
        return False  # each receipt goes on its own way
    return True


def _settle(self: Pipeline, chunk: list[Receipt], step: str, field: str, answer: Answer,
            keys: dict[str, str], tally: Tally) -> None:
    for receipt in chunk:
        result = answer.get(keys[receipt.id])
        try:
            if isinstance(result, str):
                if self._complete(receipt, step, {field: result}).status == "done":
                    tally(receipt.id, "done", None)  # its last step: no later pass counts it
            elif isinstance(result, PermanentError):
                self._stop_receipt(receipt, "failed", f"{step}: {result}")
                tally(receipt.id, "failed", f"{step}: {result}")
        except LeaseLost:
            continue  # its intent stands: the worker that holds it now finds what was written


def _book_batch(self: Pipeline, chunk: list[Receipt], ledger: BatchBooking, tally: Tally) -> None:
    if not _intents(self, chunk, "ledger_record"):
        return
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
    _settle(self, chunk, "ledger_record", "ledger_id", booked, {r: o.key for r, o in orders.items()}, tally)


def _attach_order(self: Pipeline, receipt: Receipt, invoice: Invoice, may_exist: bool) -> AttachOrder:
    from .pipeline import idempotency_key  # the pipeline imports this module

    return AttachOrder(key=idempotency_key(receipt.id), ref=receipt.source_id, document=self._document(receipt),
                       invoice=invoice, may_exist=may_exist)


def _attach_batch(self: Pipeline, chunk: list[Receipt], source: BatchAttach, tally: Tally) -> None:
    orders: dict[str, AttachOrder] = {}
    for receipt in chunk:
        try:
            orders[receipt.id] = _attach_order(self, receipt, Invoice.model_validate_json(receipt.invoice_json), False)
        except OSError:
            continue  # its own attempt reports what is wrong with its archived copy
    chunk = [r for r in chunk if r.id in orders]
    if not chunk or not _intents(self, chunk, "crm_attach"):
        return
    try:
        attached = source.attach_documents(list(orders.values()))
    except (RetryableError, PermanentError, BadRecord) as exc:
        # a ConfigError goes up: the CRM is the sync's own source, the sync stops and says why
        log.warning("batch attach failed, receipts go one by one", connection=self.w.connection,
                    receipts=len(chunk), error=f"{type(exc).__name__}: {exc}")
        return
    _settle(self, chunk, "crm_attach", "crm_attachment_id", attached, {r: o.key for r, o in orders.items()},
            tally)
