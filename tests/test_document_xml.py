"""Factur-X arithmetic and config validation, without rendering a PDF (fast)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import ValidationError
from support import SELLER

from pouracquit.common.errors import BadRecord
from pouracquit.common.model import (
    Address,
    CreditReference,
    Invoice,
    InvoiceStatus,
    Line,
    Party,
    Payment,
    PaymentMethod,
)
from pouracquit.common.money import Money
from pouracquit.core.document import DocumentSettings, PaidReceipt, Seller
from pouracquit.core.document.cii import build_data, build_xml
from pouracquit.core.document.mentions import vat_treatment
from pouracquit.core.document.pdf import LocalOnlyFetcher
from pouracquit.core.document.wording import Wording

RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
BUYER = Party(name="Client SA", siren="552100554", address=Address(line1="2 rue B", postal_code="69001", city="Lyon"))

RATES = st.sampled_from(["20", "10", "5.5", "2.1", "0"])
lines_strategy = st.lists(
    st.builds(
        lambda q, p, r, d, ex: Line(
            description="x",
            quantity=q,
            unit_price=p,
            vat_rate=r,
            discount=min(d, q * p),
            # a 0 % line always says why (a bare 0 % is refused, see test_zero_rate_needs_a_reason)
            vat_exemption=("VATEX-EU-132" if ex else "VATEX-FR-FRANCHISE") if r == "0" else "",
        ),
        st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("500"), places=4),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999"), places=4),
        RATES,
        st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=2),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


def paid(lines: list[Line]) -> Invoice:
    base = dict(
        source_id="s",
        currency="EUR",
        issue_date=date(2026, 2, 1),
        customer=BUYER,
        lines=tuple(lines),
        status=InvoiceStatus.PAID,
        modified_at=datetime(2026, 2, 2, tzinfo=UTC),
    )
    gross = Invoice(**base, amount_paid=Money(amount="0", currency="EUR")).gross_total
    pay = Payment(amount=gross, paid_at=datetime(2026, 2, 2, tzinfo=UTC), method=PaymentMethod.TRANSFER)
    return Invoice(**base, amount_paid=gross, payments=(pay,))


def amounts(tree: etree._Element, path: str) -> list[Decimal]:
    return [Decimal(e.text) for e in tree.iterfind(path)]


@settings(max_examples=40, deadline=None)
@given(lines_strategy)
def test_xml_totals_add_up(lines: list[Line]) -> None:
    assume(sum(line.net for line in lines) > 0)  # the model refuses a non-positive invoice
    inv = paid(lines)
    receipt = PaidReceipt(invoice=inv, number="F-1", issued_on=date(2026, 2, 2), receipt_id="r")
    xml = build_xml(build_data(receipt, SELLER, Wording("fr")), "en16931")
    tree = etree.fromstring(xml)
    summ = f".//{RAM}SpecifiedTradeSettlementHeaderMonetarySummation/{RAM}"
    line_nets = amounts(tree, f".//{RAM}SpecifiedTradeSettlementLineMonetarySummation/{RAM}LineTotalAmount")
    vat_taxes = amounts(tree, f".//{RAM}ApplicableHeaderTradeSettlement/{RAM}ApplicableTradeTax/{RAM}CalculatedAmount")
    (grand,) = amounts(tree, summ + "GrandTotalAmount")
    (prepaid,) = amounts(tree, summ + "TotalPrepaidAmount")
    (due,) = amounts(tree, summ + "DuePayableAmount")
    assert grand == sum(line_nets) + sum(vat_taxes)
    assert grand == inv.gross_total.amount
    assert prepaid == grand and due == 0


def test_vat_treatments() -> None:
    assert vat_treatment(Decimal("20"), "").category == "S"
    with pytest.raises(BadRecord, match=r"vat_exemption under \[line_item\] in mappings/hubspot.toml"):
        vat_treatment(Decimal("0"), "")
    franchise = vat_treatment(Decimal("0"), "vatex-fr-franchise")
    assert (franchise.category, franchise.wording_fr) == ("E", "TVA non applicable, art. 293 B du CGI")
    assert vat_treatment(Decimal("0"), "VATEX-EU-IC").wording_fr == "Exonération de TVA, article 262 ter I du CGI"
    assert vat_treatment(Decimal("0"), "Exonéré, art. 261-4-4° du CGI").wording_fr == "Exonéré, art. 261-4-4° du CGI"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("siren", "732829321"),  # Luhn fails
        ("siret", "73282932000075"),
        ("vat_number", "FR45732829320"),  # wrong key
        ("ape", "62-01"),
        ("iban", "FR7630006000011234567890188"),
    ],
)
def test_seller_validation_names_the_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as err:
        Seller(**(SELLER.model_dump() | {field: value}))
    assert field in str(err.value)


def test_siret_must_start_with_siren() -> None:
    with pytest.raises(ValidationError, match="does not start with siren"):
        Seller(**(SELLER.model_dump() | {"siret": "55210055400013"}))


def test_seller_accepts_spaced_identifiers() -> None:
    seller = Seller(**(SELLER.model_dump() | {"siren": "732 829 320", "vat_number": "fr 44 732829320"}))
    assert (seller.siren, seller.vat_number) == ("732829320", "FR44732829320")


def test_document_settings_reject_css_injection() -> None:
    with pytest.raises(ValidationError, match="primary_color"):
        DocumentSettings(primary_color="red; } body { display: none")
    with pytest.raises(ValidationError, match="font_family"):
        DocumentSettings(font_family='x"; src: url(http://evil)')


def test_fetcher_refuses_network() -> None:
    with pytest.raises(ValueError, match="disallowed protocol"):
        LocalOnlyFetcher().fetch("http://example.com/logo.png")


@settings(max_examples=20, deadline=None)
@given(lines_strategy)
def test_credit_note_xml_is_positive_and_names_the_invoice(lines: list[Line]) -> None:
    assume(sum(line.net for line in lines) > 0)
    credited = CreditReference(number="F-9", issue_date=date(2026, 1, 5), reason="cancellation")
    receipt = PaidReceipt(invoice=paid(lines), number="A-1", issued_on=date(2026, 2, 2), receipt_id="r",
                          credits=credited)
    tree = etree.fromstring(build_xml(build_data(receipt, SELLER, Wording("fr")), "en16931"))  # XSD-checked
    assert tree.findtext(f".//{RAM}TypeCode") == "381"
    assert tree.findtext(f".//{RAM}InvoiceReferencedDocument/{RAM}IssuerAssignedID") == "F-9"
    summ = f".//{RAM}SpecifiedTradeSettlementHeaderMonetarySummation/{RAM}"
    (grand,) = amounts(tree, summ + "GrandTotalAmount")
    assert grand > 0 and amounts(tree, summ + "TotalPrepaidAmount") == [grand]
