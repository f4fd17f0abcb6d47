"""Repository functions over the state tables. The core talks to the store
only through ``Store`` and the short-lived ``Unit`` it opens: one Unit is
one transaction, committed whole or not at all."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, or_, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from pouracquit.common.errors import LeaseLost

from .chain import GENESIS, entry_hash
from .email_queries import EmailQueries
from .tables import (
    DEFAULT_TENANT,
    ConnectionState,
    Document,
    Event,
    NumberSeries,
    Quarantine,
    Receipt,
    Snapshot,
    Tenanted,
    TenantOwned,
    WebhookSeen,
)
from .tenancy import check_tenant_name, tenant_of
from .types import utcnow


def _receipt_query(connection: str, source_id: str, version: int, kind: str) -> Any:
    return select(Receipt).where(
        Receipt.connection == connection, Receipt.source_id == source_id, Receipt.kind == kind,
        Receipt.payment_version == version,
    )


def _keyed_by_tenant(model: type[Any]) -> bool:
    # state/tables.py: a Tenanted table leads its key with the tenant, a TenantOwned one only indexes it
    return issubclass(model, Tenanted) and not issubclass(model, TenantOwned)


class Unit:
    """One transaction's worth of state changes."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.tenant = tenant_of(session)

    def get(self, model: type[Any], *key: Any, **options: Any) -> Any:
        """One row of this unit's tenant by the rest of its key (``tenant`` leads every composite key)."""
        ident = (self.tenant, *key) if _keyed_by_tenant(model) else (key[0] if len(key) == 1 else key)
        return self.session.get(model, ident, **options)

    # -- intake -----------------------------------------------------------------
    def snapshot(self, connection: str, source_id: str) -> Snapshot | None:
        return self.get(Snapshot, connection, source_id)

    def save(self, row: Snapshot | Receipt | ConnectionState | Quarantine) -> None:
        self.session.add(row)

    def put_snapshot(self, fresh: Snapshot) -> None:
        """What a sync saw of one record, replacing what the last one saw."""
        stored = self.snapshot(fresh.connection, fresh.source_id)
        if stored is None:
            self.session.add(fresh)
            return
        for name in ("status", "amount_paid", "gross_total", "currency", "fingerprint", "paid_version",
                     "credit_version", "credited", "modified_at", "seen_at"):
            setattr(stored, name, getattr(fresh, name))

    def set_cursor(self, connection: str, cursor: str) -> None:
        self.connection_state(connection).cursor = cursor

    def receipt_of(self, connection: str, source_id: str, version: int, kind: str = "receipt") -> Receipt | None:
        """The receipt (or credit note) ``version`` of one CRM invoice."""
        return self.session.exec(_receipt_query(connection, source_id, version, kind)).first()

    def receipt_exists(self, connection: str, source_id: str, version: int, kind: str = "receipt") -> bool:
        return self.receipt_of(connection, source_id, version, kind) is not None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """One record's writes: undone alone when taking that record in fails."""
        with self.session.begin_nested():
            yield

    def connection_state(self, name: str) -> ConnectionState:
        row = self.get(ConnectionState, name)
        if row is None:
            row = ConnectionState(name=name)
            self.session.add(row)
        return row

    def quarantine(self, connection: str, source_id: str, reason: str) -> None:
        row = self.get(Quarantine, connection, source_id)
        if row is None:
            self.session.add(Quarantine(connection=connection, source_id=source_id, reason=reason))
        else:
            row.reason, row.last_seen = reason, utcnow()

    def release(self, connection: str, source_id: str) -> None:
        row = self.get(Quarantine, connection, source_id)
        if row is not None:
            self.session.delete(row)

    # -- outbox -----------------------------------------------------------------
    def update_receipt(self, receipt_id: str, holder: str | None, **fields: Any) -> Receipt:
        """Change one receipt, row-locked. With ``holder`` the write is fenced: when that
        worker's lease lapsed and another took the receipt over, LeaseLost and nothing
        is written. ``holder`` None is a person's order (``receipts retry``)."""
        row = self.session.get(Receipt, receipt_id, with_for_update=True)
        if row is None:
            raise LookupError(f"no receipt {receipt_id}")
        if holder is not None and row.lease_owner != holder:
            raise LeaseLost(f"lease on receipt {receipt_id} was lost to {row.lease_owner or 'nobody'}")
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        self.session.add(row)
        return row

    def requeue(self, receipt_id: str, **audit: Any) -> Receipt:
        """A person's retry order: the receipt is due now with fresh attempts, and the
        order is written to the audit trail (``audit`` says by whom, when not the CLI)."""
        row = self.update_receipt(receipt_id, None, status="pending", attempts=0, next_attempt_at=utcnow())
        self.log(row.connection, "retry_requested", receipt_id=row.id, source_id=row.source_id, step=row.step,
                 **audit)
        return row

    def record_document(self, sha256: str, receipt_id: str, path: str, size: int) -> None:
        """An archived file, by content: a second receipt with the same bytes shares it."""
        if self.get(Document, sha256) is None:
            self.session.add(Document(sha256=sha256, receipt_id=receipt_id, path=path, size=size))

    # -- audit trail ------------------------------------------------------------
    def log(
        self,
        connection: str,
        kind: str,
        *,
        receipt_id: str | None = None,
        source_id: str | None = None,
        **data: Any,
    ) -> Event:
        """Append one entry to the hash-chained event log."""
        if self.session.get_bind().dialect.name == "postgresql":
            # one writer at a time extends the chain; the unique prev_hash
            # would reject a fork anyway, this just avoids the retry
            self.session.exec(text("SELECT pg_advisory_xact_lock(7201, hashtext(:t))").bindparams(  # type: ignore[call-overload]
                t=self.tenant))
        last = self.session.exec(select(Event).order_by(col(Event.seq).desc()).limit(1)).first()
        prev = last.hash if last else GENESIS
        event = Event(
            # numbered here, under the chain's lock, not by a database sequence: a PostgreSQL sequence
            # is not transactional, so a rolled-back entry would leave a gap that reads as a removal
            seq=(last.seq or 0) + 1 if last else 1,
            tenant=self.tenant,
            connection=connection,
            receipt_id=receipt_id,
            source_id=source_id,
            kind=kind,
            data=json.dumps(data, default=str, ensure_ascii=False, sort_keys=True),
            prev_hash=prev,
            hash="",
        )
        event.hash = entry_hash(prev, event)
        self.session.add(event)
        self.session.flush()
        return event

    # -- numbering --------------------------------------------------------------
    def next_number(self, series: str) -> int:
        """The next number of ``series``; commits with the unit or not at all,
        so a number is never handed out twice nor skipped."""
        query = select(NumberSeries).where(NumberSeries.series == series).with_for_update()
        row = self.session.exec(query).first()
        if row is None:
            try:
                with self.session.begin_nested():
                    self.session.add(NumberSeries(series=series, last=0))
            except IntegrityError:
                pass  # another worker made the series first: its row, locked below, is the one
            row = self.session.exec(query).one()
        row.last += 1
        self.session.flush()
        return row.last


