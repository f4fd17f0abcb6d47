"""Sending today's reminders, each step at most once per invoice.

The step's row (its intent, status ``sending``) is committed before the SMTP
dialogue; the table's unique key (connection, invoice, step) makes a second
writer, a retried run or a second process find it and send nothing. The
outcome is recorded after: ``sent``; ``retry`` when the server could not take
the message (4xx, unreachable: it was not sent, the next run tries again);
``failed`` with the server's answer on a 5xx. A process killed between the
intent and the outcome leaves ``sending``: whether the server got the message
is unknown, and a reminder is not worth a duplicate, so that step is never sent
again (the next step still comes) and the row reads ``unknown`` in the report.

A sent reminder is then logged on the CRM record where the source can (the
EmailLog capability, ``email.log_on_crm``), carrying the reminder's key: a log
lost to a crash or a CRM error is written by the next run, which looks for the
key first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import structlog
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from pouracquit.common.errors import ConfigError, PouracquitError, one_line
from pouracquit.connectors.base import EmailLog, SentEmail
from pouracquit.core.config import Settings
from pouracquit.core.delivery.settings import EmailSettings, mailbox
from pouracquit.core.delivery.smtp import Mailer, SmtpRejected, SmtpUnavailable
from pouracquit.core.document.settings import Seller
from pouracquit.state.store import Store
from pouracquit.state.tables import DEFAULT_TENANT, DunningReminder
from pouracquit.state.types import utcnow

from .letters import Letter, reminder_letter
from .letters import one_line as header_text
from .plan import Chase
from .settings import DunningSettings

log = structlog.get_logger("pouracquit.dunning")
# a step left ``sending`` this long ago was interrupted (a kill): its fate is unknown
INTERRUPTED_AFTER = timedelta(minutes=15)


def reminder_id(connection: str, source_id: str, step: int, tenant: str = DEFAULT_TENANT) -> str:
    """The same id (and so Message-ID) for one step of one invoice on every attempt."""
    key = f"{connection}\x00{source_id}\x00{step}"
    if tenant != DEFAULT_TENANT:  # ids are keyed alone: two companies' "inv-1" must not share one
        key = f"{tenant}\x00{key}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class DunningReport:
    sent: list[Chase] = field(default_factory=list)
    retry: list[tuple[Chase, str]] = field(default_factory=list)
    failed: list[tuple[Chase, str]] = field(default_factory=list)
    not_chased: list[Chase] = field(default_factory=list)


@dataclass(frozen=True)
class Outbox:
    """Where reminders go out: the SMTP mailer and the [email] identity."""

    mailer: Mailer
    email: EmailSettings
    seller: Seller
    dunning: DunningSettings
    sender: str
    accent: str = "#1f3a5f"

    @classmethod
    def of(cls, settings: Settings) -> Outbox:
        """A bad sender is a ConfigError here, before any intent is written."""
        try:
            sender = mailbox(settings.email.sender or settings.company.email, "email.sender")
        except ValueError as exc:
            raise ConfigError(f"email.sender: {exc} (set email.sender or seller.email)") from None
        return cls(Mailer(settings.email), settings.email, settings.company, settings.dunning, sender,
                   settings.document.primary_color)


def compose(letter: Letter, chase: Chase, outbox: Outbox, message_id: str,
            now: datetime) -> tuple[EmailMessage, str]:
    """The message and its envelope recipient (``redirect_to`` in test sends)."""
    email, sender = outbox.email, outbox.sender
    to, subject = chase.recipient, letter.subject
    if email.redirect_to:  # a test send, worded as the receipt e-mails word theirs
        to, subject = email.redirect_to, f"[test: {chase.recipient}] {subject}"
    msg = EmailMessage()
    msg["Subject"] = header_text(subject)
    msg["From"] = Address(display_name=header_text(email.sender_name or outbox.seller.name), addr_spec=sender)
    msg["To"] = Address(addr_spec=to)
    if email.reply_to:
        msg["Reply-To"] = email.reply_to
    msg["Message-ID"] = f"<{message_id}@{sender.rpartition('@')[2]}>"
    msg["Date"] = format_datetime(now)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-reply loops with out-of-office robots
    msg.set_content(letter.text)
    msg.add_alternative(letter.html, subtype="html")
    return msg, to


def dunning_counts(store: Store) -> dict[str, dict[str, int]]:
    """Per connection, reminders by status, for /status."""
    with store.session() as session:
        rows = session.exec(select(DunningReminder.connection, DunningReminder.status, func.count())  # type: ignore[call-overload]
                            .group_by(DunningReminder.connection, DunningReminder.status))
        out: dict[str, dict[str, int]] = {}
        for connection, status, count in rows:
            out.setdefault(connection, {})[status] = int(count)
        return out


def mark_interrupted(store: Store, connection: str) -> int:
    """Steps left ``sending`` by a killed run become ``unknown`` (never sent again)."""
    with store.unit() as u:
        result = u.session.exec(  # type: ignore[call-overload]
            update(DunningReminder)
            .where(col(DunningReminder.connection) == connection, col(DunningReminder.status) == "sending")
            .where(col(DunningReminder.updated_at) < utcnow() - INTERRUPTED_AFTER)
            .values(status="unknown", updated_at=utcnow(),
                    last_error="interrupted between the intent and the SMTP answer: not sent again")
        )
        return int(result.rowcount or 0)


def _intent(store: Store, chase: Chase, now: datetime) -> str | None:
    """Commit the step's intent; None when another attempt wrote this step already.
    A ``retry`` step is taken back by one attempt only."""
    rid = reminder_id(chase.connection, chase.source_id, chase.due.step, store.tenant)
    assert chase.due_date is not None
    try:
        with store.unit() as u:
            if u.session.get(DunningReminder, rid) is None:
                # created_at is the day the step went out, which spaces the next one (ladder.py)
                u.session.add(DunningReminder(
                    id=rid, connection=chase.connection, source_id=chase.source_id, step=chase.due.step,
                    template=chase.due.template, status="sending", recipient=chase.recipient,
                    amount_due=chase.amount_due, currency=chase.currency, due_date=chase.due_date, attempts=1,
                    created_at=now))
                return rid
            taken = u.session.exec(  # type: ignore[call-overload]
                update(DunningReminder)
                .where(col(DunningReminder.id) == rid, col(DunningReminder.status) == "retry")
                .values(status="sending", recipient=chase.recipient, amount_due=chase.amount_due,
                        attempts=DunningReminder.attempts + 1, created_at=now, updated_at=utcnow())
            )
            return rid if taken.rowcount == 1 else None
    except IntegrityError:  # another process wrote the same step first
        return None


def _outcome(store: Store, chase: Chase, rid: str, status: str, **fields: object) -> DunningReminder:
    with store.unit() as u:
        row = u.session.get(DunningReminder, rid)
        assert row is not None
        row.status, row.updated_at = status, utcnow()
        for name, value in fields.items():
            setattr(row, name, value)
        u.session.add(row)
        u.log(chase.connection, f"dunning_{status}", source_id=chase.source_id, step=chase.due.step + 1,
              template=chase.due.template, amount_due=f"{chase.amount_due} {chase.currency}",
              message_id=row.message_id, error=row.last_error)
    return row


def _log_on_crm(store: Store, crm: EmailLog, row: DunningReminder, email: SentEmail, *, may_exist: bool) -> None:
    """Log one sent reminder on its CRM record; a failure leaves it for the next run."""
    try:
        log_id = crm.log_email(row.source_id, email, may_exist=may_exist)
    except PouracquitError as exc:
        log.warning("reminder not logged on the CRM record, will try again", connection=row.connection,
                    source_id=row.source_id, error=one_line(str(exc)))
        return
    with store.unit() as u:
        fresh = u.session.get(DunningReminder, row.id)
        assert fresh is not None
        fresh.crm_log_id = log_id
        u.session.add(fresh)


def log_unlogged(store: Store, connection: str, crm: EmailLog, sender: str) -> int:
    """Log the reminders sent but not logged yet (a crash or a CRM error after the send)."""
    with store.session() as session:
        rows = list(session.exec(select(DunningReminder).where(
            DunningReminder.connection == connection, DunningReminder.status == "sent",
            col(DunningReminder.crm_log_id).is_(None))))
    for row in rows:
        sent_at = row.sent_at or row.updated_at
        subject = f"Relance {row.step + 1} ({row.template})"
        text = (f"{subject} envoyée le {sent_at:%d/%m/%Y} à {row.recipient} : {row.amount_due} {row.currency} "
                f"dus depuis le {row.due_date:%d/%m/%Y}.")
        email = SentEmail(key=f"dunning.{row.id}", message_id=row.message_id or "", sender=sender,
                          to=row.recipient or "", subject=subject, text=text, sent_at=sent_at)
        _log_on_crm(store, crm, row, email, may_exist=True)
    return len(rows)


def send_reminders(store: Store, chases: list[Chase], outbox: Outbox, now: datetime,
                   crm: EmailLog | None = None) -> DunningReport:
    """Send each chase's step once; one failure never stops the others. ``now`` dates the
    messages (the clock tests inject); ``crm`` logs each on its record."""
    report = DunningReport()
    for chase in chases:
        if chase.reason or chase.invoice is None:
            report.not_chased.append(chase)
            continue
        rid = _intent(store, chase, now)
        if rid is None:
            continue  # written by another attempt: never twice
        letter = reminder_letter(chase.invoice, chase.due, chase.amount_due, seller=outbox.seller,
                                 language=outbox.dunning.language, template_dir=outbox.dunning.template_dir,
                                 accent=outbox.accent)
        message, to = compose(letter, chase, outbox, f"dunning.{rid}", now)
        try:
            # test sends (redirect_to) reach the test address only, no copy to the accountant
            bcc = () if outbox.email.redirect_to else tuple(outbox.email.bcc)
            outbox.mailer.send(message, outbox.sender, to, bcc)
        except SmtpUnavailable as exc:
            _outcome(store, chase, rid, "retry", last_error=one_line(str(exc)))
            report.retry.append((chase, str(exc)))
            continue
        except SmtpRejected as exc:
            _outcome(store, chase, rid, "failed", last_error=one_line(str(exc)))
            report.failed.append((chase, str(exc)))
            continue
        except ConfigError as exc:  # the installation's to fix: the step is tried again after it
            _outcome(store, chase, rid, "retry", last_error=one_line(str(exc)))
            raise
        row = _outcome(store, chase, rid, "sent", sent_at=now, message_id=message["Message-ID"])
        report.sent.append(chase)
        if crm is not None:
            _log_on_crm(store, crm, row, SentEmail(
                key=f"dunning.{rid}", message_id=message["Message-ID"], sender=outbox.sender, to=to,
                subject=str(message["Subject"]), text=letter.text, sent_at=now), may_exist=False)
        log.info("reminder sent", connection=chase.connection, source_id=chase.source_id, step=chase.due.step + 1)
    return report
