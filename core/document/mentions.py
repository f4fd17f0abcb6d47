"""What French law makes an invoice print, and the check that it is all there.

One place decides the legal wording (VAT exemptions, nature of the operation)
so the printed page and the Factur-X XML can never say different things.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from pouracquit.common.errors import BadRecord
from pouracquit.common.identifiers import check_buyer_is_not_seller
from pouracquit.common.model import Invoice, PaymentMethod

from .settings import Seller


class MissingMention(BadRecord):
    """A value the document must print is missing; the message names the field.

    The document is never produced with a blank where a legal mention belongs.
    """

    def __init__(self, field: str, why: str = "") -> None:
        self.field, self.why = field, why
        super().__init__(f"missing mandatory mention {field}" + (f": {why}" if why else ""))

    def __reduce__(self) -> tuple[type[MissingMention], tuple[str, str]]:
        # rebuilt from its fields when it comes back from a render worker process
        return (MissingMention, (self.field, self.why))


# Legal forms of individual entrepreneurs: no share capital, and RCS only if registered.
_SOLE_TRADERS = frozenset({"EI", "EIRL", "MICRO-ENTREPRISE", "MICRO-ENTREPRENEUR", "AUTO-ENTREPRENEUR"})

# VATEX code -> (EN16931 VAT category, French wording, English wording).
_VATEX: dict[str, tuple[str, str, str]] = {
    "VATEX-FR-FRANCHISE": (
        "E",
        "TVA non applicable, art. 293 B du CGI",
        "VAT not applicable, article 293 B of the French tax code (CGI)",
    ),
    "VATEX-EU-IC": (
        "K",
        "Exonération de TVA, article 262 ter I du CGI",
        "VAT exempt intra-community supply, article 262 ter I of the French tax code (CGI)",
    ),
    "VATEX-EU-AE": (
        "AE",
        "Autoliquidation, article 283-2 du CGI",
        "Reverse charge, article 283-2 of the French tax code (CGI)",
    ),
    "VATEX-EU-G": (
        "G",
        "Exonération de TVA, article 262 I du CGI",
        "VAT exempt export outside the EU, article 262 I of the French tax code (CGI)",
    ),
}
# Where a 0 % line's reason comes from: the line's exemption property, mapped per CRM.
_SET_EXEMPTION = (
    "set the line's VAT exemption (key vat_exemption under [line_item] in mappings/hubspot.toml or "
    "mappings/zoho.toml, under [line] in mappings/salesforce.toml) to a code such as VATEX-FR-FRANCHISE, "
    "VATEX-EU-IC, VATEX-EU-AE, VATEX-EU-G or the exemption's legal wording"
)
_DIRECTIVE_CODE = re.compile(r"VATEX-EU-(\d+)(?:-?([A-Z0-9]+))?", re.IGNORECASE)


@dataclass(frozen=True)
class VatTreatment:
    """How one VAT bucket is coded in Factur-X and worded on paper."""

    category: str  # S, E, K, AE, G (UNCL 5305 as EN16931 uses it)
    reason_code: str  # BT-121, a VATEX code, or ""
    wording_fr: str  # BT-120 and the printed mention, or ""
    wording_en: str

    def wording(self, language: str) -> str:
        return self.wording_en if language == "en" else self.wording_fr


def vat_treatment(rate: Decimal, exemption: str) -> VatTreatment:
    """Classify a (rate, exemption) pair; an exemption text is printed as given.

    Raises BadRecord when the pair contradicts itself (a rate with an exemption).
    """
    exemption = exemption.strip()
    if not exemption:
        if rate > 0:
            return VatTreatment("S", "", "", "")
        # Z "zero rated" has no place in French law for an ordinary sale: a 0 % line
        # is exempt, reverse-charged or outside the scope, and must say which.
        raise BadRecord(f"a line charges 0 % VAT without an exemption reason; {_SET_EXEMPTION}")
    if rate != 0:
        raise BadRecord(f"a line is VAT exempt ({exemption!r}) but charges {rate} % VAT")
    code = exemption.upper()
    if code in _VATEX:
        category, fr, en = _VATEX[code]
        return VatTreatment(category, code, fr, en)
    if m := _DIRECTIVE_CODE.fullmatch(code):
        article = m.group(1) + (f" {m.group(2).lower()}" if m.group(2) else "")
        return VatTreatment(
            "E",
            code,
            f"Exonération de TVA, article {article} de la directive 2006/112/CE",
            f"VAT exempt, article {article} of Directive 2006/112/EC",
        )
    return VatTreatment("E", "", exemption, exemption)


def _company_form(legal_form: str) -> bool:
    return legal_form.strip().upper() not in _SOLE_TRADERS


def require_mentions(seller: Seller, invoice: Invoice, *, credit_note: bool = False) -> None:
    """Raise MissingMention (or BadRecord) for the first mandatory value the document lacks.

    A credit note may credit an invoice without money returned yet (a
    cancellation), and a refund goes to the customer's account, not the seller's.
    """
    required = {
        "seller.name": seller.name,
        "seller.legal_form": seller.legal_form,
        "seller.address.line1": seller.address.line1,
        "seller.address.postal_code": seller.address.postal_code,
        "seller.address.city": seller.address.city,
        "seller.siren": seller.siren,
        "seller.siret": seller.siret,
        "seller.ape": seller.ape,
    }
    if _company_form(seller.legal_form):
        required["seller.rcs_city"] = seller.rcs_city
        required["seller.share_capital"] = "" if seller.share_capital is None else "set"
    franchise = all(line.vat_exemption.upper() == "VATEX-FR-FRANCHISE" for line in invoice.lines)
    if not franchise:  # a seller under the franchise has no VAT number to print
        required["seller.vat_number"] = seller.vat_number
    buyer = invoice.customer
    address = buyer.address
    required |= {
        "customer.name": buyer.name,
        "customer.address.line1": address.line1,
        "customer.address.postal_code": address.postal_code,
        "customer.address.city": address.city,
        "customer.address.country": address.country,
    }
    if buyer.kind == "company" and address.country.upper() == "FR":
        required["customer.siren"] = buyer.siren
    for field, value in required.items():
        if not str(value).strip():
            raise MissingMention(field)
    if buyer.siren and not re.fullmatch(r"\d{9}", buyer.siren):
        raise BadRecord(f"customer.siren must be 9 digits, got {buyer.siren!r}")
    check_buyer_is_not_seller(seller.siren, buyer.siren, buyer.vat_number)
    for index, line in enumerate(invoice.lines, 1):
        if line.vat_rate == 0 and not line.vat_exemption.strip():
            raise BadRecord(f"line {index} ({line.description[:60]!r}) charges 0 % VAT without an exemption "
                            f"reason; {_SET_EXEMPTION}")
    categories = {vat_treatment(b.rate, b.exemption).category for b in invoice.vat_breakdown()}
    if categories & {"K", "AE"} and not buyer.vat_number:
        raise MissingMention("customer.vat_number", "required for an intra-EU or reverse-charge operation")
    if not invoice.payments and not credit_note:
        raise MissingMention("invoice.payments", "a paid invoice states its payment date")
    exchange_rate(invoice)
    transfer = any(p.method is PaymentMethod.TRANSFER for p in invoice.payments)
    if transfer and not credit_note and not seller.iban:
        raise MissingMention("seller.iban", "a payment by transfer names the account it was paid to")


def is_business(invoice: Invoice) -> bool:
    """A company buyer: the professional late-payment mentions apply (C. com. L441-10)."""
    return invoice.customer.kind == "company"


def exchange_rate(invoice: Invoice) -> Decimal:
    """Euros for one unit of the invoice currency (1 for EUR invoices).

    The engine fills ``invoice.exchange_rate`` from the CRM or the ECB before the
    receipt is queued; a foreign-currency invoice still without one cannot state
    its VAT in euros (CGI art. 242 nonies A, BR-FR-CO-12) and is not printed.
    """
    if invoice.currency == "EUR":
        return Decimal("1")
    if invoice.exchange_rate is None:
        raise BadRecord(
            f"invoice.exchange_rate is missing: the EUR exchange rate of this {invoice.currency} invoice could not "
            "be determined (neither the CRM nor the ECB reference rates gave one); its VAT must be stated in euros "
            "(CGI art. 242 nonies A)"
        )
    return invoice.exchange_rate
