"""The public verification page a receipt's QR code opens.

It says only what the paper already says (number, date, amount, seller)
and whether the archived document still matches its recorded hash. The
receipt id in the URL is a random 80-bit value: knowing it is the proof of
holding the document.

Links made before a deployment served several companies are
``/receipts/<id>/verify``; a company's own links may carry it,
``/t/<tenant>/receipts/<id>/verify``: the receipt is then looked for in that
company's rows only. A bare id is routed to its company by ``Served.route_of``.
"""

from __future__ import annotations

import html
import re
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_currency

from pouracquit.core.audit import document_matches
from pouracquit.core.service import Service

from .served import Served

RECEIPT_ID = re.compile(r"^(?:/t/(?P<tenant>[a-z0-9][a-z0-9_-]{0,62}))?/receipts/(?P<id>[0-9a-f]{20})/verify$")
UNKNOWN = 404, "<!doctype html><title>Inconnue</title><p>Aucune facture acquittée à cette adresse.</p>"
PARIS = ZoneInfo("Europe/Paris")

PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vérification de facture</title>
<style>
body {{ font-family: "DejaVu Sans", sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; color: #1b2733; }}
h1 {{ font-size: 1.3rem; }}
.verdict {{ padding: .8rem 1rem; border-radius: .4rem; font-weight: bold; }}
.ok {{ background: #e3f4e8; color: #17612f; }} .ko {{ background: #fde8e8; color: #8a1c1c; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; }} dt {{ color: #5a6b7b; }}
</style></head>
<body><h1>Vérification d'une facture acquittée</h1>
<p class="verdict {css}" id="verdict">{verdict}</p>
<dl>
<dt>Émetteur</dt><dd id="seller">{seller}</dd>
<dt>Facture n°</dt><dd id="number">{number}</dd>
<dt>Date</dt><dd id="date">{date}</dd>
<dt>Montant TTC</dt><dd id="amount">{amount}</dd>
</dl></body></html>
"""


def verify_path(receipt_id: str, tenant: str | None = None) -> str:
    """The verify page's path; with ``tenant``, the one that names its company."""
    return f"/t/{tenant}/receipts/{receipt_id}/verify" if tenant else f"/receipts/{receipt_id}/verify"


def verify_page(source: Service | Served, path: str) -> tuple[int, str] | None:
    """(status, HTML) for a verify URL, or None when ``path`` is not one."""
    found = RECEIPT_ID.match(path)
    if not found:
        return None
    served = source if isinstance(source, Served) else Served(source)
    rid = found.group("id")
    tenant = found.group("tenant") or served.route_of(rid)
    service = served.service(tenant) if tenant else None
    if service is None:
        return UNKNOWN
    receipt = service.store.receipt(rid)
    if receipt is None or receipt.id != rid or not receipt.document_sha256:
        return UNKNOWN
    matches = document_matches(service.store, receipt, service.settings.archive)
    page = PAGE.format(
        css="ok" if matches else "ko",
        verdict="Document authentique : identique à l'original archivé." if matches
        else "Attention : l'original archivé est introuvable ou a été modifié.",
        seller=html.escape(service.settings.company.name),
        number=html.escape(receipt.number or ""),
        date=format_date((receipt.completed_at or receipt.created_at).astimezone(PARIS).date(), "long", locale="fr_FR"),
        amount=html.escape(format_currency(receipt.amount, receipt.currency, locale="fr_FR")),
    )
    return 200, page
