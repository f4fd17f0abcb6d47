"""The e-mail of a receipt: subject and bodies from sandboxed Jinja2 templates (French
or English, beside the document templates; a ``document.template_dir`` may override
them under ``email/``), the seller's name and logo, the archived PDF attached."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from pouracquit.common.errors import ConfigError
from pouracquit.connectors.base import Document

from ..document.settings import TEMPLATES, DocumentSettings, Seller
from ..document.wording import Wording
from .settings import EmailSettings, mailbox

_LOGO_CID = "logo@pouracquit"


def one_line(text: str) -> str:
    """Header text from CRM data: every run of whitespace (line breaks included) is
    one space, so a name can never start a second header."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Paper:
    """What the e-mail says about the document it carries."""

    receipt_id: str
    kind: str  # "receipt" or "credit_note"
    number: str
    amount: Decimal
    currency: str
    issued_on: date
    buyer_name: str
    credits: str = ""  # the number of the invoice a credit note credits


@dataclass(frozen=True)
class Letter:
    """A composed e-mail and its envelope: ``to`` is where it goes (the test
    address under ``redirect_to``), ``recipient`` the buyer it is meant for."""

    message: EmailMessage
    sender: str
    to: str
    recipient: str
    bcc: tuple[str, ...]
    message_id: str
    subject: str
    text: str


class Composer:
    """Templates loaded once; ``compose`` only fills them."""

    def __init__(self, email: EmailSettings, seller: Seller, document: DocumentSettings,
                 survey: Callable[[str], str] | None = None) -> None:
        self.email, self.seller, self.document = email, seller, document
        self.survey = survey  # a receipt id's satisfaction survey link (core/survey.py), when enabled
        try:
            self.sender = mailbox(email.sender or seller.email, "email.sender")
        except ValueError as exc:
            raise ConfigError(f"email.sender: {exc} (set email.sender or seller.email)") from None
        self.domain = self.sender.rpartition("@")[2]
        self.wording = Wording(email.language)
        dirs = [str(TEMPLATES / "email")]
        if document.template_dir is not None and (document.template_dir / "email").is_dir():
            dirs.insert(0, str(document.template_dir / "email"))
        loader = ChoiceLoader([FileSystemLoader(d) for d in dirs])
        # sandboxed: a template cannot reach Python; CRM values are data, escaped in HTML
        text_env = SandboxedEnvironment(loader=loader, autoescape=False, undefined=StrictUndefined)
        html_env = SandboxedEnvironment(loader=loader, autoescape=True, undefined=StrictUndefined)
        lang = email.language
        self.subject_t = text_env.get_template(f"{lang}/subject.txt")
        self.text_t = text_env.get_template(f"{lang}/body.txt")
        self.html_t = html_env.get_template(f"{lang}/body.html")
        self.logo = document.logo.read_bytes() if document.logo is not None else None

    def message_id(self, receipt_id: str, resend: int = 0) -> str:
        """Stable per receipt: a replay after a crash sends the same Message-ID, which
        receiving systems may use to drop the copy. A re-send on demand is a new message."""
        suffix = f".r{resend}" if resend else ""
        return f"<pouracquit.{receipt_id}{suffix}@{self.domain}>"

    def compose(self, paper: Paper, to: str, attachment: Document | None, *, resend: int = 0) -> Letter:
        """The e-mail of ``paper`` for ``to`` (a checked address), its PDF attached (None:
        the words only, for the CRM's log of an e-mail already sent)."""
        s, w = self.email, self.wording
        values = {
            "credit": paper.kind == "credit_note",
            "number": paper.number,
            "amount": w.money(paper.amount, paper.currency),
            "issued_on": w.day(paper.issued_on),
            "credits": paper.credits,
            "buyer": one_line(paper.buyer_name),
            "seller": {"name": self.seller.name, "email": self.seller.email, "phone": self.seller.phone},
            "thank_you": self.document.thank_you,
            "color": self.document.primary_color,
            "logo": _LOGO_CID if self.logo else "",
            "survey_link": self.survey(paper.receipt_id) if self.survey and paper.kind == "receipt" else "",
        }
        subject = one_line(self.subject_t.render(values))
        envelope_to = s.redirect_to or to
        if s.redirect_to:
            subject = f"[test: {to}] {subject}"
        text = self.text_t.render(values)
        message_id = self.message_id(paper.receipt_id, resend)
        msg = EmailMessage()
        msg["From"] = Address(one_line(s.sender_name or self.seller.name), addr_spec=self.sender)
        msg["To"] = Address(one_line(paper.buyer_name) if not s.redirect_to else "", addr_spec=envelope_to)
        if s.reply_to:
            msg["Reply-To"] = s.reply_to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = message_id
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a machine
        msg.set_content(text)
        msg.add_alternative(self.html_t.render(values, subject=subject), subtype="html")
        if self.logo is not None and self.document.logo is not None:
            kind = mimetypes.guess_type(self.document.logo.name)[0] or "image/png"
            maintype, _, subtype = kind.partition("/")
            msg.get_payload()[1].add_related(self.logo, maintype=maintype, subtype=subtype,
                                             cid=f"<{_LOGO_CID}>")
        if attachment is not None:
            maintype, _, subtype = attachment.media_type.partition("/")
            msg.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.name)
        # test sends reach the test address only: no copy to the accountant
        bcc = () if s.redirect_to else tuple(s.bcc)
        return Letter(message=msg, sender=self.sender, to=envelope_to, recipient=to, bcc=bcc,
                      message_id=message_id, subject=subject, text=text)
