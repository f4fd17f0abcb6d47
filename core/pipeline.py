"""The receipt pipeline: idempotent steps, each recorded before the next.

number → render → archive → ledger_record → ledger_attach → crm_attach

Before a step writes to a vendor its name is committed as the receipt's
``intent``. A replay that finds its own intent still set knows an earlier
attempt may have written, and asks the connector to look before it writes
(``may_exist``). A receipt that keeps failing stops at its step with the
reason; it never holds up the others.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from pouracquit.common.errors import (
    BadRecord,
    ConfigError,
    LeaseLost,
    PermanentError,
    PouracquitError,
    RetryableError,
)
from pouracquit.common.model import CreditReference, Invoice
from pouracquit.connectors.base import BatchAttach, BatchBooking, CrmSource, Document, Ledger, ReceiptOrder
from pouracquit.state.store import Store, Unit
from pouracquit.state.tables import Receipt

from .archive import Archive
from .batching import attach_in_batches, attach_one, book_in_batches
from .config import NumberingSettings, PipelineSettings
from .credit import credit_reference, issue_date, original_of
from .delivery.step import EmailStep
from .document import PaidReceipt
from .lease import Heartbeat

if TYPE_CHECKING:  # the renderer is built by the service; importing it here would load WeasyPrint
    from .document import Renderer, RenderPool

log = structlog.get_logger("pouracquit.pipeline")

STEPS = ("number", "render", "archive", "ledger_record", "ledger_attach", "crm_attach", "email", "done")
EXTERNAL = frozenset({"ledger_record", "ledger_attach", "crm_attach", "email"})
LEDGER_STEPS = frozenset({"ledger_record", "ledger_attach"})


def idempotency_key(receipt_id: str) -> str:
    """The key every vendor write of this receipt carries, on every replay."""
    return f"pa-{receipt_id}"


@dataclass
class Wiring:
    """The parts one connection's pipeline runs with."""

    connection: str
    source: CrmSource
    ledger: Ledger
    store: Store
    renderer: Renderer | RenderPool
    archive: Archive
    numbering: NumberingSettings
    policy: PipelineSettings
    email: EmailStep | None = None  # None: [email] is not enabled


@dataclass
class DrainReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    # why the ledger could not be used in this drain (a refused token, its configuration), if so
    ledger_down: str | None = None


