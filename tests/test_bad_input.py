"""Bad CRM input never crashes anything: it is refused with a reason, or printed as text.

Level 1 of "Nothing lost, nothing doubled" (section Bad input), without the
network. The HubSpot mapping, fed hypothesis-generated HubSpot-shaped records,
either returns a valid ``Invoice`` or raises ``BadRecord`` naming the record
(which the connector turns into ``Page.rejected``): any other exception would
escape ``sync_connection`` and stop the connection on that page forever. The
model refuses bad amounts and currencies with a ``ValueError``; the renderer
prints hostile text (HTML, script, right-to-left, 10,000 characters) as text
and puts no link or script action in the PDF.

Each bug these tests found keeps its exact failing input as a regression
test; the one still open (emoji glyphs) is pinned as ``xfail(strict=True)``.
Run with ``--hypothesis-show-statistics`` to see how many inputs of each kind
were tried and where each ended up.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pypdf
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from rich.console import Console

from pouracquit.app.commands import _print_rows
from pouracquit.common.errors import BadRecord
from pouracquit.common.model import Address, Invoice, InvoiceStatus, Line, Party, Payment, PaymentMethod
from pouracquit.common.money import Money, is_currency
from pouracquit.connectors.hubspot.mapping import HubSpotMapper
from pouracquit.connectors.hubspot.source import HubSpotSource
from pouracquit.core.document import DocumentSettings, PaidReceipt, Renderer, Seller
from pouracquit.mappings import load_mapping
from pouracquit.sandbox.launch import DEMO_SELLER

MAPPER = HubSpotMapper(load_mapping("hubspot"))
# Fuzzing is about breadth; no deadline because pydantic's first calls warm up slowly.
FUZZ = settings(max_examples=500, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])

# -- hostile values ------------------------------------------------------------------------------------------
SCRIPT = '<script>alert("pwn")</script><b>Gras</b><a href="https://evil.example/pwn">clic</a>'
PAYLOADS = (
    SCRIPT,
    "<img src=x onerror=alert(1)>",
    "{{ 7*7 }}{% raw %}",  # template syntax: the renderer is a Jinja sandbox, this must stay text
    "شركة الاختبار \u202eRLO\u202c עברית",
    "Zoë 🧾🚀 👨\u200d👩\u200d👧 🇫🇷",
    "N" * 10_000,
    "tab\tnew\nline\rcarriage",
    "bell\x07 esc\x1b[31m nul\x00 vt\x0b del\x7f",
    "[/b] [link=https://evil.example]rich[/link]",
    "'; DROP TABLE receipt; --",
    "   ",
    "",
)
hostile = st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=40), st.text(st.characters(codec="utf-8"),
                                                                             max_size=12))
# Amounts as a CRM stores them: decimal strings, bounded (huge magnitudes have their own tests below).
amounts = st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)
number_text = st.one_of(
    amounts.map(str),
    st.integers(-1000, 1000).map(str),
    st.sampled_from(["0", "-0", "0.00", "-1", "1e3", "NaN", "Infinity", "-inf", "sNaN", "", " ", "1,5", "12O",
                     "١٢٣", "0x10", "²", "1e-30"]),
    hostile,
)
rates = st.one_of(st.sampled_from(["20", "10", "5.5", "2.1", "0", "17", "-5", "100", "1000", "20.0001"]), number_text)
timestamps = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
date_text = st.one_of(
    timestamps.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    timestamps.map(lambda d: str(int(d.timestamp() * 1000))),
    timestamps.map(lambda d: d.date().isoformat()),
    st.sampled_from(["", "2026-02-30", "2026-13-01", "yesterday", "0000-01-01", "2026-03-01T25:00:00Z",
                     "2026-03-01T00:00:00+25:00", "-1", "9" * 16]),
    hostile,
)
currencies = st.one_of(st.sampled_from(["EUR", "USD", "GBP", "eur", " EUR ", "XYZ", "€", "EURO", "XXX", "<b>EUR</b>"]),
                       hostile)
statuses = st.one_of(st.sampled_from(["paid", "open", "draft", "voided", "PAID", "refunded"]), hostile)
methods = st.one_of(st.sampled_from(["card", "transfer", "cheque", "sepa_debit", "Card", "bitcoin"]), hostile)
payment_lists = st.one_of(
    st.lists(st.fixed_dictionaries({"amount": number_text, "date": date_text},
                                   optional={"method": methods, "reference": hostile}), max_size=3).map(json.dumps),
    st.sampled_from(["[]", "{}", "null", "42", '"paid"', "[1, 2]", "[{}]", '[{"amount": true, "date": 1}]',
                     "not json"]),
)


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A property either absent (None: HubSpot returns null for unset properties) or a value."""
    return st.one_of(st.none(), values)


