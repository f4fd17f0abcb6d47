"""Who is chased today, and with which step.

Candidates come from the state store's snapshots (every invoice a sync saw, paid
or not): open, with money still owed. Their due dates are read from the CRM
once, then again only after a sync saw the record change; a record whose step
falls due today is read fresh, so a payment, a void or a dispute entered in
the CRM stops its reminders the moment it is there, even between two syncs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import structlog
from sqlmodel import col, select

from pouracquit.common.errors import BadRecord, PouracquitError, one_line
from pouracquit.common.model import Invoice, InvoiceStatus
from pouracquit.connectors.base import CrmSource
from pouracquit.core.credit import PARIS
from pouracquit.core.delivery.step import buyer_address
from pouracquit.state.store import Store
from pouracquit.state.tables import DunningCase, DunningReminder, Snapshot
from pouracquit.state.types import utcnow

from .ladder import Due, step_due
from .settings import DunningSettings, Step

log = structlog.get_logger("pouracquit.dunning")

# Where the sources' mappings put the "disputed" CRM property (mapping key invoice.disputed), beside
# the properties kept under their vendor names: the ":" keeps it apart from those (API names made of
# letters, digits and underscores, as far as we know: docs/vendors.md, Unverified).
DISPUTED = "pouracquit:disputed"
_NOT_DISPUTED = frozenset({"", "false", "0", "no", "non", "off", "none", "null"})
# a step written and not to be sent again by a later run; "retry" steps are tried again
WRITTEN = ("sending", "sent", "failed", "unknown")


@dataclass(frozen=True)
class Chase:
    """One invoice to chase today (``reason`` empty), or why it is not chased after all."""

    connection: str
    source_id: str
    due: Due
    number: str = ""
    customer: str = ""
    recipient: str = ""
    amount_due: Decimal = Decimal("0")
    currency: str = ""
    due_date: date | None = None
    reason: str = ""
    invoice: Invoice | None = field(default=None, compare=False, repr=False)


def disputed(invoice: Invoice) -> bool:
    """The CRM's dispute property says this invoice is contested (anything but a false value)."""
    return invoice.properties.get(DISPUTED, "").strip().lower() not in _NOT_DISPUTED


def stop_reason(invoice: Invoice) -> str:
    """Why ``invoice`` must not be chased any more, or ""."""
    if invoice.status is not InvoiceStatus.OPEN:
        return f"invoice is {invoice.status.value} in the CRM"
    if invoice.balance_due.amount <= 0:
        return "nothing left to pay"
    if disputed(invoice):
        return "invoice is disputed in the CRM (mapping key invoice.disputed)"
    if invoice.due_date is None:
        return "invoice has no due date in the CRM (mapping key invoice.due_date)"
    return ""


def open_snapshots(store: Store, connection: str) -> list[Snapshot]:
    """Invoices the last sync saw open with money still owed."""
    with store.session() as session:
        query = (select(Snapshot)
                 .where(Snapshot.connection == connection, Snapshot.status == InvoiceStatus.OPEN.value)
                 .where(col(Snapshot.amount_paid) < col(Snapshot.gross_total))
                 .order_by(col(Snapshot.source_id)))
        return list(session.exec(query))


def steps_written(store: Store, connection: str) -> dict[str, dict[int, date]]:
    """Per invoice, the ladder steps already written (sent, being sent, failed...) and the
    day (in France) each was first attempted."""
    with store.session() as session:
        rows = session.exec(select(DunningReminder.source_id, DunningReminder.step, DunningReminder.created_at)
                            .where(DunningReminder.connection == connection,
                                   col(DunningReminder.status).in_(WRITTEN)))
        written: dict[str, dict[int, date]] = {}
        for source_id, step, created_at in rows:
            written.setdefault(source_id, {})[step] = created_at.astimezone(PARIS).date()
        return written


def _cases(store: Store, connection: str) -> dict[str, DunningCase]:
    with store.session() as session:
        return {c.source_id: c for c in session.exec(select(DunningCase).where(DunningCase.connection == connection))}


def _remember(store: Store, connection: str, fresh: dict[str, date | None], now: datetime) -> None:
    with store.unit() as u:
        for source_id, due_date in fresh.items():
            row = u.get(DunningCase, connection, source_id)
            if row is None:
                u.session.add(DunningCase(connection=connection, source_id=source_id, due_date=due_date,
                                          checked_at=now))
            else:
                row.due_date, row.checked_at = due_date, now
                u.session.add(row)


def plan(store: Store, source: CrmSource, connection: str, settings: DunningSettings, today: date, *,
         dry_run: bool = False) -> list[Chase]:
    """Today's reminders of ``connection``, and the invoices a step fell due for but that
    cannot be chased (no address, disputed...), each with its reason. A dry run writes nothing."""
    now = utcnow()
    cases, written = _cases(store, connection), steps_written(store, connection)
    fresh: dict[str, date | None] = {}
    out: list[Chase] = []
    for snap in open_snapshots(store, connection):
        sid = snap.source_id
        case = cases.get(sid)
        invoice: Invoice | None = None
        try:
            if case is None or snap.seen_at > case.checked_at:
                invoice = source.get(sid)
                due_date = fresh[sid] = invoice.due_date
            else:
                due_date = case.due_date
            if due_date is None:
                continue
            due = step_due(due_date, today, settings.steps, written.get(sid, {}))
            if due is None:
                continue
            if invoice is None:  # read fresh: it may have been paid since the last sync
                invoice = source.get(sid)
                fresh[sid] = invoice.due_date
        except (BadRecord, PouracquitError) as exc:
            log.warning("invoice not read for dunning", connection=connection, source_id=sid, error=one_line(str(exc)))
            out.append(Chase(connection, sid, Due(-1, "", 0), reason=f"not read from the CRM: {one_line(str(exc))}"))
            continue
        if (chase := _chase(connection, invoice, today, settings.steps, written.get(sid, {}))) is not None:
            out.append(chase)
    if fresh and not dry_run:
        _remember(store, connection, fresh, now)
    return out


def _chase(connection: str, invoice: Invoice, today: date, steps: Sequence[Step],
           written: dict[int, date]) -> Chase | None:
    """The chase of one freshly read invoice: its step today, or the reason it is not chased;
    None when no step is due after all (the due date moved in the CRM)."""
    reason = stop_reason(invoice)
    due = step_due(invoice.due_date, today, steps, written) if invoice.due_date else None
    if due is None and not reason:
        return None
    if not reason and not invoice.customer.email.strip():
        reason = "customer has no e-mail address in the CRM: fill the contact's (or company's) e-mail (customer.email)"
    recipient, why = buyer_address(invoice) if not reason else (None, reason)
    return Chase(connection, invoice.source_id, due or Due(-1, "", 0), number=invoice.number or invoice.source_id,
                 customer=invoice.customer.name, recipient=recipient or "", amount_due=invoice.balance_due.amount,
                 currency=invoice.currency, due_date=invoice.due_date, reason=why, invoice=invoice)
