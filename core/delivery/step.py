"""The pipeline's ``email`` step: the receipt (or credit note) to the buyer, once.

The pipeline commits the step's intent before calling it. The send is recorded
(``email_status = "sent"``) in its own commit right after the server's answer to
DATA, before the CRM is told: a crash between that answer and that commit is the
one window in which a replay sends again, with the same Message-ID (docs/delivery.md).
A refusal for good (5xx) ends the step with the server's answer and the receipt
stays booked; a buyer without an address is skipped with the reason. Both show in
``/status``; `pouracquit receipts send` sends again once the address is fixed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from pouracquit.common.errors import PermanentError, PouracquitError
from pouracquit.common.model import CreditReference, Invoice
from pouracquit.connectors.base import BatchEmailLog, CrmSource, Document, EmailLog, SentEmail
from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt

from ..config import Settings
from ..credit import issue_date
from ..survey import survey_links
from .compose import Composer, Letter, Paper
from .settings import EmailSettings, mailbox
from .smtp import Mailer, SmtpRejected

log = structlog.get_logger("pouracquit.delivery")

# record(kind, fields): commit ``fields`` on the receipt (fenced by its lease) with an audit entry ``kind``
Record = Callable[[str, dict[str, Any]], None]
NO_ADDRESS = ("no e-mail address for the buyer: fill the contact's (or company's) e-mail in the CRM "
              "(mapping key customer.email), then `pouracquit receipts send {id}`")


def paper_of(receipt: Receipt, invoice: Invoice) -> Paper:
    assert receipt.number is not None
    credited = (CreditReference.model_validate_json(receipt.credits_json).number
               if receipt.kind == "credit_note" and receipt.credits_json else "")
    return Paper(receipt_id=receipt.id, kind=receipt.kind, number=receipt.number, amount=receipt.amount,
                 currency=receipt.currency, issued_on=issue_date(receipt, invoice),
                 buyer_name=invoice.customer.name, credits=credited)


def buyer_address(invoice: Invoice) -> tuple[str | None, str]:
    """The buyer's checked address, or None and why not (naming the field to fix)."""
    raw = invoice.customer.email
    if not raw.strip():
        return None, NO_ADDRESS
    try:
        return mailbox(raw, "customer.email"), ""
    except ValueError as exc:
        return None, f"{exc}: correct it in the CRM"


