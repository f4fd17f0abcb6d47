"""The two reports as text: a table for a terminal, CSV, JSON, or HTML (Jinja2 with
autoescape, so a customer name from the CRM can never become markup).

``payments_html`` and ``reconcile_html`` with ``standalone=False`` give the
fragment the admin page embeds; ``STYLESHEET`` is the CSS those fragments expect.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from importlib import resources
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .labels import MEANINGS, RULES, TEXT, Language, column
from .payments import ALL, BUCKETS, PaymentsReport
from .plots import all_plots
from .reconcile import Reconciliation

Format = Literal["table", "csv", "json", "html"]
FORMATS: tuple[str, ...] = ("table", "csv", "json", "html")
STYLESHEET = resources.files(__package__).joinpath("templates/report.css").read_text(encoding="utf-8")
# The table's columns; the CSV and JSON carry every figure (see CustomerRow.figures).
_TABLE = ("customer", "currency", "segment", "invoices", "billed", "paid_invoices", "days_to_pay_mean",
          "days_to_pay_median", "days_to_pay_p90", "share_paid_late", "days_late_mean", "open_amount",
          *(f"ageing_{b}" for b in BUCKETS), "dso")
_env = Environment(loader=PackageLoader("pouracquit.core.insight", "templates"),
                   autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)


def _rows(report: PaymentsReport) -> list[dict[str, object]]:
    """Every customer row, then each currency's total row."""
    return [r.figures(report.survey) for r in (*report.rows, *report.totals)]


def _period(report: PaymentsReport) -> str:
    start = report.period.start.isoformat() if report.period.start else "(no invoice)"
    return f"{start} to {report.period.end.isoformat()}"


def _cell(value: object) -> object:
    """A CRM text a spreadsheet would run as a formula is opened as text (OWASP, "CSV Injection")."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _text_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def payments_html(report: PaymentsReport, *, standalone: bool = True, language: Language = "en") -> str:
    """The report as HTML: a whole page, or (``standalone`` False) the admin page's fragment."""
    rows = _rows(report)
    columns = list(_TABLE) + (["survey_answers", "survey_mean"] if report.survey else [])
    by_currency: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_currency.setdefault(str(row["currency"]), []).append({c: row.get(c, "") for c in columns})
    return _env.get_template("payments.html").render(
        standalone=standalone, css=STYLESHEET, lang=language, t=TEXT[language], rules=RULES[language],
        headers={c: column(c, language) for c in columns},
        start=report.period.start.isoformat() if report.period.start else "…", end=report.period.end.isoformat(),
        days=report.totals[0].dso_days if report.totals else 0,
        by_currency=by_currency, columns=columns, all=ALL, unread=report.unread, plots=all_plots(report))


def render_payments(report: PaymentsReport, fmt: Format) -> str:
    rows = _rows(report)
    if fmt == "json":
        return json.dumps({"period": {"from": report.period.start.isoformat() if report.period.start else None,
                                      "to": report.period.end.isoformat()},
                           "segments": report.segment_rules, "customers": rows,
                           "monthly_received": {c: {m: f"{v:.2f}" for m, v in months.items()}
                                                for c, months in report.monthly.items()},
                           "left_out": [{"source_id": s, "reason": r} for s, r in report.unread]},
                          ensure_ascii=False, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        names = list(rows[0]) if rows else ["customer", "currency"]
        writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
        return out.getvalue()
    if fmt == "html":
        return payments_html(report)
    rules = "\n".join(f"  {name}: {rule}" for name, rule in report.segment_rules.items())
    left = "".join(f"\nleft out {sid}: {why}" for sid, why in report.unread)
    return (f"Payments {_period(report)} (per currency, never converted)\n"
            + _text_table(_TABLE, [[r[c] for c in _TABLE] for r in rows]) + f"\nSegments:\n{rules}{left}")


def reconcile_html(results: Sequence[Reconciliation], *, standalone: bool = True, language: Language = "en") -> str:
    """The drifts as HTML: a whole page, or (``standalone`` False) the admin page's fragment."""
    return _env.get_template("reconcile.html").render(standalone=standalone, css=STYLESHEET, lang=language,
                                                     t=TEXT[language], results=results, kinds=MEANINGS[language])


def render_reconcile(results: Sequence[Reconciliation], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2)
    if fmt == "html":
        return reconcile_html(results)
    drifts = [d for r in results for d in r.drifts]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["connection", "kind", "source_id", "number", "ledger_ref", "detail", "fix"])
        writer.writerows([_cell(v) for v in (d.connection, d.kind, d.source_id, d.number, d.ledger_ref, d.detail,
                                               d.fix)] for d in drifts)
        return out.getvalue()
    lines = [f"{r.connection}: not reconciled: {r.error}" for r in results if r.error]
    lines += [d.line() for d in drifts]
    lines += [f"{r.connection}: in step ({r.receipts} receipts, {r.bookings} ledger documents)"
              for r in results if not r.error and not r.drifts]
    return "\n".join(lines)
