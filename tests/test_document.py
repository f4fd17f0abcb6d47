"""Rendered receipts pass the official EN16931 + French CTC schematrons and print every mention.

Every check goes through the project's own validator
(pouracquit.core.document.validate, the one ``pouracquit check`` runs), so
what passes here passes the command line check too.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdf
import pytest
from doc_samples import COMPANY, PERSON, RAM
from facturx import get_facturx_xml_from_pdf
from lxml import etree
from support import SELLER

from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Address, Invoice, InvoiceStatus, Line, Party, Payment, PaymentMethod
from pouracquit.common.money import Money
from pouracquit.core.document import DocumentSettings, MissingMention, PaidReceipt, Renderer
from pouracquit.core.document.validate import validate_pdf


def invoice(
    lines: list[Line] | None = None,
    customer: Party = COMPANY,
    currency: str = "EUR",
    method: PaymentMethod = PaymentMethod.TRANSFER,
    deposit: str = "",
    **extra: Any,
) -> Invoice:
    """A fully paid invoice; ``deposit`` adds an earlier partial payment."""
    lines = lines or [Line(description="Audit", quantity="2", unit_price="450", vat_rate="20")]
    base: dict[str, Any] = (
        dict(
            source_id="src-1",
            number="F-2026-0001",
            currency=currency,
            issue_date=date(2026, 1, 10),
            customer=customer,
            lines=tuple(lines),
            status=InvoiceStatus.PAID,
            modified_at=datetime(2026, 1, 20, tzinfo=UTC),
        )
        | extra
    )
    gross = Invoice(**base, amount_paid=Money(amount="0", currency=currency)).gross_total
    payments = [
        Payment(amount=gross, paid_at=datetime(2026, 1, 15, 23, 30, tzinfo=UTC), method=method, reference="VIR-8842")
    ]
    if deposit:
        first = Money(amount=deposit, currency=currency)
        payments = [
            Payment(amount=first, paid_at=datetime(2026, 1, 11, 9, tzinfo=UTC), method=PaymentMethod.CARD),
            Payment(amount=gross - first, paid_at=payments[0].paid_at, method=method, reference="VIR-8842"),
        ]
    return Invoice(**base, amount_paid=gross, payments=tuple(payments))


def receipt(inv: Invoice, number: str = "F-2026-0001") -> PaidReceipt:
    return PaidReceipt(invoice=inv, number=number, issued_on=date(2026, 1, 16), receipt_id="rcpt-1")


@pytest.fixture(scope="module")
def checker() -> Callable[[bytes], list[str]]:
    """XSD, the profile's EN16931 schematron, FR-CTC, and fully paid: each broken rule as one string."""
    return lambda pdf: [str(v) for v in validate_pdf(pdf, paid=True)]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(SELLER, DocumentSettings(verify_base_url="https://receipts.example", thank_you="Merci !"))


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def xml_of(pdf: bytes) -> etree._Element:
    return etree.fromstring(get_facturx_xml_from_pdf(pdf, check_xsd=False)[1])


def render_valid(renderer: Renderer, checker: Callable[[bytes], list[str]], inv: Invoice) -> bytes:
    pdf = renderer.render(receipt(inv))
    assert checker(pdf) == []
    return pdf


@pytest.mark.parametrize("rate", ["20", "10", "5.5", "2.1"])
def test_each_french_rate_passes(renderer: Renderer, checker: Callable[[bytes], list[str]], rate: str) -> None:
    inv = invoice([Line(description="Conseil", quantity="3", unit_price="99.99", vat_rate=rate)])
    pdf = render_valid(renderer, checker, inv)
    text = text_of(pdf)
    for mention in ("Facture acquittée", "Payée le 16/01/2026", "Pour acquit", "Prestation de services"):
        assert mention in text
    assert xml_of(pdf).findtext(f".//{RAM}BusinessProcessSpecifiedDocumentContextParameter/{RAM}ID") == "S2"


def test_mixed_rates_goods_and_discounts(renderer: Renderer, checker: Callable[[bytes], list[str]]) -> None:
    inv = invoice(
        [
            Line(description="Clavier", quantity="3", unit_price="49.90", vat_rate="20", kind="goods", discount="10"),
            Line(description="Livre", quantity="1", unit_price="23.70", vat_rate="5.5", kind="goods"),
            Line(description="Installation", quantity="1.5", unit_price="80", vat_rate="10", discount="4.5"),
        ],
        deposit="50",
        method=PaymentMethod.CHECK,
    )
    pdf = render_valid(renderer, checker, inv)
    text = text_of(pdf)
    assert "Livraison de biens et prestation de services" in text
    assert "Règlements".upper() in text.upper() and "50,00" in text  # every payment listed, the deposit too
    tree = xml_of(pdf)
    assert tree.findtext(f".//{RAM}BusinessProcessSpecifiedDocumentContextParameter/{RAM}ID") == "M2"
    assert tree.findtext(f".//{RAM}SpecifiedTradeSettlementPaymentMeans/{RAM}TypeCode") == "20"


