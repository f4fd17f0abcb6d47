"""Acceptance of the payments report (issue 13): `report payments --format csv` on
the demo data gives per-customer figures that this test recomputes on its own
from the seeded invoices (sandbox.demo_data), with plain arithmetic."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pouracquit.app.cli import main
from pouracquit.app.report_cmd import payments_command
from pouracquit.sandbox.demo_data import demo_invoices, invoice_total
from pouracquit.state.tables import SurveyAnswer

COUNT = 14
END = date(2026, 11, 30)
TENTH = Decimal("0.1")


def _expected() -> dict[tuple[str, str], dict[str, Any]]:
    kept = [d for d in demo_invoices(COUNT) if d["status"] in ("paid", "partially_paid", "open")]
    first = min(date.fromisoformat(d["issue_date"]) for d in kept)
    days = (END - first).days + 1
    out: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {
        "invoices": 0, "billed": Decimal(0), "to_pay": [], "late": 0, "open": Decimal(0),
        "buckets": [Decimal(0)] * 5})
    for d in kept:
        row = out[(d["customer"]["name"], d["currency"])]
        issue, total = date.fromisoformat(d["issue_date"]), invoice_total(d["lines"])
        due = date.fromisoformat(d["due_date"])
        paid = sum((Decimal(p["amount"]) for p in d["payments"]), Decimal(0))
        row["invoices"] += 1
        row["billed"] += total
        if d["status"] == "paid":
            day = max(date.fromisoformat(p["date"]) for p in d["payments"])
            row["to_pay"].append((day - issue).days)
            row["late"] += day > due
        else:
            row["open"] += total - paid
            late = (END - due).days
            index = 0 if late <= 0 else 1 if late <= 30 else 2 if late <= 60 else 3 if late <= 90 else 4
            row["buckets"][index] += total - paid
    for row in out.values():
        row["dso"] = (row["open"] / row["billed"] * days).quantize(TENTH, rounding=ROUND_HALF_UP)
    return out


def test_payments_csv_matches_the_seed(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=COUNT)
    service = rig.service()
    rig.sync_until_settled(service)
    answered = service.store.receipts("demo", "done", limit=1)[0]
    with service.store.unit() as u:  # one satisfaction answer, as the survey page stores it
        u.session.add(SurveyAnswer(receipt_id=answered.id, connection="demo", customer=answered.customer, score=4))
    capsys.readouterr()
    assert payments_command(rig.settings(), end=END.isoformat(), fmt="csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    got = {(r["customer"], r["currency"]): r for r in rows if r["customer"] != "(all)"}
    expected = _expected()
    assert set(got) == set(expected)
    for key, want in expected.items():
        row, to_pay = got[key], sorted(want["to_pay"])
        assert int(row["invoices"]) == want["invoices"], key
        assert Decimal(row["billed"]) == want["billed"], key
        assert int(row["paid_invoices"]) == len(to_pay), key
        assert int(row["days_to_pay_sum"]) == sum(to_pay), key
        if to_pay:
            assert Decimal(row["days_to_pay_mean"]) == (Decimal(sum(to_pay)) / len(to_pay)).quantize(
                TENTH, rounding=ROUND_HALF_UP), key
            assert int(row["days_to_pay_p90"]) == to_pay[math.ceil(len(to_pay) * 0.9) - 1], key
        assert int(row["paid_late"]) == want["late"], key
        assert Decimal(row["open_amount"]) == want["open"], key
        buckets = [Decimal(row[f"ageing_{b}"]) for b in ("not_due", "1_30", "31_60", "61_90", "over_90")]
        assert buckets == want["buckets"], key
        assert Decimal(row["dso"]) == want["dso"], key
        assert row["segment"] == ("at_risk" if sum(want["buckets"][3:]) > 0 else
                                  "late" if sum(want["buckets"][1:]) > 0 or
                                  (to_pay and Decimal(want["late"]) / len(to_pay) > Decimal("0.25")) else "prompt")
    assert {(k[0], r["survey_answers"], r["survey_mean"]) for k, r in got.items() if r["survey_answers"]} == {
        (answered.customer, "1", "4.00")}
    # the totals per currency are the sums of the customer rows: the CSV alone gives them back
    for total in (r for r in rows if r["customer"] == "(all)"):
        mine = [r for r in got.values() if r["currency"] == total["currency"]]
        assert Decimal(total["open_amount"]) == sum(Decimal(r["open_amount"]) for r in mine)
        assert Decimal(total["billed"]) == sum(Decimal(r["billed"]) for r in mine)
    # the CRM down: the paid invoices still come from the store, the open ones are listed as left out
    rig.faults(rig.source, error_rate=1.0)
    assert payments_command(rig.settings(vendor_retry_attempts=1), end=END.isoformat(), fmt="json") == 0
    report = json.loads(capsys.readouterr().out)
    opened = sum(1 for d in demo_invoices(COUNT) if d["status"] in ("open", "partially_paid"))
    assert len(report["left_out"]) == opened
    assert all(r["reason"].startswith("not read, the CRM failed") for r in report["left_out"])
    assert sum(r["paid_invoices"] for r in report["customers"] if r["customer"] != "(all)") == sum(
        len(w["to_pay"]) for w in expected.values())


def test_payments_parameters_refused(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=2)
    settings = rig.settings()
    for kwargs, words in (({"start": "2026-13-01"}, "--from '2026-13-01' is not a date"),
                          ({"start": "2026-06-01", "end": "2026-01-01"}, "--from 2026-06-01 is after --to"),
                          ({"connection": "nope"}, "--connection 'nope' names no connection"),
                          ({"fmt": "xml"}, "--format 'xml' is not one of")):
        assert payments_command(settings, **kwargs) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err
    config = str(rig.write_config())
    assert main(["report", "payments", "--to", "30/11/2026", "--config", config]) == 2
    assert "--to '30/11/2026' is not a date" in capsys.readouterr().err
    assert main(["report", "reconcile", "--format", "xml", "--config", config]) == 2
