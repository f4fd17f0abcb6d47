"""Backfill: documents for invoices paid before a connection's start date.

A first sync books nothing paid before the start date (a company's history
is usually already in its books). On demand, ``pouracquit backfill`` makes
the facture acquittée of those older invoices through the same outbox and
pipeline, so the same exactly-once rules hold: a receipt is version 1 of its
invoice, unique in the store, and an invoice that has one is left alone.
"""

from __future__ import annotations

import time
from datetime import date, datetime

import structlog

from pouracquit.common.rates import with_exchange_rate
from pouracquit.connectors.base import Page
from pouracquit.core.intake import PARIS, IntakeReport, PlannedReceipt, new_receipt, one_record, paid_on, snapshot_of
from pouracquit.core.limits import check_limits
from pouracquit.core.pipeline import Pipeline
from pouracquit.core.service import Service
from pouracquit.core.sync import Progress, SyncResult, intake_policy
from pouracquit.state.store import Unit

log = structlog.get_logger("pouracquit.backfill")


def backfill(service: Service, name: str, since: date, *, book: bool = True,
             progress: Progress | None = None) -> SyncResult:
    """Queue and work the receipts of invoices of ``name`` paid from ``since``
    up to its start date; with ``book`` False they are archived and attached
    to the CRM but not booked in the ledger."""
    progress = progress or Progress()
    wiring = service.wiring(service.settings.connection(name))
    until = intake_policy(service, name).start_date
    result = SyncResult(connection=name, start_date=until)
    clock = time.monotonic()
    report = IntakeReport()
    for page in wiring.source.changes(None):
        with service.store.unit() as u:
            queue_backfill(u, name, page, since, until, book=book, report=report)
        progress.on_page(report.seen)
    drained = Pipeline(wiring, service.owner, service.stop).drain(progress.on_receipt)
    result.seen, result.planned, result.rejected = report.seen, report.planned, report.rejected
    result.outcomes, result.errors = drained.outcomes, drained.errors
    result.duration = time.monotonic() - clock
    log.info("backfill finished", connection=name, since=since, until=until, receipts=len(report.planned),
             outcomes=dict(result.outcomes))
    return result


def queue_backfill(u: Unit, name: str, page: Page, since: date, until: date | None, *, book: bool,
                   report: IntakeReport) -> None:
    """Queue version 1 of the receipt of each invoice of ``page`` paid in full
    from ``since`` to before ``until`` that has none yet."""
    for invoice in page.invoices:
        report.seen += 1
        if not invoice.fully_paid or until is None or not since <= paid_on(invoice) < until:
            continue
        with one_record(u, name, invoice.source_id, report):
            check_limits(invoice, datetime.now(PARIS).date())
            stored = u.snapshot(name, invoice.source_id)
            if stored is not None and stored.paid_version > 0:
                continue  # it has its receipt already
            receipt = new_receipt(name, with_exchange_rate(invoice), 1)
            receipt.book = book
            u.save(receipt)
            u.log(name, "backfilled", receipt_id=receipt.id, source_id=invoice.source_id,
                  paid_on=paid_on(invoice), booked=book)
            if stored is None:
                u.save(snapshot_of(name, invoice, 1))
            else:
                stored.paid_version = 1
                u.save(stored)
            report.planned.append(PlannedReceipt(invoice.source_id, invoice.number or "(allocated)",
                                                 invoice.customer.name, str(invoice.gross_total)))
