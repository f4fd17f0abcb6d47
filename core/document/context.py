"""Invoice -> template context: every value already formatted as it will print.

The template only lays strings out; it never computes.  Amounts come from the
invoice model so the page, the XML and the ledger agree to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pouracquit.common.model import CreditReference, Invoice, Payment, PaymentMethod
from pouracquit.common.money import round_cents

from .mentions import exchange_rate, is_business, vat_treatment
from .settings import DocumentSettings, Seller
from .wording import Wording, _spaced

# A French receipt states the day as it was in France, whatever the CRM's clock.
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class PaidReceipt:
    """What the pipeline asks to print: the invoice plus the receipt's own identity.

    ``issued_on`` is the document's issue date (BT-2): the CRM invoice's own date
    when the CRM numbered it, the numbering date when pouracquit did. With
    ``credits`` set the document is a credit note (TypeCode 381) crediting that
    invoice, and ``invoice`` holds what is credited (see ReceiptOrder).
    """

    invoice: Invoice
    number: str
    issued_on: date
    receipt_id: str
    credits: CreditReference | None = None


def local_day(payment: Payment) -> date:
    return payment.paid_at.astimezone(PARIS).date()


def credit_reason(receipt: PaidReceipt, wording: Wording) -> str:
    """'Remboursement — Avoir sur la facture n° F-1 du 10/01/2026': printed, and a note in the XML."""
    credit = receipt.credits
    assert credit is not None
    credited = wording.text("credits_invoice", number=credit.number, date=wording.day(credit.issue_date))
    return f"{wording.text(credit.reason)} — {credited}"


def build_context(
    receipt: PaidReceipt, seller: Seller, settings: DocumentSettings, wording: Wording, qr_uri: str
) -> dict[str, Any]:
    """Everything receipt.html prints, as display strings."""
    inv = receipt.invoice
    cur = inv.currency
    money = wording.money
    credit = receipt.credits is not None
    last = inv.last_payment  # None only for a credit note not refunded yet
    buyer = inv.customer
    business = is_business(inv)
    vat_rows = []
    notes: dict[str, None] = {}
    for bucket in inv.vat_breakdown():
        t = vat_treatment(bucket.rate, bucket.exemption)
        if t.wording(wording.language):
            notes[t.wording(wording.language)] = None
        vat_rows.append(
            {
                "label": wording.text("vat_of", rate=wording.rate(bucket.rate)),
                "base": wording.text("vat_base", base=money(bucket.base, cur)),
                "tax": money(bucket.tax, cur),
                "note": t.wording(wording.language),
            }
        )
    lines = [
        {
            "description": line.description,
            "sku": line.sku,
            "quantity": wording.number(line.quantity),
            "unit_price": money(line.unit_price, cur),
            "discount": money(round_cents(line.discount), cur) if line.discount else "",
            "vat_rate": wording.rate(line.vat_rate),
            "total": money(line.net, cur),
        }
        for line in inv.lines
    ]
    payments = [
        {
            "date": wording.day(local_day(p)),
            "amount": money(p.amount.amount, cur),
            "method": wording.method(p.method),
            "reference": p.reference,
        }
        for p in sorted(inv.payments, key=lambda p: p.paid_at)
    ]
    vat_in_eur = ""
    if cur != "EUR":
        rate = exchange_rate(inv)
        vat_in_eur = wording.text(
            "vat_in_eur",
            amount=money(round_cents(inv.vat_total.amount * rate), "EUR"),
            currency=cur,
            rate=wording.number(rate),
            # where the rate comes from (the CRM, or the ECB reference rate of a day)
            source=wording.text("rate_source", source=inv.exchange_rate_source) if inv.exchange_rate_source else "",
        )
    if seller.vat_regime_note:
        notes[seller.vat_regime_note] = None
    settled = inv.gross_total.amount if last is not None else Decimal("0")
    if credit:
        settled_label = wording.text("refunded_total" if last is not None else "owed_total")
        paid_on = wording.text("refunded_on", date=wording.day(local_day(last))) if last is not None else ""
    else:
        assert last is not None  # require_mentions() ran before
        settled_label = wording.text("paid_total")
        paid_on = wording.text("paid_on", date=wording.day(local_day(last)))
    return {
        "t": wording.labels,
        "lang": wording.language,
        "color": settings.primary_color,
        "font": settings.font_family,
        "logo": settings.logo.as_uri() if settings.logo else "",
        "qr": qr_uri,
        "seller": {
            "name": seller.name,
            "legal": wording.seller_legal_line(seller),
            "address": _address_lines(seller.address),
            "siren": _spaced(seller.siren),
            "siret": seller.siret,
            "ape": seller.ape,
            "vat_number": seller.vat_number,
            "email": seller.email,
            "phone": seller.phone,
            # the account a transfer was paid to; other methods (and refunds) never touch it
            "iban": seller.iban if not credit and any(p.method is PaymentMethod.TRANSFER for p in inv.payments) else "",
            "bic": seller.bic,
        },
        "buyer": {
            "name": buyer.name,
            "address": _address_lines(buyer.address),
            "siren": _spaced(buyer.siren) if buyer.siren else "",
            "vat_number": buyer.vat_number,
            "email": buyer.email,
        },
        # the CRM record's mapped properties, for user templates: {{ fields.po_number }}
        "fields": dict(inv.properties),
        "is_credit_note": credit,
        "title": wording.text("credit_title" if credit else "title"),
        "credit_reason": credit_reason(receipt, wording) if credit else "",
        "number": receipt.number,
        "issue_date": wording.day(receipt.issued_on),
        # a credit note is not due: what it owes, it states in its settlement block
        "due_date": "" if credit else wording.day(inv.due_date or receipt.issued_on),
        "supply_date": wording.day(inv.supply_date or inv.issue_date),
        "nature": wording.text(inv.nature),
        "lines": lines,
        "net_total": money(inv.net_total.amount, cur),
        "vat_rows": vat_rows,
        "vat_total": money(inv.vat_total.amount, cur),
        "gross_total": money(inv.gross_total.amount, cur),
        "settled_label": settled_label,
        "paid_total": money(settled, cur),
        "balance_label": wording.text("owed_total" if credit else "balance"),
        "balance": money(inv.gross_total.amount - settled, cur),
        "vat_in_eur": vat_in_eur,
        "paid_on": paid_on,
        "payments_label": wording.text("refunds" if credit else "payments"),
        "payments": payments,
        "vat_notes": list(notes),
        # C. com. L441-10: penalties and the 40 EUR indemnity bind professional buyers only
        "penalty": wording.penalty_note(seller) if business else "",
        "indemnity": wording.indemnity_note(seller) if business else "",
        "discount_terms": seller.discount_terms.rstrip(". "),
        "thank_you": settings.thank_you,
        "terms": settings.terms,
        "footer": settings.footer,
    }


def _address_lines(address: Any) -> list[str]:
    city = " ".join(p for p in (address.postal_code, address.city) if p)
    country = address.country.upper()
    return [p for p in (address.line1, address.line2, city, "" if country == "FR" else country) if p]
