"""``render``: one document from a JSON invoice, for template work.

A template error is reported with the template file and line, not a
Python traceback.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from jinja2 import TemplateError, TemplateSyntaxError
from pydantic import ValidationError

from pouracquit.common.errors import BadRecord, ConfigError, DocumentInvalid
from pouracquit.common.model import Invoice
from pouracquit.core.config import Settings, first_error
from pouracquit.core.document import PaidReceipt, Renderer


def _template_position(exc: TemplateError) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"{exc.filename or exc.name}, line {exc.lineno}"
    # jinja rewrites tracebacks so template frames carry the template's file and line
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith((".html", ".css"))]
    return f"{frames[-1].filename}, line {frames[-1].lineno}" if frames else "template"


def render_command(settings: Settings, invoice_file: Path, out: Path | None, number: str | None) -> int:
    """Render ``invoice_file`` (an invoice in pouracquit's JSON shape) to a PDF."""
    try:
        invoice = Invoice.model_validate_json(invoice_file.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"invoice file {invoice_file} not found") from None
    except ValidationError as exc:
        raise first_error(exc, str(invoice_file)) from None
    try:
        renderer = Renderer(settings.company, settings.document)
        # dates on a legal document are the invoice's own, never the day it was rendered
        receipt = PaidReceipt(invoice=invoice, number=number or invoice.number or "DRAFT-0001",
                              issued_on=invoice.issue_date, receipt_id="preview")
        pdf = renderer.render(receipt)
    except TemplateError as exc:
        sys.stderr.write(f"pouracquit: template error at {_template_position(exc)}: {exc.message}\n")
        return 1
    except (BadRecord, DocumentInvalid) as exc:
        sys.stderr.write(f"pouracquit: cannot render {invoice_file}: {exc}\n")
        return 1
    target = out or Path(renderer.filename(receipt))
    target.write_bytes(pdf)
    print(f"{target} ({len(pdf)} bytes)")
    return 0