invoice_props = st.fixed_dictionaries({
    "hs_invoice_status": maybe(statuses), "hs_currency": maybe(currencies), "hs_number": maybe(hostile),
    "hs_invoice_date": maybe(date_text), "hs_lastmodifieddate": date_text, "hs_amount_paid": maybe(number_text),
    "hs_payment_date": maybe(date_text), "hs_due_date": maybe(date_text), "pouracquit_supply_date": maybe(date_text),
    "pouracquit_payment_method": maybe(methods), "pouracquit_payment_reference": maybe(hostile),
    "pouracquit_payments": maybe(payment_lists),
})
line_props = st.fixed_dictionaries({
    "name": maybe(hostile), "quantity": maybe(number_text), "price": maybe(number_text), "hs_tax_rate": maybe(rates),
    "hs_sku": maybe(hostile), "hs_product_type": maybe(st.sampled_from(["service", "inventory", "gift", ""])),
    "hs_position_on_quote": maybe(st.integers(0, 5).map(str)), "pouracquit_vat_exemption":
        maybe(st.sampled_from(["VATEX-EU-IC", "VATEX-FR-FRANCHISE", "VATEX-EU-132", "<b>x</b>"])),
})
party_props = st.fixed_dictionaries({
    "firstname": maybe(hostile), "lastname": maybe(hostile), "name": maybe(hostile), "email": maybe(hostile),
    "address": maybe(hostile), "zip": maybe(hostile), "city": maybe(hostile), "country": maybe(hostile),
    "pouracquit_siren": maybe(hostile), "pouracquit_vat_number": maybe(hostile),
})
# Mostly-valid records shrink toward the interesting failures: start from a good paid invoice and spoil a few keys.
GOOD_INVOICE = {"hs_invoice_status": "paid", "hs_currency": "EUR", "hs_number": "F-2026-0001",
                "hs_invoice_date": "2026-03-01T00:00:00.000Z", "hs_lastmodifieddate": "2026-03-05T10:00:00.000Z",
                "hs_amount_paid": "120.00", "hs_payment_date": "2026-03-05T00:00:00.000Z",
                "pouracquit_payment_method": "card"}
GOOD_LINE = {"name": "Audit", "quantity": "1", "price": "100.00", "hs_tax_rate": "20"}
GOOD_CONTACT = {"firstname": "Camille", "lastname": "Durand", "email": "c@example.org", "address": "3 rue des Lilas",
                "zip": "33000", "city": "Bordeaux"}


