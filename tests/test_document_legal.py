"""What a French accountant or tax auditor checks on a document, each case through
the official EN16931 and French CTC schematrons: dates, payments, B2B/B2C
mentions, discounts, tax situations, credit notes and foreign currency."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pypdf
import pytest
from doc_samples import (
    AUDIT,
    COMPANY,
    EU_COMPANY,
    PERSON,
    RAM,
    RSM,
    US_COMPANY,
    checker,
    credit_note,
    flat,
    invoice,
    notes_of,
    receipt,
    text_of,
    xml_of,
)
from support import SELLER

from pouracquit.app.demo import LOCAL_VERIFY_URL, _demo_settings
from pouracquit.app.render_cmd import render_command
from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Line, PaymentMethod
from pouracquit.common.money import Money
from pouracquit.core.config import Settings
from pouracquit.core.credit import credit_invoice
from pouracquit.core.document import DocumentSettings, MissingMention, Renderer

__all__ = ["checker"]  # the module-scoped fixture, imported for pytest
Check = Callable[[bytes], list[str]]
SETTLEMENT = f"{RSM}SupplyChainTradeTransaction/{RAM}ApplicableHeaderTradeSettlement"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(SELLER, DocumentSettings())


def valid(pdf: bytes, check: Check) -> bytes:
    assert check(pdf) == []
    return pdf


def due_date_of(tree: object) -> str:
    return tree.findtext(f"{SETTLEMENT}/{RAM}SpecifiedTradePaymentTerms/{RAM}DueDateDateTime/")  # type: ignore[attr-defined]


# 1. Issue date


def test_issue_date_is_the_receipts_own_not_the_sync_or_payment_day(renderer: Renderer, checker: Check) -> None:
    inv = invoice(modified_at=datetime(2026, 1, 20, tzinfo=UTC))
    pdf = valid(renderer.render(receipt(inv, issued_on=date(2026, 1, 12))), checker)
    tree = xml_of(pdf)
    assert tree.findtext(f"{RSM}ExchangedDocument/{RAM}IssueDateTime/") == "20260112"
    text = flat(text_of(pdf))
    assert "Date d'émission 12/01/2026" in text
    assert "20/01/2026" not in text  # the CRM's last change (the day it was synced) is nowhere


def test_render_preview_uses_the_invoices_own_date(tmp_path: Path) -> None:
    inv = invoice(issue_date=date(2025, 11, 3), due_date=date(2025, 12, 3))
    source, out = tmp_path / "invoice.json", tmp_path / "preview.pdf"
    source.write_text(inv.model_dump_json())
    settings = Settings.model_construct(seller=SELLER, document=DocumentSettings())
    assert render_command(settings, source, out, None) == 0
    assert xml_of(out.read_bytes()).findtext(f"{RSM}ExchangedDocument/{RAM}IssueDateTime/") == "20251103"


# 2. Due date and payments


def test_due_date_printed_and_bt9_is_the_payment_date(renderer: Renderer, checker: Check) -> None:
    pdf = valid(renderer.render(receipt(invoice(due_date=date(2026, 2, 9)))), checker)
    assert "Date d'échéance 09/02/2026" in flat(text_of(pdf))
    tree = xml_of(pdf)
    # BR-FR-CO-09: an invoice issued already paid (S2) states its payment date as BT-9 ...
    assert due_date_of(tree) == "20260116"
    # ... so the contractual due date goes into the payment terms text (BT-20)
    terms = tree.findtext(f"{SETTLEMENT}/{RAM}SpecifiedTradePaymentTerms/{RAM}Description")
    assert terms.startswith("Échéance : 09/02/2026.") and "acquittée le 16/01/2026" in terms


def test_without_a_due_date_the_issue_date_is_printed(renderer: Renderer) -> None:
    pdf = renderer.render(receipt(invoice(), issued_on=date(2026, 1, 12)))
    assert "Date d'échéance 12/01/2026" in flat(text_of(pdf))


def test_every_payment_is_printed_with_date_amount_and_method(renderer: Renderer, checker: Check) -> None:
    inv = invoice(
        payments=[("300", datetime(2026, 1, 11, 9, tzinfo=UTC), PaymentMethod.CARD),
                  ("200", datetime(2026, 1, 13, 9, tzinfo=UTC), PaymentMethod.CHECK)],
    )
    text = flat(text_of(valid(renderer.render(receipt(inv)), checker)))
    assert "11/01/2026 Carte bancaire 300,00 €" in text
    assert "13/01/2026 Chèque 200,00 €" in text
    assert "16/01/2026 Virement (Référence VIR-8842) 580,00 €" in text  # the last one, with its amount


# 3. B2B and B2C mentions; the IBAN


def test_company_buyer_gets_penalties_and_the_40_euro_indemnity(renderer: Renderer, checker: Check) -> None:
    pdf = valid(renderer.render(receipt(invoice(customer=COMPANY))), checker)
    text = flat(text_of(pdf))
    assert "pénalités au taux de trois fois le taux d'intérêt légal" in text
    assert "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40,00 €" in text


def test_private_buyer_gets_no_indemnity_and_no_b2b_penalty(renderer: Renderer, checker: Check) -> None:
    pdf = valid(renderer.render(receipt(invoice(customer=PERSON, method=PaymentMethod.CARD))), checker)
    text = flat(text_of(pdf))
    assert "40,00" not in text and "Indemnité" not in text and "pénalités" not in text
    assert "Pas d'escompte pour paiement anticipé" in text
    # BR-FR-05 still wants the PMD and PMT notes: they say the B2B rules do not apply
    notes = notes_of(xml_of(pdf))
    assert notes["PMT"].startswith("Client non professionnel") and "40" not in notes["PMT"]
    assert notes["PMD"].startswith("Client non professionnel")
    assert notes["BAR"] == "B2C"


@pytest.mark.parametrize(
    ("method", "printed"),
    [
        (PaymentMethod.TRANSFER, True),
        (PaymentMethod.CHECK, False),
        (PaymentMethod.CARD, False),
        (PaymentMethod.DIRECT_DEBIT, False),
        (PaymentMethod.CASH, False),
    ],
)
def test_iban_only_for_a_transfer(renderer: Renderer, checker: Check, method: PaymentMethod, printed: bool) -> None:
    pdf = valid(renderer.render(receipt(invoice(method=method))), checker)
    assert ("IBAN FR7630006000011234567890189" in text_of(pdf)) is printed
    assert (xml_of(pdf).find(f".//{RAM}PayeePartyCreditorFinancialAccount") is not None) is printed


# 4. Discounts and 0 % lines


def test_discount_line_as_negative_quantity(renderer: Renderer, checker: Check) -> None:
    discount = Line(description="Remise fidélité", quantity="1", unit_price="-50", vat_rate="20")
    pdf = valid(renderer.render(receipt(invoice([AUDIT, discount]))), checker)
    text = flat(text_of(pdf))
    assert "Remise fidélité -1 50,00 € 20 % -50,00 €" in text
    assert "Total HT 850,00 €" in text and "Total TTC 1 020,00 €" in text
    line = xml_of(pdf).findall(f".//{RAM}IncludedSupplyChainTradeLineItem")[1]
    assert line.findtext(f".//{RAM}BilledQuantity") == "-1"
    assert line.findtext(f".//{RAM}NetPriceProductTradePrice/{RAM}ChargeAmount") == "50.00"  # BR-27
    assert line.findtext(f".//{RAM}LineTotalAmount") == "-50.00"


def test_zero_rate_without_a_reason_is_refused_naming_the_mapping_key(renderer: Renderer) -> None:
    free = Line(description="Échantillon", quantity="1", unit_price="10", vat_rate="0")
    with pytest.raises(BadRecord) as err:
        renderer.render(receipt(invoice([AUDIT, free])))
    message = str(err.value)
    assert "line 2 ('Échantillon') charges 0 % VAT without an exemption reason" in message
    assert "vat_exemption under [line_item] in mappings/hubspot.toml" in message
    assert "[line] in mappings/salesforce.toml" in message


# 5. Tax situations


@pytest.mark.parametrize(
    ("code", "customer", "kind", "category", "mention"),
    [
        ("VATEX-EU-AE", EU_COMPANY, "services", "AE", "Autoliquidation, article 283-2 du CGI"),
        ("VATEX-EU-IC", EU_COMPANY, "goods", "K", "Exonération de TVA, article 262 ter I du CGI"),
        ("VATEX-EU-G", US_COMPANY, "goods", "G", "Exonération de TVA, article 262 I du CGI"),
    ],
)
def test_tax_situation(
    renderer: Renderer, checker: Check, code: str, customer: object, kind: str, category: str, mention: str
) -> None:
    line = Line(description="Machine", quantity="1", unit_price="1000", vat_rate="0", vat_exemption=code, kind=kind)
    pdf = valid(renderer.render(receipt(invoice([line], customer=customer))), checker)
    assert mention in flat(text_of(pdf))
    tree = xml_of(pdf)
    tax = tree.find(f"{SETTLEMENT}/{RAM}ApplicableTradeTax")
    assert (tax.findtext(f"{RAM}CategoryCode"), tax.findtext(f"{RAM}ExemptionReasonCode")) == (category, code)
    assert tax.findtext(f"{RAM}ExemptionReason") == mention
    if category == "K":  # BR-IC-12: the country delivered to (BT-80)
        ship_to = f".//{RAM}ShipToTradeParty/{RAM}PostalTradeAddress/{RAM}CountryID"
        assert tree.findtext(ship_to) == "DE"
    if category in ("AE", "K"):  # BR-AE-02, BR-IC-02: both VAT numbers
        buyer_vat = tree.findtext(f".//{RAM}BuyerTradeParty/{RAM}SpecifiedTaxRegistration/{RAM}ID")
        assert buyer_vat == "DE811907980"


@pytest.mark.parametrize("code", ["VATEX-EU-AE", "VATEX-EU-IC"])
def test_intra_eu_needs_the_buyer_vat_number(renderer: Renderer, code: str) -> None:
    line = Line(description="Machine", quantity="1", unit_price="1000", vat_rate="0", vat_exemption=code)
    buyer = EU_COMPANY.model_copy(update={"vat_number": ""})
    with pytest.raises(MissingMention, match=r"customer\.vat_number"):
        renderer.render(receipt(invoice([line], customer=buyer)))


def test_franchise_en_base(checker: Check) -> None:
    seller = SELLER.model_copy(update={"vat_number": "", "legal_form": "EI", "share_capital": None, "rcs_city": ""})
    line = Line(description="Cours", quantity="2", unit_price="40", vat_rate="0", vat_exemption="VATEX-FR-FRANCHISE")
    pdf = valid(Renderer(seller, DocumentSettings()).render(receipt(invoice([line], customer=PERSON))), checker)
    assert "TVA non applicable, art. 293 B du CGI" in flat(text_of(pdf))
    tax = xml_of(pdf).find(f"{SETTLEMENT}/{RAM}ApplicableTradeTax")
    assert tax.findtext(f"{RAM}CategoryCode") == "E"


# 8. Credit notes


def test_refund_credit_note(renderer: Renderer, checker: Check) -> None:
    inv = invoice(method=PaymentMethod.TRANSFER)
    rec = credit_note(inv)
    pdf = valid(renderer.render(rec), checker)
    tree = xml_of(pdf)
    assert tree.findtext(f"{RSM}ExchangedDocument/{RAM}TypeCode") == "381"
    ref = tree.find(f"{SETTLEMENT}/{RAM}InvoiceReferencedDocument")
    assert ref.findtext(f"{RAM}IssuerAssignedID") == "F-2026-0001"
    assert ref.findtext(f"{RAM}FormattedIssueDateTime/") == "20260110"
    summary = tree.find(f"{SETTLEMENT}/{RAM}SpecifiedTradeSettlementHeaderMonetarySummation")
    assert summary.findtext(f"{RAM}GrandTotalAmount") == "1080.00"  # positive, as EN16931 wants for 381
    assert (summary.findtext(f"{RAM}TotalPrepaidAmount"), summary.findtext(f"{RAM}DuePayableAmount")) == (
        "1080.00", "0.00")
    assert due_date_of(tree) == "20260116"  # BR-FR-CO-09: the refund date
    text = flat(text_of(pdf))
    assert "Facture d'avoir" in text and "Avoir n° A-2026-0001" in text
    assert "Remboursement — Avoir sur la facture n° F-2026-0001 du 10/01/2026" in text
    assert "Remboursé le 16/01/2026" in text and "16/01/2026 Virement (Référence VIR-8842) 1 080,00 €" in text
    assert "acquittée" not in text.lower() and "Pour acquit" not in text
    assert "IBAN" not in text  # the refund went to the customer's account
    info = pypdf.PdfReader(io.BytesIO(pdf)).metadata
    assert info.title == "Facture d'avoir A-2026-0001" and "acquittée" not in (info.get("/Keywords") or "")
    assert renderer.filename(rec) == "avoir-A-2026-0001.pdf"
    assert renderer.filename(receipt(inv)) == "facture-acquittee-F-2026-0001.pdf"


def test_cancellation_credit_note_not_refunded_yet(renderer: Renderer, checker: Check) -> None:
    inv = invoice()
    open_credit = inv.model_copy(update={"payments": (), "amount_paid": Money(amount="0", currency="EUR")})
    pdf = valid(renderer.render(credit_note(open_credit, reason="cancellation")), checker)
    tree = xml_of(pdf)
    assert tree.findtext(f".//{RAM}BusinessProcessSpecifiedDocumentContextParameter/{RAM}ID") == "S1"
    summary = tree.find(f"{SETTLEMENT}/{RAM}SpecifiedTradeSettlementHeaderMonetarySummation")
    assert (summary.findtext(f"{RAM}TotalPrepaidAmount"), summary.findtext(f"{RAM}DuePayableAmount")) == (
        "0.00", "1080.00")
    text = flat(text_of(pdf))
    assert "Annulation — Avoir sur la facture n° F-2026-0001 du 10/01/2026" in text
    assert "Montant dû au client 1 080,00 €" in text


def test_partly_refunded_credit_note_is_refused(renderer: Renderer) -> None:
    inv = invoice()
    part = inv.model_copy(update={"amount_paid": Money(amount="100", currency="EUR")})
    with pytest.raises(BadRecord, match="refunded in full or not at all"):
        renderer.render(credit_note(part))


def test_english_credit_note(checker: Check) -> None:
    r = Renderer(SELLER, DocumentSettings(language="en"))
    rec = credit_note(invoice(method=PaymentMethod.CARD))
    text = flat(text_of(valid(r.render(rec), checker)))
    assert "Credit note" in text and "Refund — Credit note for invoice no. F-2026-0001 of 10 January 2026" in text
    assert r.filename(rec) == "credit-note-A-2026-0001.pdf"


# 9. Foreign currency


def test_foreign_currency_prints_the_rate_and_its_source(renderer: Renderer, checker: Check) -> None:
    inv = invoice(currency="USD", exchange_rate=Decimal("0.92"),
                  exchange_rate_source="BCE, taux de référence du 2026-01-09")
    pdf = valid(renderer.render(receipt(inv)), checker)
    text = flat(text_of(pdf))
    assert ("Montant de la TVA en euros : 165,60 € (1 USD = 0,92 EUR ; BCE, taux de référence du 2026-01-09)"
            in text)
    tree = xml_of(pdf)
    assert tree.findtext(f"{SETTLEMENT}/{RAM}TaxCurrencyCode") == "EUR"
    eur = [e.text for e in tree.iter(f"{RAM}TaxTotalAmount") if e.get("currencyID") == "EUR"]
    assert eur == ["165.60"]


def test_a_property_named_exchange_rate_is_not_the_rate(renderer: Renderer) -> None:
    inv = invoice(currency="USD", properties={"exchange_rate": "0.92"})
    with pytest.raises(BadRecord, match="could not be determined"):
        renderer.render(receipt(inv))


# 7. QR code in the demo


def test_demo_receipts_carry_a_qr_to_the_local_admin_api(tmp_path: Path) -> None:
    launched = SimpleNamespace(connection={}, mail=None)
    assert LOCAL_VERIFY_URL == "http://127.0.0.1:8787"
    assert _demo_settings(tmp_path, launched)["document"]["verify_base_url"] == LOCAL_VERIFY_URL  # type: ignore[arg-type]
    pdf = Renderer(SELLER, DocumentSettings(verify_base_url=LOCAL_VERIFY_URL)).render(receipt(invoice()))
    assert "Vérifier ce document" in text_of(pdf)


def test_english_foreign_currency_without_a_named_source(checker: Check) -> None:
    inv = invoice(currency="GBP", exchange_rate=Decimal("1.17"))
    pdf = valid(Renderer(SELLER, DocumentSettings(language="en")).render(receipt(inv)), checker)
    assert "VAT amount in euros: €210.60 (1 GBP = 1.17 EUR)" in flat(text_of(pdf))


def test_partial_refund_from_the_engine_renders_and_validates(renderer: Renderer, checker: Check) -> None:
    """core.credit.credit_invoice shares a partial refund over the VAT rates; the
    credit note states it dated the refund, positive, and passes the schematrons."""
    original = invoice([AUDIT, Line(description="Livre", quantity="1", unit_price="30", vat_rate="5.5", kind="goods")])
    credited = credit_invoice(original, Decimal("200"), datetime(2026, 2, 3, 10, tzinfo=UTC))
    pdf = valid(renderer.render(credit_note(credited)), checker)
    tree = xml_of(pdf)
    summary = tree.find(f"{SETTLEMENT}/{RAM}SpecifiedTradeSettlementHeaderMonetarySummation")
    # the engine's share over the rates lands within a cent of the amount (VAT rounds per rate)
    assert Decimal(summary.findtext(f"{RAM}GrandTotalAmount")) == credited.gross_total.amount
    assert abs(credited.gross_total.amount - Decimal("200")) <= Decimal("0.01")
    assert due_date_of(tree) == "20260203"
    assert "Remboursé le 03/02/2026" in flat(text_of(pdf))
