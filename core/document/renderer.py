"""The document step of the pipeline: a paid invoice becomes a Factur-X PDF/A-3b."""

from __future__ import annotations

import re
import threading
from urllib.parse import quote

import segno
from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from pouracquit.common.errors import BadRecord

from .cii import build_data, build_xml
from .context import PaidReceipt, build_context
from .fonts import font_faces
from .mentions import require_mentions
from .pdf import PdfWriter, embed_facturx
from .settings import TEMPLATES, DocumentSettings, Seller
from .validate import require_valid, require_valid_xml
from .wording import Wording

# BR-FR-01/02: an invoice number is at most 35 letters, digits and + - _ / (no spaces).
_NUMBER = re.compile(r"[A-Za-z0-9+\-_/]{1,35}")


class Renderer:
    """Renders paid receipts for one seller with one look.

    Templates, fonts and the compiled stylesheet are prepared once here;
    ``render`` only fills them, so one Renderer serves a whole run.
    """

    def __init__(self, seller: Seller, settings: DocumentSettings) -> None:
        self.seller = seller
        self.settings = settings
        self.wording = Wording(settings.language)
        loaders = [FileSystemLoader(str(TEMPLATES))]
        if settings.template_dir is not None:
            loaders.insert(0, FileSystemLoader(str(settings.template_dir)))
        # Sandboxed and autoescaping: invoice fields are CRM data, printed as text, never markup.
        env = SandboxedEnvironment(loader=ChoiceLoader(loaders), autoescape=True, undefined=StrictUndefined)
        self.template = env.get_template("receipt.html")
        faces, family = font_faces(settings.font_family)
        css = env.get_template("receipt.css").render(
            color=settings.primary_color, font=family, font_faces=faces, page_label=self.wording.text("page")
        )
        base = settings.template_dir or TEMPLATES
        self.writer = PdfWriter(css, base_url=base.as_uri() + "/")
        # Pango (under WeasyPrint) is not thread-safe: one document at a time per process.
        self._lock = threading.Lock()

    def check(self, receipt: PaidReceipt) -> bytes:
        """Everything ``render`` would refuse in the data, without the layout: the
        Factur-X XML, or MissingMention / BadRecord. The pipeline asks before it
        numbers an invoice, so that a number is never spent on a document that
        cannot be produced."""
        invoice = receipt.invoice
        credit = receipt.credits is not None
        # A credit note is either refunded in full or not refunded yet (money owed to the customer);
        # its CRM status says nothing about the refund.
        settled = invoice.balance_due.is_zero() if credit else invoice.fully_paid
        unrefunded_credit = credit and not invoice.payments and invoice.amount_paid.is_zero()
        if not settled and not unrefunded_credit:
            what = "refunded" if credit else "paid"
            raise BadRecord(
                f"invoice {invoice.number or invoice.source_id} is not fully {what} "
                f"(balance {invoice.balance_due}); only a paid invoice is acquittée"
                + (", and a credit note is refunded in full or not at all" if credit else "")
            )
        if not _NUMBER.fullmatch(receipt.number):
            raise BadRecord(f"receipt number {receipt.number!r} must be 1-35 of A-Z a-z 0-9 + - _ /")
        require_mentions(self.seller, invoice, credit_note=credit)
        xml = build_xml(build_data(receipt, self.seller, self.wording), self.settings.profile)
        # the business rules are checked on the XML here, so a failing document is known before a number is spent
        require_valid_xml(xml, self.settings.validation, paid=not credit and invoice.fully_paid)
        return xml

    def render(self, receipt: PaidReceipt) -> bytes:
        """The PDF/A-3b bytes of ``receipt`` with its factur-x.xml embedded.

        Raises MissingMention when a mandatory mention is missing, BadRecord
        when the invoice cannot be stated as paid (not fully paid, bad number),
        and DocumentInvalid when the document breaks a Factur-X rule (document.validate).
        """
        invoice = receipt.invoice
        credit = receipt.credits is not None
        xml = self.check(receipt)
        html = self.template.render(build_context(receipt, self.seller, self.settings, self.wording, self._qr(receipt)))
        with self._lock:
            pdf = self.writer.html_to_pdf(html)
        title = f"{self.wording.text('credit_title' if credit else 'title')} {receipt.number}"
        document = embed_facturx(
            pdf,
            xml,
            title=title,
            subject=f"{title} — {self.seller.name} → {invoice.customer.name}",
            author=self.seller.name,
            lang="fr-FR" if self.settings.language == "fr" else "en-GB",
            kind="facture d'avoir" if credit else "facture acquittée",
        )
        # the XML passed its rules in check(); the PDF is checked to carry it, at the schema level
        require_valid(document, "off" if self.settings.validation == "off" else "xsd")
        return document

    def filename(self, receipt: PaidReceipt) -> str:
        """A deterministic, filesystem- and mail-safe name, e.g. facture-acquittee-F-2026-0001.pdf
        (avoir-A-2026-0001.pdf for a credit note)."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", receipt.number).strip("-") or re.sub(
            r"[^A-Za-z0-9_-]+", "-", receipt.receipt_id
        ).strip("-")
        kind = "credit_filename" if receipt.credits is not None else "filename"
        return f"{self.wording.text(kind)}-{stem}.pdf"

    def _qr(self, receipt: PaidReceipt) -> str:
        base = self.settings.verify_base_url
        if not base:
            return ""
        return segno.make(f"{base}/receipts/{quote(receipt.receipt_id, safe='')}/verify", error="m").png_data_uri(
            scale=4, border=0
        )