def test_exempt_lines_print_legal_wording(renderer: Renderer, checker: Callable[[bytes], list[str]]) -> None:
    inv = invoice(
        [
            Line(
                description="Formation", quantity="1", unit_price="1200", vat_rate="0", vat_exemption="VATEX-EU-132-1I"
            ),
            Line(description="Conseil", quantity="1", unit_price="300", vat_rate="20"),
            Line(
                description="Don",
                quantity="1",
                unit_price="10",
                vat_rate="0",
                vat_exemption="Exonération, art. 261 du CGI",
            ),
        ]
    )
    pdf = render_valid(renderer, checker, inv)
    text = " ".join(text_of(pdf).split())
    assert "Exonération de TVA, article 132 1i de la directive 2006/112/CE" in text
    assert "Exonération, art. 261 du CGI" in text
    assert xml_of(pdf).findtext(f".//{RAM}ApplicableTradeTax/{RAM}ExemptionReason")


def test_franchise_seller_without_vat_number(checker: Callable[[bytes], list[str]]) -> None:
    seller = SELLER.model_copy(update={"vat_number": "", "legal_form": "EI", "share_capital": None, "rcs_city": ""})
    inv = invoice(
        [Line(description="Cours", quantity="2", unit_price="40", vat_rate="0", vat_exemption="VATEX-FR-FRANCHISE")]
    )
    pdf = Renderer(seller, DocumentSettings()).render(receipt(inv))
    assert checker(pdf) == []
    assert "TVA non applicable, art. 293 B du CGI" in text_of(pdf)


def test_usd_invoice_states_vat_in_euros(renderer: Renderer, checker: Callable[[bytes], list[str]]) -> None:
    inv = invoice(currency="USD", exchange_rate="0.92", exchange_rate_source="BCE, taux de référence du 2026-01-09")
    pdf = render_valid(renderer, checker, inv)
    tree = xml_of(pdf)
    eur = [e.text for e in tree.iter(f"{RAM}TaxTotalAmount") if e.get("currencyID") == "EUR"]
    assert eur == ["165.60"]  # 180.00 USD of VAT at 0.92
    assert "165,60\xa0€" in text_of(pdf)


def test_foreign_currency_without_rate_is_a_bad_record(renderer: Renderer) -> None:
    with pytest.raises(BadRecord, match="exchange rate of this USD invoice could not be determined"):
        renderer.render(receipt(invoice(currency="USD")))


def test_private_buyer(renderer: Renderer, checker: Callable[[bytes], list[str]]) -> None:
    pdf = render_valid(renderer, checker, invoice(customer=PERSON, method=PaymentMethod.CARD))
    assert "Zoë Lefèvre" in text_of(pdf)


def test_company_buyer_siren_in_xml_and_print(renderer: Renderer, checker: Callable[[bytes], list[str]]) -> None:
    pdf = render_valid(renderer, checker, invoice())
    buyer = xml_of(pdf).find(f".//{RAM}BuyerTradeParty")
    assert buyer.findtext(f"{RAM}SpecifiedLegalOrganization/{RAM}ID") == "552100554"
    assert "SIREN 552 100 554" in text_of(pdf)


def test_forty_lines_spill_onto_two_pages(renderer: Renderer, checker: Callable[[bytes], list[str]]) -> None:
    lines = [Line(description=f"Article n°{i}", quantity="1", unit_price="12.5", vat_rate="20") for i in range(40)]
    pdf = render_valid(renderer, checker, invoice(lines))
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == 2
    assert "Page 1/2" in pages[0].extract_text() and "Page 2/2" in pages[1].extract_text()
    assert "Désignation" in pages[1].extract_text()  # the table header repeats


def test_non_ascii_everywhere(renderer: Renderer, checker: Callable[[bytes], list[str]]) -> None:
    buyer = Party(
        name="Łukasz Ødegård & Søn — Ελληνικά",
        address=Address(line1="Straße 7", postal_code="00-001", city="Łódź", country="PL"),
        vat_number="PL5260250274",
        email="lukasz@example.pl",
    )
    pdf = render_valid(
        renderer,
        checker,
        invoice([Line(description="Café crème ☕ naïve", quantity="1", unit_price="3", vat_rate="10")], customer=buyer),
    )
    text = text_of(pdf)
    assert "Łukasz Ødegård & Søn" in text and "Łódź" in text and "Café crème" in text


def test_markup_in_every_field_prints_as_text(checker: Callable[[bytes], list[str]]) -> None:
    evil = '<script>alert(1)</script><img src="http://evil.example/x.png">'
    settings = DocumentSettings(thank_you=evil, terms=evil, footer=evil)
    seller = SELLER.model_copy(update={"name": f"Vendeur {evil}", "discount_terms": evil})
    buyer = Party(
        name=f"Client {evil}",
        kind="person",
        email="a@b.example",
        address=Address(line1=evil, postal_code="75001", city=evil),
    )
    inv = invoice([Line(description=evil, quantity="1", unit_price="10", vat_rate="20", sku=evil)], customer=buyer)
    inv = inv.model_copy(update={"payments": (inv.payments[0].model_copy(update={"reference": evil}),)})
    pdf = Renderer(seller, settings).render(receipt(inv))
    assert checker(pdf) == []
    text = text_of(pdf)
    assert text.count("<script>") >= 8
    assert b"/JavaScript" not in pdf and b"/JS " not in pdf


