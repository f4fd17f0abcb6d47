"""``check``: validate Factur-X PDFs (or their XML) with pouracquit's own validator.

The same check the renderer applies to every document it makes (XSD, the
EN16931 schematron of the document's profile, the French CTC schematron), for
documents made elsewhere or kept from before: one line per file when it
passes, one line per broken rule when it does not.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pouracquit.core.document.validate import Level, NotFacturX, validate_pdf, validate_xml


def check_command(files: list[Path], *, paid: bool, level: Level) -> int:
    """0 when every file passes, 1 when one breaks a rule, 2 when one is unreadable or no Factur-X."""
    # pypdf and factur-x log what they dislike in a damaged file; the command says it in one line
    for name in ("pypdf", "factur-x"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    worst = 0
    for path in files:
        try:
            data = path.read_bytes()
            is_pdf = b"%PDF-" in data[:1024] or path.suffix.lower() == ".pdf"
            check = validate_pdf if is_pdf else validate_xml
            violations = check(data, paid=paid, level=level)
        except (OSError, NotFacturX) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            sys.stderr.write(f"{path}: cannot check: {reason}\n")
            worst = 2
            continue
        if not violations:
            print(f"{path}: OK")
            continue
        worst = max(worst, 1)
        for v in violations:
            print(f"{path}: {v.rule}: {v.message}")
    return worst
