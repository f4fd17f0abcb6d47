"""The state store's queries for the e-mail step (core/delivery), mixed into ``Store``:
where each receipt's e-mail stands, and the claims that log sent e-mails on the CRM
in batches exactly once."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, or_, update
from sqlmodel import Session, col, select

from .tables import Receipt
from .types import utcnow

if TYPE_CHECKING:
    from .store import Unit


class EmailQueries:
    engine: Engine

    if TYPE_CHECKING:
        def unit(self) -> AbstractContextManager[Unit]: ...

        def session(self, **options: object) -> Session: ...

    def email_counts(self) -> dict[tuple[str, str], int]:
        """Receipts per (connection, e-mail status): sent, rejected, skipped."""
        with self.session() as session:
            rows = session.exec(
                select(Receipt.connection, Receipt.email_status, func.count())  # type: ignore[call-overload]
                .where(col(Receipt.email_status).is_not(None))
                .group_by(Receipt.connection, Receipt.email_status)
            )
            return {(c, s): n for c, s, n in rows}

    def email_problems(self, connection: str, limit: int = 50) -> list[Receipt]:
        """Receipts of ``connection`` whose e-mail was refused or skipped, newest first;
        ``email_error`` says why (the server's answer, or the missing address)."""
        with self.session() as session:
            query = (select(Receipt).where(Receipt.connection == connection)
                     .where(col(Receipt.email_status).in_(("rejected", "skipped")))
                     .order_by(col(Receipt.updated_at).desc()).limit(limit))
            return list(session.exec(query))

    def claim_email_logs(self, connection: str, claim: str, limit: int,
                         stale_before: datetime) -> tuple[list[Receipt], list[Receipt]]:
        """Sent e-mails of ``connection`` not logged on the CRM yet, marked ``email_log_id =
        claim``: (fresh: never offered to the CRM, stale: claimed by an attempt that did not
        settle before ``stale_before``, so it may have logged them). Each row is taken by
        a conditional update: two workers never claim the same e-mail."""
        fresh: list[Receipt] = []
        stale: list[Receipt] = []
        with self.unit() as u:
            abandoned = col(Receipt.email_log_id).startswith("claim:") & (col(Receipt.updated_at) < stale_before)
            query = (select(Receipt).where(Receipt.connection == connection, Receipt.email_status == "sent")
                     .where(or_(col(Receipt.email_log_id).is_(None), abandoned))
                     .order_by(col(Receipt.updated_at), col(Receipt.id)).limit(limit))
            for row in list(u.session.exec(query)):
                was = row.email_log_id
                same = col(Receipt.email_log_id) == was if was else col(Receipt.email_log_id).is_(None)
                taken = u.session.exec(update(Receipt).where(col(Receipt.id) == row.id, same)  # type: ignore[call-overload]
                                       .values(email_log_id=claim, updated_at=utcnow()))
                if taken.rowcount == 1:
                    (stale if was else fresh).append(row)
        return fresh, stale

    def settle_email_logs(self, claim: str, logged: dict[str, str], refused: dict[str, str]) -> None:
        """Record what the CRM answered for claimed e-mails (receipt id -> its log's id, or
        -> why the CRM refused it for good); those in neither stay claimed until stale."""
        with self.unit() as u:
            for rid, reason in {**{r: None for r in logged}, **refused}.items():
                row = u.session.get(Receipt, rid, with_for_update=True)
                if row is None or row.email_log_id != claim:
                    continue
                row.email_log_id = logged.get(rid, "")
                if reason is not None:
                    row.email_error = f"sent, but not logged on the CRM record: {reason}"
                row.updated_at = utcnow()
                u.session.add(row)
                u.log(row.connection, "email_logged", receipt_id=rid, source_id=row.source_id,
                      email_log_id=row.email_log_id, refused=reason)