def spoiled(good: dict[str, str], bad: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """``good`` with a random subset of its keys replaced by the generated (bad) values."""
    return st.tuples(bad, st.sets(st.sampled_from(sorted(set(good) | {"pouracquit_payments"}
                                                           if "hs_currency" in good else good)), max_size=2)).map(
        lambda pair: {**good, **{k: pair[0].get(k) for k in pair[1]}})


def mostly(good: dict[str, str], bad: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Three times in four a good record with a few keys spoiled, else a wholly generated one: both the
    accepted path and each refusal get their share of examples."""
    return st.one_of(spoiled(good, bad), spoiled(good, bad), spoiled(good, bad), bad)


def record(i: int = 1) -> st.SearchStrategy[tuple[str, dict[str, Any], list[tuple[str, dict[str, Any]]],
                                                tuple[str, dict[str, Any]] | None, tuple[str, dict[str, Any]] | None]]:
    """(invoice id, properties, line items, contact, company) as HubSpotSource._map hands them to the mapper."""
    return st.tuples(
        st.just(str(i)),
        mostly(GOOD_INVOICE, invoice_props),
        st.one_of(st.lists(mostly(GOOD_LINE, line_props), min_size=1, max_size=3), st.just([])).map(
            lambda ls: [(str(100 + n), lp) for n, lp in enumerate(ls)]),
        st.one_of(mostly(GOOD_CONTACT, party_props).map(lambda p: ("200", p)),
                  mostly(GOOD_CONTACT, party_props).map(lambda p: ("200", p)), st.none()),
        maybe(party_props.map(lambda p: ("300", p))),
    )


def kind_of(reason: str) -> str:
    """A short label of why a record was refused, for hypothesis' statistics (the inventory)."""
    for words, label in (("contact or company", "missing customer"), ("has no name", "nameless customer"),
                         ("must be positive", "zero or negative total"), ("exceeds", "paid above total"),
                         ("currency", "unknown currency"), ("[status]", "unknown status"),
                         ("[payment_method]", "unknown payment method"), ("[product_type]", "unknown product type"),
                         ("payment list", "bad payment list"), ("number", "not a number"), ("no lines", "no lines"),
                         ("has no ", "missing property"), ("is empty", "empty customer name")):
        if words in reason:
            return label
    return "invalid date or other"


def check_invoice(inv: Invoice) -> None:
    """What every accepted invoice guarantees to the steps after it."""
    assert is_currency(inv.currency) and inv.amount_paid.currency == inv.currency
    assert inv.gross_total.amount > 0 and 0 <= inv.amount_paid.amount <= inv.gross_total.amount
    assert inv.lines and inv.customer.name.strip()
    Invoice.model_validate_json(inv.model_dump_json())  # the outbox row round-trips


# -- level 1: the mapping --------------------------------------------------------------------------------------
@FUZZ
@given(record())
def test_the_mapping_returns_a_valid_invoice_or_a_bad_record_naming_it(rec: Any) -> None:
    invoice_id, props, lines, contact, company = rec
    try:
        inv = MAPPER.invoice(invoice_id, props, lines, contact, company, "")
    except BadRecord as exc:
        reason = str(exc)
        event(f"refused: {kind_of(reason)}")
        assert reason.startswith(f"HubSpot invoice {invoice_id}"), reason  # names the record to fix
        return
    event(f"accepted: {inv.status.value}{', fully paid' if inv.fully_paid else ''}")
    check_invoice(inv)


class _Row(SimpleNamespace):
    id: str
    properties: dict[str, Any]


def stub_source(records: dict[str, dict[str, dict[str, Any]]]) -> HubSpotSource:
    """The real HubSpotSource._map with its batch reads answered from ``records`` instead of HTTP."""
    source = HubSpotSource.__new__(HubSpotSource)
    source._mapper = MAPPER
    source._deals = {}
    source._read = lambda kind, ids: {i: records[kind][i] for i in ids if i in records[kind]}  # type: ignore[method-assign]
    return source


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record(), min_size=1, max_size=6))
def test_a_page_maps_every_record_or_rejects_it_and_goes_on(recs: list[Any]) -> None:
    """The connector's own ``_map``: one bad record never takes the page down with it."""
    records: dict[str, dict[str, dict[str, Any]]] = {"line_item": {}, "contact": {}, "company": {}}
    links: dict[str, dict[str, list[str]]] = {"line_item": {}, "contact": {}, "company": {}, "deal": {}}
    rows = []
    for n, (_, props, lines, contact, company) in enumerate(recs, 1):
        iid = str(n)
        rows.append(_Row(id=iid, properties=props))
        for lid, lp in lines:
            records["line_item"][f"{iid}{lid}"] = lp
            links["line_item"].setdefault(iid, []).append(f"{iid}{lid}")
        for kind, party in (("contact", contact), ("company", company)):
            if party is not None:
                records[kind][f"{iid}{party[0]}"] = party[1]
                links[kind][iid] = [f"{iid}{party[0]}"]
    invoices, rejected = stub_source(records)._map(rows, links)
    event(f"page of {len(rows)}: {len(rejected)} rejected")
    assert sorted([i.source_id for i in invoices] + [sid for sid, _ in rejected], key=int) == [r.id for r in rows]
    for sid, reason in rejected:
        assert reason.startswith(f"HubSpot invoice {sid}") and len(reason) > len(f"HubSpot invoice {sid}") + 10
    for inv in invoices:
        check_invoice(inv)


def mapped(props: dict[str, Any] | None = None, line: dict[str, Any] | None = None,
           contact: dict[str, Any] | None = None, no_contact: bool = False) -> Invoice:
    return MAPPER.invoice("77", {**GOOD_INVOICE, **(props or {})}, [("1", {**GOOD_LINE, **(line or {})})],
                          None if no_contact else ("2", {**GOOD_CONTACT, **(contact or {})}), None, "")


