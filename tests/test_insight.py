"""Insight reports without a network: the reconciliation's rules, the payment
figures' definitions, the rendering (escaping, CSP-safe SVG) and the QuickBooks
read-back's reading of a document."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal as D

from doc_samples import invoice

from pouracquit.connectors.base import LedgerBooking
from pouracquit.connectors.quickbooks.paid import booking, marker_key
from pouracquit.core.insight.facts import Issued
from pouracquit.core.insight.payments import InvoiceFacts, Period, analyse
from pouracquit.core.insight.reconcile import CrmState, Reconciliation, compare
from pouracquit.core.insight.render import payments_html, reconcile_html, render_payments, render_reconcile
from pouracquit.core.pipeline import idempotency_key
from pouracquit.state.tables import Receipt

GROSS = D("1080.00")  # doc_samples' AUDIT line: 2 × 450 + 20 % VAT


def issued(rid: str, sid: str, *, status: str = "done", ledger_id: str | None = None, kind: str = "receipt",
           amount: D = GROSS, original: str | None = None, step: str = "done") -> Issued:
    inv = invoice(source_id=sid, number=f"F-{sid}")
    row = Receipt(id=rid, connection="c", source_id=sid, kind=kind, payment_version=1, invoice_json="{}",
                  amount=amount, currency="EUR", customer="X", number=f"F-{sid}", status=status, step=step,
                  ledger_id=ledger_id, original_receipt_id=original)
    return Issued(row, inv)


def booked(ref: str, rid: str, amount: D = GROSS, state: str = "booked", paid: D | None = None) -> LedgerBooking:
    return LedgerBooking(ref=ref, number="", key=idempotency_key(rid), kind="receipt", amount=amount,
                         paid=amount if paid is None else paid, currency="EUR", state=state)


PAID = CrmState("paid", GROSS, "EUR")


def kinds(drifts: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return sorted((d.kind, d.source_id or d.ledger_ref) for d in drifts)


def test_in_step_is_no_drift() -> None:
    receipts = [issued("r1", "s1", ledger_id="L1")]
    assert compare("c", receipts, {"s1": PAID}, [booked("L1", "r1")]) == []


def test_each_drift_kind_with_its_fix() -> None:
    receipts = [
        issued("r1", "s1", ledger_id="L1"),  # booking voided
        issued("r2", "s2", ledger_id="L2"),  # booking gone
        issued("r3", "s3", ledger_id="L3"),  # ledger amount off by a cent
        issued("r4", "s4", ledger_id="L4"),  # open again in the CRM
        issued("r5", "s5", status="failed", step="ledger_record"),  # paid, never booked
        issued("r6", "s6", status="failed", step="crm_attach", ledger_id="L6"),  # booked, not attached
    ]
    crm = {f"s{i}": PAID for i in range(1, 8)} | {"s4": CrmState("open", D(0), "EUR")}
    bookings = [booked("L1", "r1", D(0), state="voided"), booked("L3", "r3", GROSS - D("0.01")),
                booked("L4", "r4"), booked("L6", "r6"), booked("L9", "rX")]
    drifts = compare("c", receipts, crm, bookings)
    assert kinds(drifts) == [
        ("amount_differs", "s3"), ("booked_not_attached", "L9"), ("booked_not_attached", "s6"),
        ("deleted_in_ledger", "s2"), ("paid_in_ledger_open_in_crm", "s4"), ("paid_not_booked", "s5"),
        ("paid_not_booked", "s7"), ("voided_in_ledger", "s1")]
    fixes = {d.source_id or d.ledger_ref: d.fix for d in drifts}
    assert fixes["s5"] == "pouracquit receipts retry r5" and fixes["s6"] == "pouracquit receipts retry r6"
    assert fixes["s7"] == "pouracquit sync --connection c"
    assert all(d.fix for d in drifts)


def test_a_credit_note_nets_the_receipt() -> None:
    receipts = [issued("r1", "s1", ledger_id="L1"),
                issued("r2", "s1", ledger_id="C2", kind="credit_note", amount=D("80.00"), original="r1")]
    crm = {"s1": CrmState("paid", GROSS - D("80.00"), "EUR")}
    assert compare("c", receipts, crm, [booked("L1", "r1"), booked("C2", "r2", D("80.00"))]) == []
    # the CRM amount moved by one cent more than the credit note: that is a drift
    crm = {"s1": CrmState("paid", GROSS - D("80.01"), "EUR")}
    assert kinds(compare("c", receipts, crm, [booked("L1", "r1"), booked("C2", "r2", D("80.00"))])) == [
        ("amount_differs", "s1")]


def facts(sid: str, customer: str, issue: date, gross: str, status: str = "paid",
          payments: tuple[tuple[date, D], ...] = (), due: date | None = None, currency: str = "EUR") -> InvoiceFacts:
    paid = sum((a for _, a in payments), D(0))
    return InvoiceFacts(sid, customer, currency, issue, due, D(gross), paid, status, payments)


def test_payment_figures() -> None:
    end = date(2026, 6, 30)
    rows = [
        facts("1", "A", date(2026, 1, 1), "100", payments=((date(2026, 1, 11), D(100)),)),  # 10 days
        facts("2", "A", date(2026, 1, 1), "100", payments=((date(2026, 2, 15), D(100)),)),  # 45 days, 15 late
        facts("3", "A", date(2026, 1, 1), "100", payments=((date(2026, 1, 21), D(100)),)),  # 20 days
        facts("4", "A", date(2026, 1, 1), "100", payments=((date(2026, 1, 31), D(100)),)),  # 30 days
        facts("5", "A", date(2026, 6, 20), "50", status="open"),  # due 20 July: not due
        facts("6", "A", date(2026, 1, 1), "70", status="open", payments=((date(2026, 2, 1), D(20)),),
              due=date(2026, 4, 1)),  # 90 days past due: 61–90
        facts("7", "A", date(2026, 1, 1), "999", status="void"),
        facts("8", "A", date(2026, 1, 1), "80", payments=((date(2026, 1, 5), D(80)),), currency="USD"),
    ]
    report = analyse(rows, Period(None, end))
    eur, usd = (r.figures() for r in report.rows)
    assert (eur["currency"], usd["currency"]) == ("EUR", "USD")  # never added together
    assert eur["invoices"] == 6 and eur["billed"] == "520.00" and eur["paid_invoices"] == 4
    assert (eur["days_to_pay_mean"], eur["days_to_pay_median"], eur["days_to_pay_p90"]) == ("26.3", "25.0", "45")
    assert (eur["paid_late"], eur["share_paid_late"], eur["days_late_max"]) == (1, "0.250", 15)
    assert (eur["open_amount"], eur["ageing_not_due"], eur["ageing_61_90"]) == ("100.00", "50.00", "50.00")
    assert eur["segment"] == "at_risk" and usd["segment"] == "prompt"
    assert eur["dso"] == str((D(100) / D(520) * 181).quantize(D("0.1")))
    assert report.monthly == {"EUR": {"2026-01": D(300), "2026-02": D(120)}, "USD": {"2026-01": D(80)}}
    # a period: only what was billed or paid in it counts
    june = analyse(rows, Period(date(2026, 6, 1), end)).rows[0].figures()
    assert (june["invoices"], june["paid_invoices"], june["open_amount"]) == (1, 0, "100.00")


def test_html_escapes_crm_values_and_svg_has_no_inline_style() -> None:
    hostile = '<script>alert("x")</script>'
    report = analyse([facts("1", hostile, date(2026, 1, 1), "10", payments=((date(2026, 1, 2), D(10)),))],
                     Period(None, date(2026, 2, 1)))
    html = payments_html(report, standalone=False)
    assert hostile not in html and "&lt;script&gt;" in html
    assert "<style" not in html and " style=" not in html and "<script" not in html
    assert html.count("<svg") == 3
    assert payments_html(report) == payments_html(report)  # same report, same bytes
    assert [r["customer"] for r in csv.DictReader(io.StringIO(render_payments(report, "csv")))] == [hostile, "(all)"]
    formula = analyse([facts("1", "=HYPERLINK(\"http://x\")", date(2026, 1, 1), "10")], Period(None, date(2026, 2, 1)))
    assert next(csv.DictReader(io.StringIO(render_payments(formula, "csv"))))["customer"].startswith("'=")
    result = Reconciliation("c", None, 1, 1)
    result.drifts = compare("c", [issued("r1", hostile, ledger_id="L1")], {hostile: PAID}, [])
    page = reconcile_html([result])
    assert hostile not in page and "&lt;script&gt;" in page
    assert "deleted_in_ledger" in render_reconcile([result], "csv")


def test_quickbooks_document_read_back() -> None:
    note = f"pouracquit:{idempotency_key('abc')} taux 1.08 EUR/USD"
    assert marker_key(note) == "pa-abc" and marker_key("pouracquit:pa-abc#2") == "" and marker_key(None) == ""
    sale = booking("SalesReceipt", {"Id": "7", "DocNumber": "F-1", "TotalAmt": 120.5, "PrivateNote": note}, "EUR")
    assert (sale.ref, sale.amount, sale.paid, sale.currency, sale.state) == ("7", D("120.50"), D("120.50"), "EUR",
                                                                             "booked")
    inv = booking("Invoice", {"Id": "8", "TotalAmt": 100, "Balance": 40, "CurrencyRef": {"value": "USD"}}, "EUR")
    assert (inv.ref, inv.paid, inv.currency, inv.key) == ("Invoice:8", D("60.00"), "USD", "")
    void = booking("SalesReceipt", {"Id": "9", "TotalAmt": 0, "PrivateNote": f"Voided {note}"}, "EUR")
    assert void.state == "voided" and void.key == "pa-abc"
    assert booking("RefundReceipt", {"Id": "3", "TotalAmt": 5}, "EUR").kind == "credit_note"


def test_every_format_carries_the_survey_columns() -> None:
    rows = [facts("1", "A", date(2026, 1, 1), "10", payments=((date(2026, 1, 2), D(10)),)),
            facts("2", "B", date(2026, 1, 1), "10", status="open")]
    report = analyse(rows, Period(None, date(2026, 2, 1)), {"A": (2, D("4.50"))})
    parsed = json.loads(render_payments(report, "json"))["customers"]
    assert [(r["customer"], r["survey_answers"], r["survey_mean"]) for r in parsed] == [
        ("A", 2, "4.50"), ("B", "", ""), ("(all)", "", "")]
    assert next(csv.DictReader(io.StringIO(render_payments(report, "csv"))))["survey_mean"] == "4.50"
    assert "survey_mean" in payments_html(report)


def test_html_in_french() -> None:
    report = analyse([facts("1", "Zoë", date(2026, 1, 1), "10", status="open")], Period(None, date(2026, 6, 1)))
    page = payments_html(report, language="fr")
    assert '<html lang="fr">' in page and "Paiements 2026-01-01 au 2026-06-01" in page
    assert "risque d&#39;impayé" in page and "<th scope=\"col\">ouvert</th>" in page and "Zoë" in page
    result = Reconciliation("c", None, 1, 1)
    assert "En accord : 1 reçus, 1 pièces comptables." in reconcile_html([result], language="fr")
    result.drifts = compare("c", [issued("r1", "s1", ledger_id="L1")], {"s1": PAID}, [])
    fragment = reconcile_html([result], standalone=False, language="fr")
    assert "pièce supprimée en comptabilité" in fragment and "<html" not in fragment
