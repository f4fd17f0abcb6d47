"""``pouracquit receipts send ID [--to ADDRESS]``: send (or send again) one receipt's
e-mail now, on a person's order.

A send on demand is its own message: its Message-ID carries a resend number
(``.rN``), so a receiving system that drops duplicates by Message-ID does not
drop it. It is recorded in the audit trail before the send (``email_send_requested``:
who it goes to) and after (``email_resent``: the server's answer). ``[email]
redirect_to`` still applies. A receipt whose e-mail was skipped or refused is
marked sent once it goes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pouracquit.common.errors import ConfigError
from pouracquit.common.model import Invoice
from pouracquit.connectors.base import Document
from pouracquit.state.tables import Receipt

from ..service import Service
from .compose import Composer
from .settings import mailbox
from .smtp import Mailer
from .step import buyer_address, paper_of


@dataclass(frozen=True)
class SentOnDemand:
    to: str  # where it went (the test address under redirect_to)
    recipient: str
    message_id: str
    answer: str


def send_on_demand(service: Service, receipt: Receipt, to: str | None = None) -> SentOnDemand:
    """Send ``receipt``'s e-mail to ``to`` (else the buyer's address). ConfigError for
    what the user must fix first (no [email], no document yet, no address); the
    mailer's errors (SmtpRejected, SmtpUnavailable) as they come."""
    settings = service.settings
    if not settings.email.enabled:
        raise ConfigError("[email] is not enabled: set email.enabled = true and the SMTP server in the config")
    if receipt.document_sha256 is None or receipt.document_name is None or receipt.number is None:
        raise ConfigError(f"receipt {receipt.id} has no archived document yet (it is at step {receipt.step}): "
                          f"`pouracquit receipts retry {receipt.id}` first")
    invoice = Invoice.model_validate_json(receipt.invoice_json)
    if to is not None:
        try:
            address = mailbox(to, "--to")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    else:
        found, why = buyer_address(invoice)
        if found is None:
            raise ConfigError(f"{why.format(id=receipt.id)}; or give --to ADDRESS")
        address = found
    resend = 1 + len(service.store.events(receipt.id, kind="email_resent"))
    archive = service.wiring(settings.connection(receipt.connection)).archive
    document = Document(name=receipt.document_name, content=archive.read(receipt.document_sha256))
    composer = Composer(settings.email, settings.company, settings.document)
    letter = composer.compose(paper_of(receipt, invoice), address, document, resend=resend)
    with service.store.unit() as u:
        u.log(receipt.connection, "email_send_requested", receipt_id=receipt.id, source_id=receipt.source_id,
              to=letter.to, recipient=address, message_id=letter.message_id)
    sent = Mailer(settings.email).send(letter.message, letter.sender, letter.to, letter.bcc)
    with service.store.unit() as u:
        if receipt.email_status != "sent":  # a person's order: no lease holder to fence with
            u.update_receipt(receipt.id, None, email_status="sent", email_to=address, email_error=None,
                             email_message_id=letter.message_id, email_sent_at=datetime.now(UTC))
        u.log(receipt.connection, "email_resent", receipt_id=receipt.id, source_id=receipt.source_id,
              to=letter.to, recipient=address, message_id=letter.message_id, smtp_answer=sent.answer)
    return SentOnDemand(to=letter.to, recipient=address, message_id=letter.message_id, answer=sent.answer)