@pytest.mark.parametrize(("kind", "props", "line", "contact", "words"), [
    ("missing customer", {}, {}, None, "no associated contact or company"),
    ("nameless customer", {}, {}, {"firstname": " ", "lastname": ""}, "contact 2 has no name"),
    ("zero amount", {"hs_amount_paid": "0"}, {"price": "0"}, {}, "total must be positive"),
    ("negative amount", {"hs_amount_paid": "0"}, {"price": "-100"}, {}, "total must be positive"),
    ("negative quantity", {"hs_amount_paid": "0"}, {"quantity": "-1"}, {}, "total must be positive"),
    ("paid above the total", {"hs_amount_paid": "120.01"}, {}, {}, "exceeds the invoice total"),
    ("negative paid amount", {"hs_amount_paid": "-1"}, {}, {}, "paid amount is negative"),
    ("unknown currency", {"hs_currency": "XYZ"}, {}, {}, "unknown currency code 'XYZ'"),
    ("HTML currency", {"hs_currency": "<b>EUR</b>"}, {}, {}, "unknown currency code"),
    ("VAT rate not a number", {}, {"hs_tax_rate": "20 %"}, {}, "vat_rate"),
    ("price not a number", {}, {"price": "<script>1</script>"}, {}, "unit_price"),
    ("paid not a number", {"hs_amount_paid": "NaN"}, {}, {}, "not a finite number"),
    ("no line name", {}, {"name": ""}, {}, "line item 1 has no name"),
    ("no currency", {"hs_currency": None}, {}, {}, "has no hs_currency"),
    ("unknown status", {"hs_invoice_status": "<b>paid</b>"}, {}, {}, "add it under [status]"),
    ("unknown method", {"pouracquit_payment_method": "bitcoin"}, {}, {}, "add it under [payment_method]"),
    ("impossible date", {"hs_invoice_date": "2026-02-30"}, {}, {}, "day is out of range"),
    ("bad payment list", {"pouracquit_payments": '{"amount": 1}'}, {}, {}, "pouracquit_payments is not a JSON"),
])
def test_each_bad_kind_is_refused_with_a_reason_naming_what_to_fix(
        kind: str, props: dict[str, Any], line: dict[str, Any], contact: dict[str, Any] | None, words: str) -> None:
    with pytest.raises(BadRecord) as refused:
        mapped(props, line, contact, no_contact=contact is None)
    assert str(refused.value).startswith("HubSpot invoice 77") and words in str(refused.value), str(refused.value)


def test_hostile_text_in_every_text_field_maps_verbatim() -> None:
    """Markup is data: the mapping neither strips nor interprets it (the renderer escapes it)."""
    inv = mapped({"pouracquit_payment_reference": SCRIPT, "hs_number": ""},
                 {"name": SCRIPT, "hs_sku": SCRIPT}, {"firstname": SCRIPT, "lastname": "", "address": SCRIPT,
                                                      "city": SCRIPT, "email": SCRIPT})
    assert inv.customer.name == inv.lines[0].description == inv.lines[0].sku == SCRIPT
    assert inv.customer.address.line1 == inv.customer.address.city == inv.payments[0].reference == SCRIPT


# -- level 1: the model ------------------------------------------------------------------------------------------
@FUZZ
@given(amount=st.one_of(amounts, st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"),
                                                  Decimal("-Infinity"), 1.5, float("nan"), True, None]),
                        number_text), currency=currencies)
def test_money_is_a_finite_amount_in_an_iso_currency_or_a_value_error(amount: Any, currency: str) -> None:
    try:
        money = Money(amount=amount, currency=currency)
    except ValidationError as exc:
        event(f"Money refused: {exc.errors()[0]['loc'][0]}")
        return
    event("Money accepted")
    assert money.amount.is_finite() and is_currency(money.currency)


@FUZZ
@given(lines=st.lists(st.tuples(amounts, amounts, st.sampled_from(["20", "10", "5.5", "2.1", "0"])), max_size=4),
       paid=amounts, currency=st.sampled_from(["EUR", "USD", "XYZ", "eur"]))
def test_invoice_totals_are_positive_and_paid_within_them_or_refused(
        lines: list[tuple[Decimal, Decimal, str]], paid: Decimal, currency: str) -> None:
    try:
        inv = Invoice(
            source_id="1", currency=currency, issue_date=date(2026, 3, 1),
            customer=Party(name="Camille Durand", kind="person"),
            lines=tuple(Line(description="x", quantity=q, unit_price=p, vat_rate=r) for q, p, r in lines),
            status=InvoiceStatus.PAID, amount_paid={"amount": paid, "currency": currency},
            modified_at=datetime(2026, 3, 5, tzinfo=UTC))
    except ValidationError as exc:
        event(f"Invoice refused: {exc.errors()[0]['msg'][:40]}")
        return
    event("Invoice accepted")
    check_invoice(inv)


