"""Words and number formats of one document language (French or English).

Labels live in two dicts rather than gettext catalogues: there are two
languages, a few dozen strings, and the legal sentences must be reviewed side
by side.  Amounts and dates are formatted by Babel for the locale.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from pouracquit.common.model import Payment, PaymentMethod

from .settings import Seller

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Facture acquittée",
        "stamp": "FACTURE ACQUITTÉE",
        "number": "Facture n°",
        "number_short": "n°",
        "credit_number": "Avoir n°",
        "issue_date": "Date d'émission",
        "supply_date": "Date de la livraison / prestation",
        "seller": "Vendeur",
        "buyer": "Client",
        "siren": "SIREN",
        "siret": "SIRET",
        "vat_number": "N° TVA intracommunautaire",
        "ape": "Code APE",
        "description": "Désignation",
        "quantity": "Qté",
        "unit_price": "P.U. HT",
        "discount": "Remise",
        "vat_rate": "TVA",
        "line_total": "Total HT",
        "line": "Ligne",
        "net_total": "Total HT",
        "vat_of": "TVA {rate}",
        "vat_base": "base {base}",
        "vat_total": "Total TVA",
        "gross_total": "Total TTC",
        "paid_total": "Montant acquitté",
        "balance": "Reste à payer",
        "paid_on": "Payée le {date}",
        "pour_acquit": "Pour acquit",
        "payment_method": "Moyen de paiement",
        "reference": "Référence",
        "earlier_payments": "Acomptes reçus",
        "nature": "Nature de l'opération",
        "goods": "Livraison de biens",
        "services": "Prestation de services",
        "mixed": "Livraison de biens et prestation de services",
        "exemptions": "Mentions TVA",
        "vat_in_eur": "Montant de la TVA en euros : {amount} (1 {currency} = {rate} EUR{source})",
        "rate_source": " ; {source}",
        "page": "Page",
        "verify": "Vérifier ce document",
        "capital": "au capital de {amount}",
        "rcs": "RCS {city} {siren}",
        "penalty": "En cas de retard de paiement, pénalités au taux de {rate}.",
        "indemnity": "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : {amount}.",
        "paid_terms": "Facture acquittée le {date} ({method}).",
        "transfer": "Virement",
        "card": "Carte bancaire",
        "check": "Chèque",
        "cash": "Espèces",
        "direct_debit": "Prélèvement",
        "other": "Autre",
        "filename": "facture-acquittee",
        "credit_title": "Facture d'avoir",
        "credit_filename": "avoir",
        "credits_invoice": "Avoir sur la facture n° {number} du {date}",
        "reason": "Motif",
        "refund": "Remboursement",
        "cancellation": "Annulation",
        "refunded_on": "Remboursé le {date}",
        "refunds": "Remboursements",
        "refunded_total": "Montant remboursé",
        "owed_total": "Montant dû au client",
        "due_date": "Date d'échéance",
        "payments": "Règlements",
        "due_terms": "Échéance : {date}.",
        "credit_terms": "Avoir remboursé le {date} ({method}).",
        "credit_open_terms": "Avoir non remboursé à ce jour : montant à rembourser au client ou à déduire "
        "de son prochain règlement.",
        "penalty_b2c": "Client non professionnel : pénalités de retard de l'article L441-10 du Code de commerce "
        "non applicables.",
        "indemnity_b2c": "Client non professionnel : pas d'indemnité forfaitaire pour frais de recouvrement.",
    },
    "en": {
        "title": "Paid invoice",
        "stamp": "PAID INVOICE",
        "number": "Invoice no.",
        "number_short": "no.",
        "credit_number": "Credit note no.",
        "issue_date": "Issue date",
        "supply_date": "Date of supply",
        "seller": "Seller",
        "buyer": "Customer",
        "siren": "SIREN",
        "siret": "SIRET",
        "vat_number": "VAT number",
        "ape": "APE code",
        "description": "Description",
        "quantity": "Qty",
        "unit_price": "Unit price excl. VAT",
        "discount": "Discount",
        "vat_rate": "VAT",
        "line_total": "Total excl. VAT",
        "line": "Line",
        "net_total": "Total excl. VAT",
        "vat_of": "VAT {rate}",
        "vat_base": "on {base}",
        "vat_total": "Total VAT",
        "gross_total": "Total incl. VAT",
        "paid_total": "Amount paid",
        "balance": "Balance due",
        "paid_on": "Paid on {date}",
        "pour_acquit": "Pour acquit (received with thanks)",
        "payment_method": "Payment method",
        "reference": "Reference",
        "earlier_payments": "Earlier payments",
        "nature": "Nature of the operation",
        "goods": "Supply of goods",
        "services": "Supply of services",
        "mixed": "Supply of goods and services",
        "exemptions": "VAT notes",
        "vat_in_eur": "VAT amount in euros: {amount} (1 {currency} = {rate} EUR{source})",
        "rate_source": "; {source}",
        "page": "Page",
        "verify": "Verify this document",
        "capital": "with a share capital of {amount}",
        "rcs": "RCS {city} {siren}",
        "penalty": "Late payment penalties: {rate}.",
        "indemnity": "Fixed indemnity for recovery costs in case of late payment: {amount}.",
        "paid_terms": "Invoice paid on {date} ({method}).",
        "transfer": "Bank transfer",
        "card": "Card",
        "check": "Cheque",
        "cash": "Cash",
        "direct_debit": "Direct debit",
        "other": "Other",
        "filename": "paid-invoice",
        "credit_title": "Credit note",
        "credit_filename": "credit-note",
        "credits_invoice": "Credit note for invoice no. {number} of {date}",
        "reason": "Reason",
        "refund": "Refund",
        "cancellation": "Cancellation",
        "refunded_on": "Refunded on {date}",
        "refunds": "Refunds",
        "refunded_total": "Amount refunded",
        "owed_total": "Amount owed to the customer",
        "due_date": "Due date",
        "payments": "Payments",
        "due_terms": "Due date: {date}.",
        "credit_terms": "Credit note refunded on {date} ({method}).",
        "credit_open_terms": "Credit not refunded yet: the amount is to be repaid to the customer or deducted "
        "from their next payment.",
        "penalty_b2c": "Consumer customer: the late payment penalties of article L441-10 of the French "
        "commercial code do not apply.",
        "indemnity_b2c": "Consumer customer: no fixed indemnity for recovery costs.",
    },
}

_LOCALES = {"fr": "fr_FR", "en": "en_GB"}
_DATE_FORMATS = {"fr": "dd/MM/yyyy", "en": "d MMMM yyyy"}


class Wording:
    """Labels, legal sentences and Babel formatting for one language."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.locale = _LOCALES[language]
        self.labels = LABELS[language]

    def text(self, key: str, **values: str) -> str:
        return self.labels[key].format(**values) if values else self.labels[key]

    def money(self, value: Decimal, currency: str) -> str:
        return format_currency(value, currency, locale=self.locale)

    def number(self, value: Decimal) -> str:
        return format_decimal(value.normalize(), locale=self.locale, decimal_quantization=False)

    def rate(self, value: Decimal) -> str:
        # French typography puts a (narrow no-break) space before "%".
        sep = "\u202f" if self.language == "fr" else ""
        return f"{self.number(value)}{sep}%"

    def day(self, value: date) -> str:
        return format_date(value, _DATE_FORMATS[self.language], locale=self.locale)

    def method(self, method: PaymentMethod) -> str:
        return self.labels[method.value]

    def seller_legal_line(self, seller: Seller) -> str:
        """'SAS au capital de 10 000,00 € · RCS Paris 123 456 789' (BT-33 and the footer)."""
        parts = [seller.legal_form]
        if seller.share_capital is not None:
            parts.append(self.text("capital", amount=self.money(seller.share_capital, "EUR")))
        head = " ".join(p for p in parts if p)
        if seller.rcs_city:
            return f"{head} · " + self.text("rcs", city=seller.rcs_city, siren=_spaced(seller.siren))
        return head

    def penalty_note(self, seller: Seller, business: bool = True) -> str:
        """The late-payment penalty mention (C. com. L441-10): between professionals only."""
        return self.text("penalty", rate=seller.late_penalty_rate) if business else self.text("penalty_b2c")

    def indemnity_note(self, seller: Seller, business: bool = True) -> str:
        """The 40 € recovery indemnity (C. com. L441-10, D441-5): owed by a professional buyer only."""
        if not business:
            return self.text("indemnity_b2c")
        return self.text("indemnity", amount=self.money(seller.recovery_indemnity, "EUR"))

    def payment_means_text(self, payment: Payment) -> str:
        method = self.method(payment.method)
        return f"{method} {payment.reference}".strip()

    def paid_terms(self, paid_on: date, payment: Payment) -> str:
        return self.text("paid_terms", date=self.day(paid_on), method=self.payment_means_text(payment))


def _spaced(siren: str) -> str:
    """SIREN grouped by three, as it is printed on letterheads."""
    return " ".join(siren[i : i + 3] for i in range(0, len(siren), 3))
