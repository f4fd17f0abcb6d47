"""The Factur-X CII XML of a paid invoice or a credit note, built with the factur-x library.

``facturx.generate_cii_xml`` turns a dict keyed by EN16931 business terms
(BT-/BG- ids) into the CII tree with lxml, so this module only maps the
invoice onto those terms.  Every amount comes from the invoice model
(``vat_breakdown``, ``net_total``, ``vat_total``, ``gross_total``): the XML and
the printed page share one arithmetic.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from facturx import generate_cii_xml, xml_check_xsd
from lxml import etree

from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Invoice, Line, PaymentMethod, VatBucket
from pouracquit.common.money import round_cents

from .context import PaidReceipt, credit_reason, local_day
from .mentions import MissingMention, VatTreatment, exchange_rate, is_business, vat_treatment
from .settings import Seller
from .wording import Wording

# BT-23 "cadre de facturation" (French CTC, BR-FR-08): 2 = issued already paid (settled),
# 1 = an ordinary document still to be settled: a credit note whose money is still owed.
PAID_FRAME = {"goods": "B2", "services": "S2", "mixed": "M2"}
OPEN_FRAME = {"goods": "B1", "services": "S1", "mixed": "M1"}
# BT-3, UNTDID 1001: 380 commercial invoice, 381 credit note.
COMMERCIAL_INVOICE, CREDIT_NOTE = "380", "381"

# BT-81, UNCL 4461.  ZZZ (mutually defined) is in the EN16931 code list.
PAYMENT_MEANS = {
    PaymentMethod.TRANSFER: "30",
    PaymentMethod.CARD: "48",
    PaymentMethod.CHECK: "20",
    PaymentMethod.CASH: "10",
    PaymentMethod.DIRECT_DEBIT: "59",
    PaymentMethod.OTHER: "ZZZ",
}

# A refund by transfer went to the customer's account, which pouracquit does not know:
# 30 would require it (BR-61, CII-SR-470), so the refund is "42, payment to bank account".
REFUND_MEANS = PAYMENT_MEANS | {PaymentMethod.TRANSFER: "42"}

BASIC_GUIDELINE = "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic"
_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
# Terms the BASIC XSD does not know; the EN16931 tree is trimmed of them.
_NOT_IN_BASIC = ("ram:DefinedTradeContact", "ram:Description", "ram:Information", "ram:BuyerReference")


def amount(value: Decimal) -> str:
    """A monetary amount as EN16931 wants it: a point, exactly two decimals."""
    return f"{round_cents(value):.2f}"


def percent(rate: Decimal) -> str:
    return f"{rate:.2f}"


def quantity(value: Decimal) -> str:
    """BT-129 with at most 4 decimals (BR-FR-DEC-02); more would change the line total."""
    if value != value.quantize(Decimal("0.0001")):
        raise BadRecord(f"quantity {value} has more than 4 decimals")
    return f"{value.normalize():f}"


def price(value: Decimal) -> str:
    """BT-146 with at most 6 decimals (BR-FR-DEC-03), at least 2."""
    if value != value.quantize(Decimal("0.000001")):
        raise BadRecord(f"unit price {value} has more than 6 decimals")
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"{value.normalize():f}"


def _address(address: Any) -> dict[str, str]:
    return {
        "addr_l1": address.line1,
        "addr_l2": address.line2,
        "postcode": address.postal_code,
        "city": address.city,
        "country_code": address.country.upper(),
    }


def _seller(seller: Seller, wording: Wording) -> dict[str, Any]:
    party: dict[str, Any] = {
        "name": seller.name,
        "identifiers": {"0009": seller.siret},  # ISO 6523 ICD 0009 = SIRET
        "legal_identifier": seller.siren,
        "legal_identifier_schemeid": "0002",  # ICD 0002 = SIRENE (BR-FR-10)
        "legal_info": wording.seller_legal_line(seller),
        # French CTC routing address: the SIREN in the directory scheme 0225 (BR-FR-13)
        "einvoicing_addr": seller.siren,
        "einvoicing_addr_schemeid": "0225",
        **_address(seller.address),
    }
    if seller.vat_number:
        party["vat_identifier"] = seller.vat_number
    else:  # a franchise seller has no VAT number; BR-E-02 then needs BT-32
        party["tax_identifier"] = seller.siren
    if seller.email or seller.phone:
        party["contacts"] = [{"email": seller.email, "phone": seller.phone}]
    return party


def _buyer(invoice: Invoice) -> dict[str, Any]:
    buyer = invoice.customer
    party: dict[str, Any] = {"name": buyer.name, **_address(buyer.address)}
    if buyer.siren:
        party |= {"legal_identifier": buyer.siren, "legal_identifier_schemeid": "0002"}
    if buyer.vat_number:
        party["vat_identifier"] = buyer.vat_number.replace(" ", "").upper()
    # BT-49 is mandatory for the French CTC (BR-FR-12): the SIREN directory address
    # for a French company, otherwise the customer's e-mail (scheme EM).
    if buyer.siren:
        party |= {"einvoicing_addr": buyer.siren, "einvoicing_addr_schemeid": "0225"}
    elif buyer.email:
        party |= {"einvoicing_addr": buyer.email, "einvoicing_addr_schemeid": "EM"}
    else:
        raise MissingMention("customer.email", "the Factur-X buyer electronic address (BT-49) needs it")
    return party


def _line(index: int, line: Line, treatment: VatTreatment, wording: Wording) -> dict[str, Any]:
    out: dict[str, Any] = {
        "BT-126": str(index),
        "BT-153": line.description[:500] or wording.text("line"),
        "BT-129": quantity(line.quantity),
        "BT-130": "C62",  # "one": CRM lines carry no unit of measure
        "BT-146": price(line.unit_price),
        "BT-131": amount(line.net),
        "BT-151": treatment.category,
        "BT-152": percent(line.vat_rate),
    }
    if line.sku:
        out["BT-155"] = line.sku
    if line.discount:
        out["BG-27"] = [{"amount": amount(line.discount), "reason": wording.text("discount"), "reason_code": "95"}]
    return out


def _vat_rows(invoice: Invoice, language: str) -> list[dict[str, Any]]:
    """BG-23 rows; exempt buckets of one category merge (BR-E-08 sums per category)."""
    merged: dict[tuple[str, Decimal], tuple[VatTreatment, list[VatBucket]]] = {}
    for bucket in invoice.vat_breakdown():
        t = vat_treatment(bucket.rate, bucket.exemption)
        merged.setdefault((t.category, bucket.rate), (t, []))[1].append(bucket)
    rows = []
    for (category, rate), (t, buckets) in merged.items():
        row = {
            "BT-116": amount(sum((b.base for b in buckets), Decimal("0"))),
            "BT-117": amount(sum((b.tax for b in buckets), Decimal("0"))),
            "BT-118": category,
            "BT-119": percent(rate),
        }
        if category != "S":
            texts = dict.fromkeys(vat_treatment(b.rate, b.exemption).wording(language) for b in buckets)
            row["BT-120"] = " ; ".join(texts)[:1000]
            if len(buckets) == 1 and t.reason_code:
                row["BT-121"] = t.reason_code
        rows.append(row)
    return rows


def build_data(receipt: PaidReceipt, seller: Seller, wording: Wording) -> dict[str, Any]:
    """The factur-x data dict (EN16931 business terms) of a paid invoice or of a credit note."""
    invoice, credit = receipt.invoice, receipt.credits
    payment = invoice.last_payment  # None only for a credit note not refunded yet
    lang = wording.language
    business = is_business(invoice)
    treatments = [vat_treatment(line.vat_rate, line.vat_exemption) for line in invoice.lines]
    gross = invoice.gross_total.amount
    # BR-FR-05 makes the PMD, PMT and AAB notes mandatory on every document, a consumer's
    # and a credit note's included; for a consumer they say the B2B rules do not apply.
    notes = [
        {"BT-21": "PMD", "BT-22": wording.penalty_note(seller, business)},
        {"BT-21": "PMT", "BT-22": wording.indemnity_note(seller, business)},
        {"BT-21": "AAB", "BT-22": seller.discount_terms},
        {"BT-21": "BAR", "BT-22": _bar(invoice)},
    ]
    if credit is not None:
        notes.append({"BT-21": "AAI", "BT-22": credit_reason(receipt, wording)})
    data: dict[str, Any] = {
        "BT-1": receipt.number,
        "BT-2": receipt.issued_on,
        "BT-3": CREDIT_NOTE if credit is not None else COMMERCIAL_INVOICE,
        "BT-5": invoice.currency,
        "BT-23": (PAID_FRAME if payment is not None else OPEN_FRAME)[invoice.nature],
        "BT-24": "urn:cen.eu:en16931:2017",
        "BG-1": notes,
        "BG-4": _seller(seller, wording),
        "BG-7": _buyer(invoice),
        "BT-72": invoice.supply_date or invoice.issue_date,
        "BG-23": _vat_rows(invoice, lang),
        "BG-25": [
            _line(i, line, t, wording) for i, (line, t) in enumerate(zip(invoice.lines, treatments, strict=True), 1)
        ],
        "BT-106": amount(invoice.net_total.amount),
        "BT-109": amount(invoice.net_total.amount),
        "BT-110": amount(invoice.vat_total.amount),
        "BT-112": amount(gross),
    }
    if credit is not None:
        # BR-FR-CO-05: a credit note (381) names the invoice it credits, with its date.
        data["BG-3"] = [{"BT-25": credit.number, "BT-26": credit.issue_date}]
    data |= _settlement(receipt, seller, wording)
    if invoice.currency != "EUR":
        # BR-FR-CO-12: VAT accounting currency EUR with the VAT total converted.
        data["BT-6"] = "EUR"
        data["BT-111"] = amount(invoice.vat_total.amount * exchange_rate(invoice))
    if any(t.category == "K" for t in treatments):
        # BR-IC-12: an intra-community supply names the country delivered to.
        data["BG-13"] = {"name": invoice.customer.name, **_address(invoice.customer.address)}
    return data


def _settlement(receipt: PaidReceipt, seller: Seller, wording: Wording) -> dict[str, Any]:
    """BT-9, BT-20, BG-16 and BT-113/BT-115: how the document was settled.

    A settled document (a paid invoice; a credit note whose money was returned)
    uses the "already paid" frame, so BR-FR-CO-09 wants BT-113 = BT-112, BT-115 = 0
    and BT-9 = the payment date; the invoice's own due date is stated in BT-20.
    """
    invoice, credit = receipt.invoice, receipt.credits
    gross = invoice.gross_total.amount
    payment = invoice.last_payment
    if payment is None:  # a credit note not refunded: the amount is owed to the customer
        return {"BT-20": wording.text("credit_open_terms"), "BT-113": amount(Decimal("0")), "BT-115": amount(gross)}
    paid_on = local_day(payment)
    if credit is not None:
        terms = wording.text("credit_terms", date=wording.day(paid_on), method=wording.payment_means_text(payment))
    else:
        due = wording.text("due_terms", date=wording.day(invoice.due_date or receipt.issued_on))
        terms = f"{due} {wording.paid_terms(paid_on, payment)}"
    out: dict[str, Any] = {
        "BT-9": paid_on,
        "BT-20": terms,
        "BT-81": (REFUND_MEANS if credit is not None else PAYMENT_MEANS)[payment.method],
        "BT-82": wording.payment_means_text(payment)[:500],
        "BT-113": amount(gross),
        "BT-115": amount(Decimal("0")),
    }
    if payment.reference:
        out["BT-83"] = payment.reference[:140]
    # The seller's account received the transfer (BR-61); a refund went to the customer's.
    if payment.method is PaymentMethod.TRANSFER and credit is None:
        out["BT-84"] = seller.iban
        if seller.bic:
            out["BT-86"] = seller.bic
    return out


def _bar(invoice: Invoice) -> str:
    """French CTC processing note (BR-FR-20): which flow this invoice belongs to."""
    buyer = invoice.customer
    if buyer.kind == "person":
        return "B2C" if buyer.address.country.upper() == "FR" else "B2CINT"
    return "B2B" if buyer.siren else "B2BINT"


# factur-x parses the XSD anew at every check, and libxml2 schema parsing is not thread-safe:
# receipts rendered on several threads at once failed with "Document is not valid XML Schema"
# (seen in the fleet's acceptance run, about 300 times in 2,000 receipts, each retried)
_XSD_LOCK = threading.Lock()


def build_xml(data: dict[str, Any], profile: str) -> bytes:
    """Serialise the data dict to CII for ``profile`` (en16931, basic or extended), XSD-checked."""
    level = "extended" if profile == "extended" else "en16931"
    # the library mutates the dict while normalising it; hand it a copy
    xml = generate_cii_xml(dict(data), level=level, check_xsd=False, check_schematron=False)
    if profile == "basic":
        xml = _to_basic(xml)
    with _XSD_LOCK:
        xml_check_xsd(xml, flavor="factur-x", level=profile)
    return xml


def _to_basic(xml: bytes) -> bytes:
    """Re-label an EN16931 tree as BASIC and drop the few terms BASIC lacks."""
    root = etree.fromstring(xml)
    ns = {"ram": _RAM, "rsm": _RSM}
    guideline = root.find("rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", ns)
    guideline.text = BASIC_GUIDELINE
    for party in ("ram:SellerTradeParty", "ram:BuyerTradeParty"):
        for tag in _NOT_IN_BASIC:
            for el in root.iterfind(f".//{party}/{tag}", ns):
                el.getparent().remove(el)
    for tag in ("ram:Information", "ram:PayeeSpecifiedCreditorFinancialInstitution"):
        for el in root.iterfind(f".//ram:SpecifiedTradeSettlementPaymentMeans/{tag}", ns):
            el.getparent().remove(el)
    for el in root.iterfind(".//ram:SpecifiedTradeProduct/ram:SellerAssignedID", ns):
        el.getparent().remove(el)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