# -- level 1: the document ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(Seller(**DEMO_SELLER), DocumentSettings())


def paid_invoice(name: str = "Camille Durand", description: str = "Audit", line1: str = "3 rue des Lilas",
                 city: str = "Bordeaux", reference: str = "CB-1", sku: str = "") -> Invoice:
    return Invoice(
        source_id="1", number="F-2026-0001", currency="EUR", issue_date=date(2026, 3, 1),
        customer=Party(name=name, kind="person", email="c@example.org",
                       address=Address(line1=line1, postal_code="33000", city=city)),
        lines=(Line(description=description, quantity="1", unit_price="100", vat_rate="20", sku=sku),),
        payments=(Payment(amount=Money(amount="120", currency="EUR"), paid_at=datetime(2026, 3, 5, tzinfo=UTC),
                          method=PaymentMethod.CARD, reference=reference),),
        status=InvoiceStatus.PAID, amount_paid=Money(amount="120", currency="EUR"),
        modified_at=datetime(2026, 3, 5, tzinfo=UTC))


def render(renderer: Renderer, inv: Invoice) -> bytes:
    return renderer.render(PaidReceipt(invoice=inv, number="F-2026-0001", issued_on=date(2026, 3, 5),
                                       receipt_id="r1"))


def pdf_text(pdf: bytes) -> str:
    """The text layer without whitespace (pypdf breaks lines where the PDF wraps) and without
    the NULs pypdf leaves when a subset uses WeasyPrint's own /Encoding CMap."""
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"\s+", "", text).replace("\x00", "")


def pdf_actions(pdf: bytes) -> Iterator[str]:
    """Link and script actions found by structure (object streams may hide them from a byte search)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    yield from (f"catalog {key}" for key in ("/OpenAction", "/AA") if key in root)
    if "/Names" in root and "/JavaScript" in root["/Names"].get_object():
        yield "catalog /Names /JavaScript"
    for number, page in enumerate(reader.pages, 1):
        yield from (f"page {number} annotation {a.get_object().get('/Subtype')}" for a in page.get("/Annots") or [])


@pytest.mark.parametrize(("field", "payload"), [
    ("name", SCRIPT), ("description", SCRIPT), ("line1", SCRIPT), ("city", "<i>Lyon</i>"), ("reference", "<b>R</b>"),
    ("sku", "<u>SKU</u>"), ("description", "{{ 7*7 }}{% if 1 %}x{% endif %}"),
    ("name", "شركة الاختبار עברית"), ("description", "Café ☕ naïve"), ("name", "Établissements " + "N" * 9_985),
])
def test_hostile_text_prints_as_text_with_no_action_in_the_pdf(renderer: Renderer, field: str, payload: str) -> None:
    pdf = render(renderer, paid_invoice(**{field: payload}))
    assert not list(pdf_actions(pdf))
    for token in (b"/JS", b"/JavaScript", b"/URI", b"/Launch", b"/SubmitForm", b"evil.example"):
        assert token not in pdf, token
    shown = pdf_text(pdf)
    # a 10,000-character name wraps over lines the extraction may reorder: a long run of it suffices
    expected = re.sub(r"\s+", "", payload)[:500]
    assert expected in shown, (field, expected[:80])


def test_the_terminal_table_prints_reasons_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """``receipts list`` in a pipe: tab-separated, hostile cells printed verbatim on one line."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    _print_rows(Console(file=io.StringIO()), "receipts", ("id", "customer"), [("r1", "<b>x</b>\tnew\nline")])
    assert out.getvalue() == "id\tcustomer\nr1\t<b>x</b> new line\n"


# -- inputs that once broke the product --------------------------------------------------------------
@pytest.mark.parametrize("price", ["1e26", "1e30", "1E+999999"])
def test_a_huge_amount_is_a_bad_record(price: str) -> None:
    with pytest.raises(BadRecord):
        mapped({"hs_amount_paid": "0"}, {"price": price})


