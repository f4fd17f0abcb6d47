"""`pouracquit report payments` and `pouracquit report reconcile`.

Parameters are checked before anything is opened: a bad date, a period that ends
before it starts, an unknown format or connection is one line on stderr and exit 2.
``reconcile`` exits 1 when anything drifts (or a ledger could not be read), 0 when
every connection is in step.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TypeVar

import structlog
from sqlalchemy.exc import SQLAlchemyError

from pouracquit.core.config import Settings
from pouracquit.core.credit import PARIS
from pouracquit.core.insight.facts import invoice_facts
from pouracquit.core.insight.payments import InvoiceFacts, PaymentsReport, Period, analyse
from pouracquit.core.insight.reconcile import Reconciliation, reconcile_and_record, reconcile_connection, record
from pouracquit.core.insight.render import FORMATS, Format, render_payments, render_reconcile
from pouracquit.core.service import Service
from pouracquit.core.survey import survey_scores
from pouracquit.core.sync import store_problem

PROG = "pouracquit"
T = TypeVar("T")
# When `pouracquit run` reconciles, Europe/Paris: before the working day, so that the drift is on
# /metrics and in the log when people arrive, and after the night's syncs.
RECONCILE_HOUR, RECONCILE_MINUTE = 5, 30


class BadParameter(ValueError):
    """A report parameter the user can fix (exit 2)."""


@dataclass(frozen=True)
class ReportRequest:
    start: date | None
    end: date
    connections: list[str]
    fmt: Format


def _day(option: str, text: str | None) -> date | None:
    if text is None or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadParameter(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def check_request(settings: Settings, *, start: str | None, end: str | None, connection: str | None,
                  fmt: str) -> ReportRequest:
    """The validated parameters; BadParameter names the one to fix."""
    if fmt not in FORMATS:
        raise BadParameter(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    first, last = _day("--from", start), _day("--to", end) or datetime.now(PARIS).date()
    if first is not None and first > last:
        raise BadParameter(f"--from {first} is after --to {last}")
    if connection is not None:
        names = [c.name for c in settings.connections]
        if connection not in names:
            raise BadParameter(f"--connection {connection!r} names no connection; configured: {', '.join(names)}")
        connections = [connection]
    else:
        connections = [c.name for c in settings.connections if c.enabled]
    return ReportRequest(first, last, connections, fmt)  # type: ignore[arg-type]


def payments_report(service: Service, request: ReportRequest) -> PaymentsReport:
    """The payments report over the requested connections (customers of all of them together),
    with each customer's satisfaction answers in the period."""
    facts: list[InvoiceFacts] = []
    unread: list[tuple[str, str]] = []
    for name in request.connections:
        source = service.wiring(service.settings.connection(name)).source
        found, missing = invoice_facts(service.store, source, name)
        facts += found
        unread += [(f"{name}/{sid}", why) for sid, why in missing]
    since = datetime.combine(request.start, time(0), PARIS) if request.start else None
    only = request.connections[0] if len(request.connections) == 1 else None
    survey = {s.customer: (s.answers, s.average) for s in survey_scores(service.store, only, since)}
    report = analyse(facts, Period(request.start, request.end), survey)
    report.unread = unread
    return report


def reconcile_all(service: Service, request: ReportRequest) -> list[Reconciliation]:
    """Reconcile each requested connection (nothing written: a page may ask often)."""
    return [reconcile_connection(service, name, request.start) for name in request.connections]


def _checked(command: str, settings: Settings, **params: str | None) -> ReportRequest | None:
    """The request, or None once the bad parameter is said on one line of stderr."""
    try:
        return check_request(settings, start=params.get("start"), end=params.get("end"),
                             connection=params.get("connection"), fmt=params.get("fmt") or "table")
    except BadParameter as exc:
        sys.stderr.write(f"{PROG}: report {command}: {exc}\n")
        return None


def _with_service(command: str, settings: Settings, work: Callable[[Service], T]) -> T | None:
    """``work`` on an open service; None once a state store failure (locked, gone, full) is said
    on one line of stderr."""
    try:
        service = Service.open(settings)
        try:
            return work(service)
        finally:
            service.close()
    except SQLAlchemyError as exc:
        sys.stderr.write(f"{PROG}: report {command}: {store_problem(exc)}\n")
        return None


def payments_command(settings: Settings, *, start: str | None = None, end: str | None = None,
                     connection: str | None = None, fmt: str = "table") -> int:
    """Print the payments report; an invoice the CRM would not give is listed, not fatal."""
    request = _checked("payments", settings, start=start, end=end, connection=connection, fmt=fmt)
    if request is None:
        return 2
    report = _with_service("payments", settings, lambda service: payments_report(service, request))
    if report is None:
        return 1
    sys.stdout.write(render_payments(report, request.fmt).rstrip("\n") + "\n")
    return 0


def _reconcile_and_record(service: Service, request: ReportRequest) -> list[Reconciliation]:
    results = reconcile_all(service, request)
    for result in results:  # the audit trail keeps what a person checked, and /metrics reports it
        record(service, result)
    return results


def reconcile_command(settings: Settings, *, start: str | None = None, connection: str | None = None,
                      fmt: str = "table") -> int:
    """Exit 1 when anything drifts or a connection could not be reconciled, 0 when all are in step."""
    request = _checked("reconcile", settings, start=start, connection=connection, fmt=fmt)
    if request is None:
        return 2
    results = _with_service("reconcile", settings, lambda service: _reconcile_and_record(service, request))
    if results is None:
        return 1
    sys.stdout.write(render_reconcile(results, request.fmt).rstrip("\n") + "\n")
    return 1 if any(r.error or r.drifts for r in results) else 0


def daily_reconcile(service: Service, name: str, lock: threading.Lock) -> Callable[[], None]:
    """The job `pouracquit run` schedules at RECONCILE_HOUR:RECONCILE_MINUTE, Europe/Paris: under the
    connection's lock, so that no receipt is caught half-way between the ledger and the CRM."""
    log = structlog.get_logger("pouracquit.reconcile")

    def job() -> None:
        if service.stop.is_set():
            return
        with lock:
            try:
                result = reconcile_and_record(service, name)
            except Exception:  # logged with its traceback; tomorrow's run tries again
                log.exception("reconcile job crashed", connection=name)
                return
        log.info("reconciled", connection=name, drifts=len(result.drifts), error=result.error or None)

    return job
