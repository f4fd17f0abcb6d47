"""Read-only views of the state store the reports work from.

Plain SELECTs over the state tables with the store's engine: the reports
write nothing, so they take no Unit (no transaction to commit, no lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from sqlmodel import col, select

from pouracquit.common.errors import BadRecord, ConfigError, PouracquitError
from pouracquit.common.model import Invoice
from pouracquit.connectors.base import CrmSource
from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt, Snapshot

from ..credit import PARIS
from .payments import InvoiceFacts


@dataclass(frozen=True)
class Issued:
    """One receipt or credit note and the invoice it printed."""

    receipt: Receipt
    invoice: Invoice


def snapshots(store: Store, connection: str) -> dict[str, Snapshot]:
    """Every CRM invoice the connection has seen, by source id."""
    with store.session() as session:
        rows = session.exec(select(Snapshot).where(Snapshot.connection == connection))
        return {row.source_id: row for row in rows}


def issued(store: Store, connection: str) -> Iterator[Issued]:
    """Every receipt and credit note of ``connection``, oldest version first."""
    with store.session() as session:
        query = (select(Receipt).where(Receipt.connection == connection)
                 .order_by(col(Receipt.source_id), col(Receipt.kind), col(Receipt.payment_version)))
        rows = list(session.exec(query))
    for row in rows:
        yield Issued(row, Invoice.model_validate_json(row.invoice_json))


def credited(receipts: list[Issued]) -> dict[str, Decimal]:
    """Per receipt id, the total of the credit notes issued against it (VAT included)."""
    out: dict[str, Decimal] = {}
    for item in receipts:
        if item.receipt.kind == "credit_note" and item.receipt.original_receipt_id:
            key = item.receipt.original_receipt_id
            out[key] = out.get(key, Decimal("0")) + item.receipt.amount
    return out


def facts_of(invoice: Invoice, status: str | None = None, paid: Decimal | None = None) -> InvoiceFacts:
    """``invoice`` as the payments report sees it; ``status`` and ``paid`` as the CRM has them now."""
    return InvoiceFacts(
        source_id=invoice.source_id, customer=invoice.customer.name, currency=invoice.currency,
        issue_date=invoice.issue_date, due_date=invoice.due_date, gross=invoice.gross_total.amount,
        paid=invoice.amount_paid.amount if paid is None else paid, status=status or invoice.status.value,
        payments=tuple((p.paid_at.astimezone(PARIS).date(), p.amount.amount) for p in invoice.payments),
    )


def invoice_facts(store: Store, source: CrmSource, connection: str) -> tuple[list[InvoiceFacts], list[tuple[str, str]]]:
    """Every invoice the connection has seen: a paid one as its latest receipt printed it
    (status and paid amount as the last sync saw them), the others (open, or paid before
    the start date) read from the CRM one by one, as the store keeps no customer or due
    date for them. An invoice the CRM will not give is listed with the reason instead."""
    seen = snapshots(store, connection)
    printed: dict[str, Invoice] = {}
    for item in issued(store, connection):
        if item.receipt.kind == "receipt":
            printed[item.receipt.source_id] = item.invoice
    out: list[InvoiceFacts] = []
    unread: list[tuple[str, str]] = []
    down = ""  # once the CRM itself fails (not one record), the rest is not asked for
    for sid, snap in sorted(seen.items()):
        if snap.status in ("draft", "void"):
            continue
        if sid in printed:
            out.append(facts_of(printed[sid], snap.status, snap.amount_paid))
            continue
        if down:
            unread.append((sid, down))
            continue
        try:
            out.append(facts_of(source.get(sid)))
        except ConfigError:
            raise
        except BadRecord as exc:
            unread.append((sid, f"{type(exc).__name__}: {exc}"))
        except PouracquitError as exc:
            down = f"not read, the CRM failed: {type(exc).__name__}: {exc}"
            unread.append((sid, down))
    return out, unread