@pytest.mark.parametrize("props", [{"hs_invoice_date": "9" * 25}, {"hs_invoice_date": "9" * 400},
                                   {"pouracquit_payments": json.dumps([{"amount": "120", "date": "9" * 30}])}])
def test_an_out_of_range_epoch_date_is_a_bad_record(props: dict[str, str]) -> None:
    with pytest.raises(BadRecord):
        mapped(props)


def test_a_deeply_nested_payment_list_is_a_bad_record() -> None:
    with pytest.raises(BadRecord):
        mapped({"pouracquit_payments": "[" * 100_000})


def test_a_negative_vat_rate_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError):
        Line(description="x", quantity="1", unit_price="100", vat_rate="-5")


@pytest.mark.parametrize("name", ["Camille\x00Durand", "Camille\x0bDurand", "Camille\x1b[31mDurand",
                                  "Camille\ufffeDurand", "Camille\ud800Durand"])
def test_text_xml_cannot_hold_is_refused_before_or_at_render(renderer: Renderer, name: str) -> None:
    try:
        inv = mapped(contact={"firstname": name})
    except BadRecord:
        return  # refused at intake: the fix may live in the model or the mapping
    try:
        render(renderer, paid_invoice(name=inv.customer.name))
    except BadRecord:
        return  # or quarantined by the render step


def test_controls_xml_can_hold_print_as_text(renderer: Renderer) -> None:
    """Tab, newline, carriage return and DEL are legal XML 1.0: they render."""
    pdf = render(renderer, paid_invoice(name="Camille\tDurand\r\nDEL\x7f"))
    assert "CamilleDurand" in pdf_text(pdf)


@pytest.mark.xfail(strict=True, reason=(
    "BUG: emoji have no glyph in the bundled DejaVu fonts; WeasyPrint draws .notdef boxes, so the customer's "
    "name is not printed as given and the file references .notdef, which PDF/A-3 forbids (ISO 19005-3 6.2.11.8)"))
def test_emoji_in_a_name_print_as_glyphs(renderer: Renderer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        render(renderer, paid_invoice(name="Zoë 🧾🚀"))
    assert not [r for r in caplog.records if ".notdef" in r.getMessage()]


RENDER_LONG_LINE = textwrap.dedent("""
    from datetime import UTC, date, datetime
    from pouracquit.core.document import DocumentSettings, PaidReceipt, Renderer, Seller
    from pouracquit.common.model import Address, Invoice, Line, Party, Payment
    from pouracquit.sandbox.launch import DEMO_SELLER
    paid = {"amount": "120", "currency": "EUR"}
    when = datetime(2026, 3, 5, tzinfo=UTC)
    invoice = Invoice(
        source_id="1", number="F-1", currency="EUR", issue_date=date(2026, 3, 1), status="paid",
        customer=Party(name="Camille", kind="person", email="c@example.org",
                       address=Address(line1="3 rue", postal_code="33000", city="B")),
        lines=(Line(description="word " * 800, quantity="1", unit_price="100", vat_rate="20"),),
        payments=(Payment(amount=paid, paid_at=when, method="card"),), amount_paid=paid, modified_at=when)
    # the layout is what is timed: the schema check stays, the schematron compile (seconds, once per
    # process) is measured elsewhere
    Renderer(Seller(**DEMO_SELLER), DocumentSettings(validate="xsd")).render(
        PaidReceipt(invoice=invoice, number="F-1", issued_on=date(2026, 3, 5), receipt_id="r1"))
""")


def test_the_longest_line_description_a_vendor_takes_renders_in_seconds() -> None:
    # 4,000 characters: the most QuickBooks and Xero take (core/limits.py); longer ones are refused at intake.
    # A subprocess, so the runaway layout is killed at the deadline instead of burning the rest of the run.
    try:
        subprocess.run([sys.executable, "-c", RENDER_LONG_LINE], check=True, timeout=30, capture_output=True)
    except subprocess.TimeoutExpired:
        # only the deadline is the known bug: any other failure of the render must fail this test
        raise TimeoutError("rendering a 4,000-character line description took more than 30 s") from None


@pytest.mark.parametrize("customer", ["[/b] Dupont", "[link=https://evil.example]Dupont[/link]"])
def test_receipts_list_on_a_terminal_prints_names_as_text(customer: str) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200)
    _print_rows(console, "receipts", ("id", "customer"), [("r1", customer)])
    assert customer in screen.getvalue() and "\x1b]8;" not in screen.getvalue()