class Pipeline:
    """Moves one connection's pending receipts through their steps."""

    def __init__(self, wiring: Wiring, owner: str, stop: threading.Event | None = None) -> None:
        self.w = wiring
        self.owner = owner
        self.stop = stop or threading.Event()
        self.heartbeat = Heartbeat(wiring.store, owner, wiring.policy.lease_seconds)
        self.ledger_down: str | None = None
        self._steps: dict[str, Callable[[Receipt, Invoice, bool], dict[str, Any]]] = {
            "render": self._render,
            "archive": self._archive,
            "ledger_record": self._ledger_record,
            "ledger_attach": self._ledger_attach,
            "crm_attach": self._crm_attach,
            "email": self._email,
        }

    def drain(self, on_done: Callable[[str], None] | None = None) -> DrainReport:
        """Work every due receipt once, batch after batch until none is left that this drain
        has not tried; stops early (between steps) on ``stop``. Receipts run on ``policy.workers``
        threads (one renders while others wait on vendors, whose limits each connector's gate keeps);
        with a ledger that books in batches, they run to ``ledger_record``, are booked together, then on."""
        def batches() -> Iterator[list[str]]:
            tried: set[str] = set()
            while due := self.w.store.due(self.w.connection, datetime.now(UTC), skip=frozenset(tried)):
                tried.update(due)
                yield due

        return self._run(batches(), on_done)

    def work(self, receipt_ids: list[str], on_done: Callable[[str], None] | None = None) -> DrainReport:
        """These receipts once each, as a drain would (a fleet task); one not due or held elsewhere is left."""
        return self._run(iter([receipt_ids]), on_done)

    def _run(self, batches: Iterator[list[str]], on_done: Callable[[str], None] | None) -> DrainReport:
        report = DrainReport()
        lock = threading.Lock()

        def tally(receipt_id: str, outcome: str, error: str | None) -> None:
            if outcome in ("paused", "busy"):
                return
            with lock:
                report.outcomes[outcome] += 1
                report.errors.update({receipt_id: error} if error else {})
                if on_done:
                    on_done(outcome)

        try:
            for due in batches:
                if self.stop.is_set():
                    break
                self._drain_batch(due, tally)
            if self.w.email is not None:  # the e-mails sent are logged on the CRM in batches where it can
                self.w.email.flush(self.w.store, self.w.connection, self.w.policy.lease_seconds)
        finally:
            self.heartbeat.close()
        report.ledger_down = self.ledger_down
        return report

    def _drain_batch(self, due: list[str], tally: Callable[[str, str, str | None], None]) -> None:
        ledger = self.w.ledger if isinstance(self.w.ledger, BatchBooking) else None
        source = self.w.source if isinstance(self.w.source, BatchAttach) else None
        sizes = ([ledger.batch_size] if ledger else []) + ([source.attach_batch_size] if source else [])
        if not sizes:
            self._each(due, tally)
            return
        # one batch at a time: the first receipts are booked and attached while
        # later ones still wait, rather than after every document is rendered
        for start in range(0, len(due), max(sizes)):
            if self.stop.is_set():
                break
            part = due[start:start + max(sizes)]
            if ledger is not None:
                self._each(part, tally, until="ledger_record")
                if self.ledger_down is None:
                    book_in_batches(self, part, ledger, tally)
            if source is not None:
                self._each(part, tally, until="crm_attach")
                attach_in_batches(self, part, source, tally)
            self._each(part, tally)

    def _each(self, due: list[str], tally: Callable[[str, str, str | None], None], until: str | None = None) -> None:
        def work(receipt_id: str) -> None:
            if not self.stop.is_set():
                tally(receipt_id, *self.process(receipt_id, until))

        with ThreadPoolExecutor(max_workers=self.w.policy.workers, thread_name_prefix="receipt") as pool:
            for future in [pool.submit(work, receipt_id) for receipt_id in due]:
                future.result()

    def process(self, receipt_id: str, until: str | None = None) -> tuple[str, str | None]:
        """Run one receipt as far as it goes (or up to step ``until``);
        returns (outcome, error text)."""
        receipt = self.w.store.claim(receipt_id, self.owner, self.heartbeat.until())
        if receipt is None:
            return "busy", None
        self.heartbeat.hold(receipt_id)
        blog = log.bind(tenant=self.w.store.tenant, connection=self.w.connection, receipt_id=receipt_id)
        try:
            invoice = Invoice.model_validate_json(receipt.invoice_json)
            while receipt.step != "done":
                if self.stop.is_set():
                    return "interrupted", None
                if receipt.step == until:
                    return "paused", None
                receipt = self._run_step(receipt, invoice)
                blog.debug("step done", step=receipt.step)
            return "done", None
        except LeaseLost:
            blog.warning("lease lost: another worker goes on with this receipt", step=receipt.step)
            return "busy", None
        except ConfigError as exc:
            if receipt.step not in LEDGER_STEPS:
                raise  # the installation is wrong: the whole sync stops and says why
            return self._ledger_unusable(receipt, str(exc), blog)
        except SQLAlchemyError:
            raise  # the installation or the state store is wrong: the whole sync stops and says why
        except Exception as exc:  # noqa: BLE001 - one receipt's surprise must not hold up the others
            try:
                return self._settle(receipt, exc, blog)
            except LeaseLost:  # recording the failure is fenced too: the new holder decides
                return "busy", None
        finally:
            self.heartbeat.drop(receipt_id)
            self.w.store.release(receipt_id, self.owner)

    def _settle(self, receipt: Receipt, exc: Exception, blog: Any) -> tuple[str, str | None]:
        """What a receipt's error means for it: later, stopped, or (our own machinery's
        error, not the receipt's fault) retried like a vendor hiccup until it persists."""
        if isinstance(exc, RetryableError):
            return self._retry_later(receipt, exc, blog)
        if isinstance(exc, BadRecord | PermanentError):
            status = "quarantined" if isinstance(exc, BadRecord) else "failed"
            self._stop_receipt(receipt, status, f"{receipt.step}: {exc}")
            blog.error("receipt stopped", status=status, step=receipt.step, reason=str(exc))
            return status, str(exc)
        blog.exception("unexpected error, will retry", step=receipt.step)
        return self._retry_later(receipt, RetryableError(f"unexpected {type(exc).__name__}: {exc}"), blog)

    def _ledger_unusable(self, receipt: Receipt, reason: str, blog: Any) -> tuple[str, str | None]:
        """The ledger cannot be used (a refused token: a person must reconnect it). The
        CRM side does not wait for it: the document is attached there now, and the
        receipt waits for the ledger without spending its attempts."""
        self.ledger_down = reason
        if receipt.crm_attachment_id is None and receipt.document_sha256 is not None:
            try:  # out of its turn, so with a lookup first: the CRM attach is idempotent by name
                attachment = self.w.source.attach(receipt.source_id, self._document(receipt), may_exist=True)
                with self.w.store.unit() as u:
                    self._update(u, receipt.id, crm_attachment_id=attachment)
                    u.log(self.w.connection, "crm_attach", receipt_id=receipt.id, source_id=receipt.source_id,
                          crm_attachment_id=attachment, before_ledger=True)
            except (PouracquitError, OSError) as exc:
                blog.warning("CRM attach ahead of the ledger failed, it comes in its turn", error=str(exc))
        with self.w.store.unit() as u:
            self._update(u, receipt.id, last_error=f"{receipt.step}: ledger unusable: {reason}",
                         next_attempt_at=datetime.now(UTC) + timedelta(seconds=self.w.policy.backoff_max_seconds))
        blog.error("ledger unusable, receipt waits for it", step=receipt.step, reason=reason)
        return "waiting", reason

    # -- bookkeeping ------------------------------------------------------------
    def _update(self, u: Unit, receipt_id: str, **fields: Any) -> Receipt:
        """Change a receipt this worker holds. Fenced: when its lease lapsed and another
        worker took the receipt over (a stall longer than the lease), nothing is written."""
        return u.update_receipt(receipt_id, self.owner, **fields)

    def _run_step(self, receipt: Receipt, invoice: Invoice) -> Receipt:
        step = receipt.step
        nxt = STEPS[STEPS.index(step) + 1]
        if step == "number":
            return self._number(receipt, invoice, nxt)
        if step in LEDGER_STEPS and not receipt.book:
            return self._complete(receipt, step, {})  # backfilled with --no-ledger: archived and attached only
        if step in LEDGER_STEPS and self.ledger_down is not None:
            raise ConfigError(self.ledger_down)  # known unusable in this drain: no call to find it again
        may_exist = receipt.intent == step
        if step in EXTERNAL:
            self.heartbeat.check(receipt.id)  # a worker that lost its lease writes nothing more
        if step in EXTERNAL and not may_exist:
            with self.w.store.unit() as u:
                self._update(u, receipt.id, intent=step)
        return self._complete(receipt, step, self._steps[step](receipt, invoice, may_exist))

    def _complete(self, receipt: Receipt, step: str, result: dict[str, Any]) -> Receipt:
        """Record ``step`` done with its result and move to the next step, in one transaction."""
        nxt = STEPS[STEPS.index(step) + 1]
        if nxt == "email" and self.w.email is None:
            nxt = "done"  # [email] is off: the receipt ends at the CRM
        done = {"status": "done", "completed_at": datetime.now(UTC)} if nxt == "done" else {}
        with self.w.store.unit() as u:
            row = self._update(
                u, receipt.id, step=nxt, intent=None, attempts=0, next_attempt_at=None, last_error=None,
                **result, **done,
            )
            u.log(self.w.connection, step, receipt_id=receipt.id, source_id=receipt.source_id, **result)
            if nxt == "done":
                u.log(self.w.connection, "receipt_done", receipt_id=receipt.id, source_id=receipt.source_id)
        if nxt == "done":  # here, not in process(): a batch ends receipts too
            log.info("receipt done", tenant=self.w.store.tenant, connection=self.w.connection, receipt_id=receipt.id,
                     number=row.number, ledger_id=row.ledger_id)
        if step == "archive" or nxt == "done":
            # only once the archive step is committed, since a replay still needs the
            # staged copy; again at the end, in case a crash came in between
            self.w.archive.discard_staged(receipt.id)
        return row

    def _retry_later(self, receipt: Receipt, exc: RetryableError, blog: Any) -> tuple[str, str | None]:
        policy = self.w.policy
        attempts = receipt.attempts + 1
        reason = f"{receipt.step}: {exc}"
        if attempts >= policy.max_attempts:
            self._stop_receipt(receipt, "failed", f"gave up after {attempts} attempts at {reason}")
            blog.error("receipt failed", step=receipt.step, attempts=attempts, reason=str(exc))
            return "failed", reason
        delay = min(policy.backoff_seconds * 2 ** (attempts - 1), policy.backoff_max_seconds)
        delay = max(delay, exc.retry_after or 0.0)
        with self.w.store.unit() as u:
            self._update(
                u, receipt.id, attempts=attempts, last_error=reason,
                next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
            )
        blog.warning("receipt will retry", step=receipt.step, attempts=attempts, delay=delay, reason=str(exc))
        return "retrying", reason

    def _stop_receipt(self, receipt: Receipt, status: str, reason: str) -> None:
        with self.w.store.unit() as u:
            self._update(u, receipt.id, status=status, last_error=reason[:2000])
            u.log(self.w.connection, f"receipt_{status}", receipt_id=receipt.id, source_id=receipt.source_id,
                  step=receipt.step, reason=reason[:500])

    # -- steps ------------------------------------------------------------------
    def _number(self, receipt: Receipt, invoice: Invoice, nxt: str) -> Receipt:
        reference = credit_reference(self.w.store, receipt) if receipt.kind == "credit_note" else None
        cfg = self.w.numbering
        series, pattern = (cfg.series, cfg.prefix) if reference is None else (cfg.credit_series, cfg.credit_prefix)
        prefix = pattern.format(year=issue_date(receipt, invoice).year)
        crm_number = invoice.number if reference is None else ""
        if not crm_number:
            # a number of ours is spent only on a document that can be produced: the data is checked first
            self.w.renderer.check(PaidReceipt(invoice=invoice, number=f"{prefix}{0:0{cfg.width}d}",
                                              issued_on=issue_date(receipt, invoice), receipt_id=receipt.id,
                                              credits=reference))
        with self.w.store.unit() as u:
            number = crm_number or f"{prefix}{u.next_number(f'{series}:{prefix}'):0{cfg.width}d}"
            fields: dict[str, Any] = {"number": number, "step": nxt}
            if reference is not None:
                fields["credits_json"] = reference.model_dump_json()
            row = self._update(u, receipt.id, **fields)
            u.log(self.w.connection, "number", receipt_id=receipt.id, source_id=receipt.source_id,
                  number=number, allocated=number != invoice.number, document=receipt.kind)
        return row

    def _paid_receipt(self, receipt: Receipt, invoice: Invoice) -> PaidReceipt:
        assert receipt.number is not None
        reference = (CreditReference.model_validate_json(receipt.credits_json or "{}")
                     if receipt.kind == "credit_note" else None)
        return PaidReceipt(invoice=invoice, number=receipt.number, issued_on=issue_date(receipt, invoice),
                           receipt_id=receipt.id, credits=reference)

    def _render(self, receipt: Receipt, invoice: Invoice, may_exist: bool) -> dict[str, Any]:
        paid = self._paid_receipt(receipt, invoice)
        pdf = self.w.renderer.render(paid)
        staged = self.w.archive.stage(receipt.id, pdf)
        return {"staged_path": str(staged), "document_name": self.w.renderer.filename(paid)}

    def _archive(self, receipt: Receipt, invoice: Invoice, may_exist: bool) -> dict[str, Any]:
        assert receipt.staged_path is not None
        staged = Path(receipt.staged_path)
        content = staged.read_bytes()
        sha, path = self.w.archive.store(content)
        with self.w.store.unit() as u:
            self._update(u, receipt.id)  # fenced like every write of this receipt
            # relative to the archive root: the data directory can move
            u.record_document(sha, receipt.id, path.relative_to(self.w.archive.root).as_posix(), len(content))
        return {"document_sha256": sha, "staged_path": None}

    def _document(self, receipt: Receipt) -> Document:
        assert receipt.document_sha256 and receipt.document_name
        return Document(name=receipt.document_name, content=self.w.archive.read(receipt.document_sha256))

    def _email(self, receipt: Receipt, invoice: Invoice, may_exist: bool) -> dict[str, Any]:
        if self.w.email is None:
            return {}

        def record(kind: str, fields: dict[str, Any]) -> None:  # the send, committed before anything else
            with self.w.store.unit() as u:
                self._update(u, receipt.id, **{k: v for k, v in fields.items() if hasattr(receipt, k)})
                u.log(self.w.connection, kind, receipt_id=receipt.id, source_id=receipt.source_id, **fields)
        return self.w.email.run(receipt, invoice, lambda: self._document(receipt), record)

    def _ledger_record(self, receipt: Receipt, invoice: Invoice, may_exist: bool) -> dict[str, Any]:
        assert receipt.number is not None
        reference = None
        if receipt.kind == "credit_note":
            original = original_of(self.w.store, receipt)
            if original.ledger_id is None:
                raise RetryableError(f"waiting for receipt {original.id}, which this credit note credits, "
                                     "to be booked")
            stated = CreditReference.model_validate_json(receipt.credits_json or "{}")
            reference = stated.model_copy(update={"ledger_id": original.ledger_id})
        order = ReceiptOrder(key=idempotency_key(receipt.id), number=receipt.number, invoice=invoice,
                             credits=reference)
        return {"ledger_id": self.w.ledger.record_receipt(order, may_exist=may_exist)}

    def _ledger_attach(self, receipt: Receipt, invoice: Invoice, may_exist: bool) -> dict[str, Any]:
        assert receipt.ledger_id is not None
        doc = self._document(receipt)
        return {"ledger_attachment_id": self.w.ledger.attach(receipt.ledger_id, doc, may_exist=may_exist)}

    def _crm_attach(self, receipt: Receipt, invoice: Invoice, may_exist: bool) -> dict[str, Any]:
        if receipt.crm_attachment_id is not None:  # attached while the ledger was unusable
            return {"crm_attachment_id": receipt.crm_attachment_id}
        if isinstance(self.w.source, BatchAttach):
            return {"crm_attachment_id": attach_one(self, receipt, invoice, self.w.source, may_exist)}
        doc = self._document(receipt)
        return {"crm_attachment_id": self.w.source.attach(receipt.source_id, doc, may_exist=may_exist)}