class Store(EmailQueries):
    """The state store behind one SQLAlchemy engine."""

    def __init__(self, engine: Engine, tenant: str = DEFAULT_TENANT) -> None:
        self.engine = engine
        self.tenant = check_tenant_name(tenant)

    def for_tenant(self, tenant: str) -> Store:
        """The store of another tenant, on the same engine."""
        return Store(self.engine, tenant)

    def session(self, **options: Any) -> Session:
        """A session that sees and writes only this tenant's rows (state/tenancy.py)."""
        return Session(self.engine, info={"tenant": self.tenant}, **options)

    @contextmanager
    def unit(self) -> Iterator[Unit]:
        with self.session(expire_on_commit=False) as session:
            yield Unit(session)
            session.commit()

    def ping(self) -> None:
        with self.session() as session:
            session.exec(select(func.count()).select_from(ConnectionState))  # type: ignore[call-overload]

    # -- pipeline ---------------------------------------------------------------
    def due(self, connection: str, now: datetime, limit: int = 500, skip: frozenset[str] = frozenset()) -> list[str]:
        """Receipts of ``connection`` waiting for work, oldest first, but those in ``skip``."""
        with self.session() as session:
            query = (
                select(Receipt.id)
                .where(Receipt.connection == connection, Receipt.status == "pending")
                .where(col(Receipt.id).not_in(skip))
                .where(or_(col(Receipt.next_attempt_at).is_(None), col(Receipt.next_attempt_at) <= now))
                .order_by(col(Receipt.created_at), col(Receipt.id))
                .limit(limit)
            )
            return list(session.exec(query))

    def claim(self, receipt_id: str, owner: str, until: datetime) -> Receipt | None:
        """Lease one receipt for ``owner``; None when another worker holds it
        or it is not due (finished, or waiting for its next attempt)."""
        now = utcnow()
        with self.unit() as u:
            result = u.session.exec(  # type: ignore[call-overload]
                update(Receipt)
                .where(col(Receipt.id) == receipt_id, col(Receipt.status) == "pending")
                .where(or_(col(Receipt.next_attempt_at).is_(None), col(Receipt.next_attempt_at) <= now))
                .where(
                    or_(
                        col(Receipt.lease_until).is_(None),
                        col(Receipt.lease_until) < now,
                        col(Receipt.lease_owner) == owner,
                    )
                )
                .values(lease_owner=owner, lease_until=until)
            )
            if result.rowcount != 1:
                return None
            return u.session.get(Receipt, receipt_id)

    def renew(self, receipt_id: str, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease; False when the lease is no longer its own
        (it expired and another worker took the receipt)."""
        with self.unit() as u:
            result = u.session.exec(  # type: ignore[call-overload]
                update(Receipt)
                .where(col(Receipt.id) == receipt_id, col(Receipt.lease_owner) == owner)
                .values(lease_until=until)
            )
            return bool(result.rowcount == 1)

    def stale_leases(self, now: datetime) -> list[Receipt]:
        """Pending receipts still held by a worker that stopped renewing its lease."""
        with self.session() as session:
            query = select(Receipt).where(
                Receipt.status == "pending", col(Receipt.lease_owner).is_not(None), col(Receipt.lease_until) < now
            )
            return list(session.exec(query))

    def release(self, receipt_id: str, owner: str) -> None:
        with self.unit() as u:
            u.session.exec(  # type: ignore[call-overload]
                update(Receipt)
                .where(col(Receipt.id) == receipt_id, col(Receipt.lease_owner) == owner)
                .values(lease_owner=None, lease_until=None)
            )

    # -- reading ----------------------------------------------------------------
    def receipts(
        self, connection: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[Receipt]:
        with self.session() as session:
            query = select(Receipt).order_by(col(Receipt.created_at).desc(), col(Receipt.id)).limit(limit)
            if connection:
                query = query.where(Receipt.connection == connection)
            if status:
                query = query.where(Receipt.status == status)
            return list(session.exec(query))

    def receipt(self, id_prefix: str) -> Receipt | None:
        """A receipt by its id or an unambiguous prefix of it."""
        with self.session() as session:
            found = list(session.exec(select(Receipt).where(col(Receipt.id).startswith(id_prefix)).limit(2)))
            return found[0] if len(found) == 1 else None

    def search_receipts(self, text: str = "", connection: str | None = None, status: str | None = None,
                        limit: int = 100) -> list[Receipt]:
        """Receipts whose number, customer, CRM id or id contains ``text`` (any case), newest first."""
        with self.session() as session:
            query = select(Receipt).order_by(col(Receipt.created_at).desc(), col(Receipt.id)).limit(limit)
            if text:
                pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                query = query.where(or_(*(col(field).ilike(pattern, escape="\\") for field in (
                    Receipt.number, Receipt.customer, Receipt.source_id, Receipt.id))))
            if connection:
                query = query.where(Receipt.connection == connection)
            if status:
                query = query.where(Receipt.status == status)
            return list(session.exec(query))

    def receipt_counts(self) -> dict[tuple[str, str], int]:
        with self.session() as session:
            rows = session.exec(
                select(Receipt.connection, Receipt.status, func.count()).group_by(  # type: ignore[call-overload]
                    Receipt.connection, Receipt.status
                )
            )
            return {(c, s): n for c, s, n in rows}

    def connection_states(self) -> dict[str, ConnectionState]:
        with self.session() as session:
            return {row.name: row for row in session.exec(select(ConnectionState))}

    def quarantined(self, connection: str | None = None) -> list[Quarantine]:
        with self.session() as session:
            query = select(Quarantine).order_by(col(Quarantine.last_seen).desc())
            if connection:
                query = query.where(Quarantine.connection == connection)
            return list(session.exec(query))

    def events(self, receipt_id: str | None = None, *, kind: str | None = None,
               connection: str | None = None) -> list[Event]:
        with self.session() as session:
            query = select(Event).order_by(col(Event.seq))
            if receipt_id:
                query = query.where(Event.receipt_id == receipt_id)
            if kind:
                query = query.where(Event.kind == kind)
            if connection:
                query = query.where(Event.connection == connection)
            return list(session.exec(query))

    def snapshot(self, connection: str, source_id: str) -> Snapshot | None:
        """Read-only: what the last sync saw of one record (no write lock, for dry runs)."""
        with self.session() as session:
            return session.get(Snapshot, (self.tenant, connection, source_id))

    def receipt_of(self, connection: str, source_id: str, version: int, kind: str = "receipt") -> Receipt | None:
        """Read-only: the receipt (or credit note) ``version`` of one CRM invoice (for dry runs)."""
        with self.session() as session:
            return session.exec(_receipt_query(connection, source_id, version, kind)).first()

    def receipts_booked_as(self, connection: str, ledger_id: str) -> list[Receipt]:
        """The receipts of ``connection`` whose ledger record is ``ledger_id``."""
        with self.session() as session:
            query = select(Receipt).where(Receipt.connection == connection, Receipt.ledger_id == ledger_id)
            return list(session.exec(query))

    # -- webhook replays ----------------------------------------------------------
    def first_sight(self, connection: str, signature: str, now: datetime, expires_at: datetime) -> bool:
        """Record an accepted webhook signature until ``expires_at``; False when
        it is recorded already (a replay). Expired records go first, so the
        table holds one replay window."""
        digest = hashlib.sha256(signature.encode()).hexdigest()
        try:
            with self.unit() as u:
                u.session.exec(delete(WebhookSeen).where(col(WebhookSeen.expires_at) < now))  # type: ignore[call-overload]
                if u.get(WebhookSeen, connection, digest) is not None:
                    return False
                u.session.add(WebhookSeen(connection=connection, digest=digest, expires_at=expires_at))
        except IntegrityError:  # the same signature recorded by another worker meanwhile
            return False
        return True