def test_missing_seller_siren(renderer: Renderer) -> None:
    r = Renderer(SELLER.model_copy(update={"siren": "", "siret": ""}), DocumentSettings())
    with pytest.raises(MissingMention, match=r"seller\.siren") as err:
        r.render(receipt(invoice()))
    assert err.value.field == "seller.siren"


def test_missing_buyer_name_and_siren(renderer: Renderer) -> None:
    nameless = Party.model_construct(**(COMPANY.model_dump() | {"name": "", "address": COMPANY.address}))
    with pytest.raises(MissingMention, match=r"customer\.name"):
        renderer.render(receipt(invoice(customer=nameless)))
    with pytest.raises(MissingMention, match=r"customer\.siren"):
        renderer.render(receipt(invoice(customer=COMPANY.model_copy(update={"siren": ""}))))


def test_unpaid_invoice_is_refused(renderer: Renderer) -> None:
    inv = invoice()
    open_inv = inv.model_copy(update={"amount_paid": Money(amount="1", currency="EUR"), "status": InvoiceStatus.OPEN})
    with pytest.raises(BadRecord, match="not fully paid"):
        renderer.render(receipt(open_inv))


def test_printed_totals_equal_xml_totals(renderer: Renderer) -> None:
    inv = invoice(
        [
            Line(description="A", quantity="7", unit_price="13.33", vat_rate="20"),
            Line(description="B", quantity="3", unit_price="0.99", vat_rate="5.5"),
        ]
    )
    pdf = renderer.render(receipt(inv))
    summary = xml_of(pdf).find(f".//{RAM}SpecifiedTradeSettlementHeaderMonetarySummation")
    text = text_of(pdf)
    for tag in ("LineTotalAmount", "TaxTotalAmount", "GrandTotalAmount", "TotalPrepaidAmount"):
        value = Decimal(summary.findtext(f"{RAM}{tag}"))
        printed = renderer.wording.money(value, "EUR")
        assert printed in text, f"{tag} {value} not printed as {printed!r}"
    assert Decimal(summary.findtext(f"{RAM}GrandTotalAmount")) == inv.gross_total.amount


def test_english_variant(checker: Callable[[bytes], list[str]]) -> None:
    r = Renderer(SELLER, DocumentSettings(language="en"))
    pdf = r.render(receipt(invoice()))
    assert checker(pdf) == []
    text = text_of(pdf)
    assert "PAID INVOICE" in text and "Paid on 16 January 2026" in text and "Pour acquit" in text
    assert r.filename(receipt(invoice())) == "paid-invoice-F-2026-0001.pdf"


@pytest.mark.parametrize("profile", ["basic", "extended"])
def test_other_profiles(checker: Callable[[bytes], list[str]], profile: str) -> None:
    pdf = Renderer(SELLER, DocumentSettings(profile=profile)).render(receipt(invoice(deposit="100")))
    assert checker(pdf) == []
    guideline = xml_of(pdf).findtext(f".//{RAM}GuidelineSpecifiedDocumentContextParameter/{RAM}ID")
    assert guideline.endswith(profile)


def test_filename_is_sanitised(renderer: Renderer) -> None:
    rec = receipt(invoice(), number="F/2026/0001")
    assert renderer.filename(rec) == "facture-acquittee-F-2026-0001.pdf"
    assert renderer.filename(replace(rec, number="F-2026-0001")) == "facture-acquittee-F-2026-0001.pdf"


def test_bad_receipt_number_is_refused(renderer: Renderer) -> None:
    with pytest.raises(BadRecord, match="receipt number"):
        renderer.render(receipt(invoice(), number="F 2026 0001"))


def test_a_user_template_prints_crm_fields_as_tokens(tmp_path: Path) -> None:
    """A template directory overrides the built-in one; the CRM record's mapped
    properties are {{ fields.<property> }}, escaped like every other value."""
    base = Path(__file__).resolve().parents[1] / "core" / "document" / "templates" / "receipt.html"
    custom = base.read_text(encoding="utf-8").replace(
        "</body>", '<p class="po">Bon de commande : {{ fields.po_number }}</p></body>')
    (tmp_path / "receipt.html").write_text(custom, encoding="utf-8")
    custom_renderer = Renderer(SELLER, DocumentSettings(template_dir=tmp_path))
    pdf = custom_renderer.render(receipt(invoice(properties={"po_number": "PO-77<b>"})))
    assert "Bon de commande : PO-77<b>" in text_of(pdf)
