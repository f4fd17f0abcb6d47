"""One pass over one connection: read changes, record them, drain the outbox."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import structlog
from sqlalchemy.exc import SQLAlchemyError

from pouracquit.common.errors import BadRecord, ConfigError, PouracquitError
from pouracquit.connectors.base import Page

from .dry_run import DryUnit
from .intake import PARIS, IntakePolicy, IntakeReport, IntakeUnit, PlannedReceipt, take_page
from .pipeline import Pipeline
from .service import Service

log = structlog.get_logger("pouracquit.sync")


@dataclass
class SyncResult:
    connection: str
    dry_run: bool = False
    seen: int = 0
    events: Counter[str] = field(default_factory=Counter)
    planned: list[PlannedReceipt] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    notices: list[tuple[str, str]] = field(default_factory=list)
    before_start: int = 0
    start_date: date | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing needs a person: no error, no failed or quarantined receipt, no rejected record."""
        return (self.error is None and not self.outcomes["failed"] and not self.outcomes["quarantined"]
                and not self.rejected)


@dataclass
class Progress:
    """Hooks a terminal front-end plugs a progress bar into."""

    on_page: Callable[[int], None] = lambda seen: None
    on_receipts: Callable[[int], None] = lambda total: None
    on_receipt: Callable[[str], None] = lambda outcome: None


def intake_policy(service: Service, name: str, *, dry_run: bool = False) -> IntakePolicy:
    """How ``name`` takes invoices in; its start date is the config's, else the
    day of its first sync (kept, unless this is a dry run)."""
    conn = service.settings.connection(name)
    start = conn.start_date
    if start is None:
        state = service.store.connection_states().get(name)
        start = state.start_date if state is not None and state.start_date else datetime.now(PARIS).date()
        if (state is None or state.start_date is None) and not dry_run:
            with service.store.unit() as u:
                u.connection_state(name).start_date = start
    return IntakePolicy(refunds=conn.refunds, language=service.settings.document.language, start_date=start)


def store_problem(exc: SQLAlchemyError) -> str:
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    return f"state store error: {reason}"


def record_run(service: Service, name: str, started: datetime, duration: float, error: str | None) -> None:
    """A pass that ended, with its error; also for one that crashed out of sync_connection (the daemon records it)."""
    with service.store.unit() as u:
        state = u.connection_state(name)
        state.last_run_at = started
        state.last_duration_s = duration
        state.runs += 1
        state.last_error = error
        if error is None:
            state.last_success_at = started


def sync_connection(
    service: Service, name: str, *, dry_run: bool = False, progress: Progress | None = None, drain: bool = True
) -> SyncResult:
    """Read the connection's changes since its cursor, queue the receipts they
    call for, then work the outbox (unless ``drain`` is False: a fleet's workers
    take its receipts as their own tasks). A dry run reads the CRM and writes nothing."""
    progress = progress or Progress()
    conn = service.settings.connection(name)
    wiring = service.wiring(conn)
    result = SyncResult(connection=name, dry_run=dry_run)
    blog = log.bind(tenant=service.tenant, connection=name, dry_run=dry_run)
    started, clock = datetime.now(UTC), time.monotonic()
    state = service.store.connection_states().get(name)
    intake = IntakeReport()
    policy = intake_policy(service, name, dry_run=dry_run)
    dry = DryUnit(service.store)
    # one intake for both: the dry run's unit keeps its writes in memory, a sync's commits each page
    units: Callable[[], AbstractContextManager[IntakeUnit]] = (
        (lambda: nullcontext(dry)) if dry_run else service.store.unit)
    try:
        for page in wiring.source.changes(state.cursor if state else None):
            with units() as u:
                take_page(u, name, page, intake, policy=policy)
            progress.on_page(intake.seen)
        if not dry_run and drain:
            pipeline = Pipeline(wiring, service.owner, service.stop)
            progress.on_receipts(len(service.store.due(name, datetime.now(UTC))))
            drained = pipeline.drain(progress.on_receipt)
            result.outcomes, result.errors = drained.outcomes, drained.errors
            if drained.ledger_down:  # the CRM side went on; a person must fix the ledger side
                result.error = f"ledger unusable, its receipts wait: {drained.ledger_down}"
    except ConfigError:
        raise
    except PouracquitError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        blog.error("sync failed", error=result.error)
    except SQLAlchemyError as exc:
        # a full disk, a locked or vanished database: said plainly, and the next run picks up from the cursor
        result.error = store_problem(exc)
        blog.error("sync failed", error=result.error)
    result.seen, result.events, result.planned, result.rejected, result.notices = (
        intake.seen, intake.events, intake.planned, intake.rejected, intake.notices,
    )
    result.before_start, result.start_date = intake.before_start, policy.start_date
    result.duration = time.monotonic() - clock
    if not dry_run:
        try:
            record_run(service, name, started, result.duration, result.error)
        except SQLAlchemyError as exc:
            result.error = result.error or store_problem(exc)
    blog.info("sync finished", seen=result.seen, receipts=len(result.planned), rejected=len(result.rejected),
              outcomes=dict(result.outcomes), duration=round(result.duration, 3))
    return result


def sync_refs(service: Service, name: str, refs: list[str]) -> SyncResult:
    """A targeted pass over the CRM records ``refs`` (a webhook named them):
    the same intake and pipeline as a full sync, the cursor left alone."""
    conn = service.settings.connection(name)
    wiring = service.wiring(conn)
    result = SyncResult(connection=name)
    clock = time.monotonic()
    invoices, rejected = [], []
    try:
        for ref in refs:
            # each id on its own: one the CRM no longer knows must not hold up the others
            try:
                invoices.append(wiring.source.get(ref))
            except BadRecord as exc:
                rejected.append((ref, str(exc)))
            except PouracquitError as exc:
                log.warning("webhook record not read, polling will", connection=name, ref=ref,
                            error=f"{type(exc).__name__}: {exc}")
        intake = IntakeReport()
        with service.store.unit() as u:
            take_page(u, name, Page(invoices=invoices, cursor=None, rejected=rejected), intake,
                      policy=intake_policy(service, name))
        drained = Pipeline(wiring, service.owner, service.stop).drain()
        result.seen, result.events, result.planned, result.rejected, result.notices = (
            intake.seen, intake.events, intake.planned, intake.rejected, intake.notices,
        )
        result.outcomes, result.errors = drained.outcomes, drained.errors
    except ConfigError:
        raise
    except PouracquitError as exc:
        # polling is the safety net: the next scheduled sync picks these records up
        result.error = f"{type(exc).__name__}: {exc}"
        log.warning("targeted sync failed", connection=name, refs=len(refs), error=result.error)
    result.duration = time.monotonic() - clock
    log.info("targeted sync finished", connection=name, refs=len(refs), receipts=len(result.planned),
             outcomes=dict(result.outcomes), duration=round(result.duration, 3))
    return result
