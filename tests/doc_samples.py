"""Invoices, buyers and readers shared by the document tests (legal mentions, layout)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pypdf
import pytest
from facturx import get_facturx_xml_from_pdf
from lxml import etree

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
from pouracquit.core.document import PaidReceipt
from pouracquit.core.document.validate import validate_pdf

RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
RSM = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}"

COMPANY = Party(
    name="Société Cliente SARL",
    siren="552100554",
    vat_number="FR96552100554",
    email="ap@client.example",
    address=Address(line1="5 avenue Foch", postal_code="69006", city="Lyon"),
)
PERSON = Party(
    name="Zoë Lefèvre",
    kind="person",
    email="zoe@example.org",
    address=Address(line1="3 rue des Lilas", postal_code="33000", city="Bordeaux"),
)
EU_COMPANY = Party(
    name="Beispiel GmbH",
    vat_number="DE811907980",
    email="rechnung@beispiel.example",
    address=Address(line1="Hauptstraße 5", postal_code="10115", city="Berlin", country="DE"),
)
US_COMPANY = Party(
    name="Example Corp",
    email="ap@example.com",
    address=Address(line1="1 Main Street", postal_code="10001", city="New York", country="US"),
)
PAID_AT = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)  # 16 January in Paris
AUDIT = Line(description="Audit", quantity="2", unit_price="450", vat_rate="20")


def invoice(
    lines: list[Line] | None = None,
    customer: Party = COMPANY,
    method: PaymentMethod = PaymentMethod.TRANSFER,
    payments: list[tuple[str, datetime, PaymentMethod]] | None = None,
    **extra: Any,
) -> Invoice:
    """A fully paid invoice; ``payments`` (amount, when, method) before the final one that settles it."""
    base: dict[str, Any] = {
        "source_id": "src-1",
        "number": "F-2026-0001",
        "currency": "EUR",
        "issue_date": date(2026, 1, 10),
        "customer": customer,
        "lines": tuple(lines or [AUDIT]),
        "status": InvoiceStatus.PAID,
        "modified_at": datetime(2026, 1, 20, tzinfo=UTC),
    } | extra
    gross = Invoice(**base, amount_paid=Money(amount="0", currency=base["currency"])).gross_total
    paid = []
    for amount, when, how in payments or []:
        paid.append(Payment(amount=Money(amount=amount, currency=gross.currency), paid_at=when, method=how))
    rest = gross
    for p in paid:
        rest = rest - p.amount
    paid.append(Payment(amount=rest, paid_at=PAID_AT, method=method, reference="VIR-8842"))
    return Invoice(**base, amount_paid=gross, payments=tuple(paid))


def receipt(inv: Invoice, number: str = "F-2026-0001", issued_on: date = date(2026, 1, 16)) -> PaidReceipt:
    return PaidReceipt(invoice=inv, number=number, issued_on=issued_on, receipt_id="rcpt-1")


def credit_note(inv: Invoice, reason: str = "refund", number: str = "A-2026-0001") -> PaidReceipt:
    credited = CreditReference(number="F-2026-0001", issue_date=date(2026, 1, 10), reason=reason)
    return PaidReceipt(invoice=inv, number=number, issued_on=date(2026, 2, 3), receipt_id="rcpt-2", credits=credited)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def pages_of(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def flat(text: str) -> str:
    """Text with its line breaks and runs of spaces as single spaces (a mention may wrap)."""
    return " ".join(text.split())


def xml_of(pdf: bytes) -> etree._Element:
    return etree.fromstring(get_facturx_xml_from_pdf(pdf, check_xsd=False)[1])


def notes_of(tree: etree._Element) -> dict[str, str]:
    return {
        n.findtext(f"{RAM}SubjectCode"): n.findtext(f"{RAM}Content")
        for n in tree.iter(f"{RAM}IncludedNote")
    }


@pytest.fixture(scope="module")
def checker() -> Callable[[bytes], list[str]]:
    """XSD, EN16931 and French CTC schematrons; a paid invoice must also be paid in full
    (a credit note states money owed back, so that part does not apply to it)."""
    return lambda pdf: [str(v) for v in validate_pdf(pdf)]
