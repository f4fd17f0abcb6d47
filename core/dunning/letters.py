"""The words of a reminder: subject, text and HTML from sandboxed Jinja2 templates.

A tone is one text template per language (``<tone>.<lang>.txt`` in
core/document/templates/dunning/, or the configured ``template_dir``): its
first line is the subject, the rest the body. The HTML part is the same body,
escaped, in ``layout.html``. Every CRM value reaches the templates
pre-formatted and as text; the subject is folded onto one line, so a line
break typed in a CRM field can never start a second mail header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from pouracquit.common.model import Invoice
from pouracquit.core.document.mentions import is_business
from pouracquit.core.document.settings import Seller
from pouracquit.core.document.wording import Wording

from .ladder import Due
from .settings import TEMPLATES

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Letter:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=4)
def _environment(template_dir: Path | None) -> SandboxedEnvironment:
    loaders = [FileSystemLoader(str(TEMPLATES))]
    if template_dir is not None:
        loaders.insert(0, FileSystemLoader(str(template_dir)))
    # sandboxed: a template may come from the user's folder; autoescaped for the .html layout only
    return SandboxedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, trim_blocks=True,
                                lstrip_blocks=True, autoescape=lambda name: bool(name and name.endswith(".html")))


def one_line(value: str) -> str:
    """Whitespace (line breaks included) folded to single spaces: safe in a mail header."""
    return _SPACES.sub(" ", value).strip()


def reminder_letter(invoice: Invoice, due: Due, amount_due: Decimal, *, seller: Seller, language: str,
                    template_dir: Path | None = None, accent: str = "#1f3a5f") -> Letter:
    """The reminder of ladder step ``due`` for ``invoice``, with ``amount_due`` still owed."""
    words = Wording(language)
    business = is_business(invoice)
    number = invoice.number or invoice.source_id
    values = {
        "number": one_line(number),
        "customer": one_line(invoice.customer.name),
        "issue_date": words.day(invoice.issue_date),
        "due_date": words.day(invoice.due_date) if invoice.due_date else "",
        "days_late": due.days_late,
        "step": due.step + 1,
        "amount_due": words.money(amount_due, invoice.currency),
        # the professional mentions of the invoice itself (C. com. L441-10, D441-5), same wording
        "penalty": words.penalty_note(seller, business),
        "indemnity": words.indemnity_note(seller, business),
        "business": business,
        "seller": seller.name,
        "iban": seller.iban,
        "bic": seller.bic,
    }
    env = _environment(template_dir)
    rendered = env.get_template(f"{due.template}.{language}.txt").render(values)
    first, _, body = rendered.partition("\n")
    subject = one_line(first.removeprefix("Subject:"))
    text = re.sub(r"\n{3,}", "\n\n", body.strip()) + "\n"
    paragraphs = [p.split("\n") for p in text.strip().split("\n\n")]
    html = env.get_template("layout.html").render(lang=language, subject=subject, seller=seller.name,
                                                  accent=accent, paragraphs=paragraphs)
    return Letter(subject=subject, text=text, html=html)