class EmailStep:
    """One connection's e-mail step: composer, mailer and (if it can) the CRM log."""

    def __init__(self, settings: EmailSettings, composer: Composer, source: CrmSource,
                 mailer: Mailer | None = None) -> None:
        self.settings, self.composer = settings, composer
        self.mailer = mailer or Mailer(settings)
        self.crm = source if settings.log_on_crm and isinstance(source, EmailLog) else None
        # a CRM that logs many e-mails per call gets them from ``flush`` after each drain, not one by one
        self.batch = source if self.crm is not None and isinstance(source, BatchEmailLog) else None

    @classmethod
    def of(cls, settings: Settings, source: CrmSource) -> EmailStep | None:
        """The step for ``settings``; None when ``[email]`` is not enabled."""
        if not settings.email.enabled:
            return None
        if settings.email.password is not None:
            settings.email.password.value()  # a missing or empty secret stops the start, not the first send
        survey = survey_links(settings.survey, settings.admin.public_url)
        return cls(settings.email, Composer(settings.email, settings.company, settings.document, survey), source)

    def run(self, receipt: Receipt, invoice: Invoice, document: Callable[[], Document],
            record: Record) -> dict[str, Any]:
        if receipt.email_status in ("rejected", "skipped"):
            return {}
        to, why = buyer_address(invoice)
        if to is None:
            return {"email_status": "skipped", "email_error": why.format(id=receipt.id)}
        letter = self.composer.compose(paper_of(receipt, invoice), to, document())
        if receipt.email_status == "sent":  # sent before a crash: only the CRM log may be missing
            return self._log(receipt, letter, receipt.email_sent_at or datetime.now(UTC), may_exist=True)
        try:
            sent = self.mailer.send(letter.message, letter.sender, letter.to, letter.bcc)
        except SmtpRejected as exc:
            return {"email_status": "rejected", "email_to": to, "email_message_id": letter.message_id,
                    "email_error": str(exc)}
        now = datetime.now(UTC)
        fields = {"email_status": "sent", "email_to": to, "email_message_id": letter.message_id,
                  "email_sent_at": now, "email_error": None}
        record("email_sent", {**fields, "delivered_to": letter.to, "bcc": list(letter.bcc),
                              "smtp_answer": sent.answer, "refused_bcc": list(sent.refused_bcc)})
        if sent.refused_bcc:
            log.warning("bcc copies refused", receipt_id=receipt.id, refused=list(sent.refused_bcc))
        return {**fields, **self._log(receipt, letter, now, may_exist=False)}

    def _log(self, receipt: Receipt, letter: Letter, sent_at: datetime, *, may_exist: bool) -> dict[str, Any]:
        """The sent e-mail on the CRM record. A refusal for good is noted, not fatal:
        the e-mail itself went out."""
        if self.crm is None or self.batch is not None:
            return {}
        try:
            return {"email_log_id": self.crm.log_email(receipt.source_id, sent_email(receipt, letter, sent_at),
                                                       may_exist=may_exist)}
        except PermanentError as exc:
            return {"email_error": f"sent, but not logged on the CRM record: {exc}"}

    def flush(self, store: Store, connection: str, lease_seconds: float) -> None:
        """Log on the CRM, ``email_log_batch_size`` per call, the e-mails ``connection`` sent
        and did not log yet. Each is claimed in the store before the call; one claimed by
        an attempt that never settled (a crash) is looked up before it is logged again.
        A CRM that fails leaves them for the next drain."""
        if self.batch is None:
            return
        claim = f"claim:{uuid.uuid4().hex[:16]}"
        stale_before = datetime.now(UTC) - timedelta(seconds=2 * lease_seconds)
        try:
            while True:
                fresh, stale = store.claim_email_logs(connection, claim, self.batch.email_log_batch_size,
                                                      stale_before)
                if not fresh and not stale:
                    return
                emails = {r.id: (r.source_id, self._logged(r)) for r in fresh + stale}
                answers = self.batch.log_emails([emails[r.id] for r in fresh]) if fresh else {}
                for r in stale:
                    ref, email = emails[r.id]
                    try:
                        answers[email.key] = self.batch.log_email(ref, email, may_exist=True)
                    except PermanentError as exc:
                        answers[email.key] = exc
                by_key = {email.key: rid for rid, (_, email) in emails.items()}
                store.settle_email_logs(
                    claim, {by_key[k]: a for k, a in answers.items() if k in by_key and isinstance(a, str)},
                    {by_key[k]: str(a) for k, a in answers.items() if k in by_key and not isinstance(a, str)})
        except (PouracquitError, OSError) as exc:  # the CRM is struggling: the next drain logs them
            log.warning("e-mails not logged on the CRM yet", connection=connection, error=str(exc))

    def _logged(self, receipt: Receipt) -> SentEmail:
        """The CRM's log of an e-mail sent earlier, its words composed again."""
        invoice = Invoice.model_validate_json(receipt.invoice_json)
        letter = self.composer.compose(paper_of(receipt, invoice), receipt.email_to or "", None)
        assert receipt.email_message_id is not None
        return sent_email(receipt, letter, receipt.email_sent_at or datetime.now(UTC), receipt.email_message_id)


def sent_email(receipt: Receipt, letter: Letter, sent_at: datetime, message_id: str = "") -> SentEmail:
    """What the CRM logs of ``letter``: its key is the Message-ID (``message_id`` when the
    e-mail went out under another one than a fresh composition gives)."""
    message_id = message_id or letter.message_id
    return SentEmail(key=message_id.strip("<>"), message_id=message_id, sender=letter.sender, to=letter.to,
                     subject=letter.subject, text=letter.text, sent_at=sent_at, attachment=receipt.document_name or "")
