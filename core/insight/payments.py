"""Payment behaviour per customer and currency: how fast they pay, how often late,
what they still owe and how old it is, the period's DSO and a segment.

Pure computation over ``InvoiceFacts``; ``facts.invoice_facts`` reads them.
Every figure is kept apart per currency (no conversion), money stays Decimal,
and the sums each ratio is made of are in the rows, so the CSV alone gives
every figure back (docs/reports.md gives the formulas).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

# A due date the CRM left empty: French law's default term, 30 days after the invoice
# (Code de commerce, article L441-10 I: "le trentième jour suivant la date de réception
# des marchandises ou d'exécution de la prestation").
DEFAULT_TERM_DAYS = 30
BUCKETS = ("not_due", "1_30", "31_60", "61_90", "over_90")
BUCKET_LABELS = {"not_due": "not due", "1_30": "1–30 days", "31_60": "31–60 days", "61_90": "61–90 days",
                 "over_90": "> 90 days"}
LATE_SHARE = Decimal("0.25")
SEGMENT_RULES = {
    "at_risk": "at risk of default: some amount is more than 60 days past its due date",
    "late": f"not at risk, and more than {LATE_SHARE:.0%} of paid invoices were paid after their due date "
            "or some amount is past due",
    "prompt": "neither of the above",
}
ALL = "(all)"  # the customer name of a currency's total row
TENTH = Decimal("0.1")


@dataclass(frozen=True)
class InvoiceFacts:
    """What the report needs of one invoice (status as the CRM has it now)."""

    source_id: str
    customer: str
    currency: str
    issue_date: date
    due_date: date | None
    gross: Decimal
    paid: Decimal
    status: str  # open | paid | void | draft
    payments: tuple[tuple[date, Decimal], ...] = ()  # (day in France, amount)

    @property
    def due(self) -> date:
        return self.due_date or self.issue_date + timedelta(days=DEFAULT_TERM_DAYS)

    @property
    def paid_day(self) -> date | None:
        """The day it was paid in full, for a paid invoice."""
        if self.status != "paid" or self.paid < self.gross or not self.payments:
            return None
        return max(day for day, _ in self.payments)


@dataclass(frozen=True)
class Period:
    start: date | None
    end: date

    def holds(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and day <= self.end


@dataclass
class CustomerRow:
    customer: str
    currency: str
    invoices: int = 0
    billed: Decimal = Decimal("0")
    paid_invoices: int = 0
    days_to_pay: list[int] = field(default_factory=list)
    paid_late: int = 0
    days_late: list[int] = field(default_factory=list)
    received: Decimal = Decimal("0")
    open_amount: Decimal = Decimal("0")
    ageing: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKETS, Decimal("0")))
    dso_days: int = 0
    survey: tuple[int, Decimal] | None = None  # (answers, mean score) of the satisfaction survey

    @property
    def segment(self) -> str:
        if self.ageing["61_90"] + self.ageing["over_90"] > 0:
            return "at_risk"
        past_due = sum((self.ageing[b] for b in BUCKETS[1:]), Decimal("0"))
        if past_due > 0 or (self.paid_invoices and Decimal(self.paid_late) / self.paid_invoices > LATE_SHARE):
            return "late"
        return "prompt"

    @property
    def dso(self) -> Decimal | None:
        """Open amount at the period's end over the period's billing, times its days."""
        if self.billed <= 0:
            return None
        return (self.open_amount / self.billed * self.dso_days).quantize(TENTH, rounding=ROUND_HALF_UP)

    def figures(self, survey: bool = False) -> dict[str, object]:
        """The row as the CSV and JSON carry it (strings for exact decimals); with ``survey``,
        the satisfaction answers and their mean score (blank when the customer gave none)."""
        days = sorted(self.days_to_pay)
        row: dict[str, object] = {
            "customer": self.customer, "currency": self.currency,
            "segment": "" if self.customer == ALL else self.segment,
            "invoices": self.invoices, "billed": f"{self.billed:.2f}", "paid_invoices": self.paid_invoices,
            "days_to_pay_sum": sum(days), "days_to_pay_mean": _mean(days), "days_to_pay_median": _median(days),
            "days_to_pay_p90": _p90(days), "paid_late": self.paid_late,
            "share_paid_late": _ratio(self.paid_late, self.paid_invoices), "days_late_mean": _mean(self.days_late),
            "days_late_max": max(self.days_late) if self.days_late else "", "received": f"{self.received:.2f}",
            "open_amount": f"{self.open_amount:.2f}",
            **{f"ageing_{b}": f"{self.ageing[b]:.2f}" for b in BUCKETS},
            "period_days": self.dso_days, "dso": "" if self.dso is None else str(self.dso),
        }
        if survey:
            answers, mean = self.survey or ("", "")
            row["survey_answers"], row["survey_mean"] = answers, str(mean)
        return row


def _mean(values: list[int]) -> str:
    if not values:
        return ""
    return str((Decimal(sum(values)) / len(values)).quantize(TENTH, rounding=ROUND_HALF_UP))


def _median(values: list[int]) -> str:
    if not values:
        return ""
    ordered, mid = sorted(values), len(values) // 2
    middle = Decimal(ordered[mid]) if len(ordered) % 2 else Decimal(ordered[mid - 1] + ordered[mid]) / 2
    return str(middle.quantize(TENTH, rounding=ROUND_HALF_UP))


def _p90(values: list[int]) -> str:
    """Nearest rank: the smallest value at least 90 % of the values do not exceed."""
    if not values:
        return ""
    return str(sorted(values)[math.ceil(len(values) * 9 / 10) - 1])


def _ratio(part: int, whole: int) -> str:
    return "" if not whole else str((Decimal(part) / whole).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def bucket_of(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "not_due"
    if days_past_due <= 30:
        return "1_30"
    if days_past_due <= 60:
        return "31_60"
    return "61_90" if days_past_due <= 90 else "over_90"


@dataclass
class PaymentsReport:
    period: Period
    rows: list[CustomerRow]
    totals: list[CustomerRow]  # one per currency, customer ALL
    monthly: dict[str, dict[str, Decimal]]  # currency -> "YYYY-MM" -> amount received
    unread: list[tuple[str, str]] = field(default_factory=list)  # (source id, why it is left out)
    survey: bool = False

    @property
    def segment_rules(self) -> dict[str, str]:
        return SEGMENT_RULES


def _add(row: CustomerRow, inv: InvoiceFacts, period: Period) -> None:
    if period.holds(inv.issue_date):
        row.invoices += 1
        row.billed += inv.gross
    row.received += sum((amount for day, amount in inv.payments if period.holds(day)), Decimal("0"))
    paid_day = inv.paid_day
    if paid_day is not None and period.holds(paid_day):
        row.paid_invoices += 1
        row.days_to_pay.append((paid_day - inv.issue_date).days)
        if paid_day > inv.due:
            row.paid_late += 1
            row.days_late.append((paid_day - inv.due).days)
    left = inv.gross - inv.paid
    if inv.status == "open" and left > 0 and inv.issue_date <= period.end:
        row.open_amount += left
        row.ageing[bucket_of((period.end - inv.due).days)] += left


def analyse(facts: Iterable[InvoiceFacts], period: Period,
            survey: dict[str, tuple[int, Decimal]] | None = None) -> PaymentsReport:
    """The report over ``period``: drafts and voided invoices are left out; an open
    amount is aged at the period's end by days past its due date."""
    rows: dict[tuple[str, str], CustomerRow] = {}
    totals: dict[str, CustomerRow] = {}
    monthly: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    included = [inv for inv in facts if inv.status in ("open", "paid") and inv.issue_date <= period.end]
    first = period.start or min((inv.issue_date for inv in included), default=None)
    for inv in included:
        _add(rows.setdefault((inv.customer, inv.currency), CustomerRow(inv.customer, inv.currency)), inv, period)
        _add(totals.setdefault(inv.currency, CustomerRow(ALL, inv.currency)), inv, period)
        for day, amount in inv.payments:
            if period.holds(day):
                monthly[inv.currency][f"{day:%Y-%m}"] += amount
    days = (period.end - first).days + 1 if first else 0
    for row in (*rows.values(), *totals.values()):
        row.dso_days = days
        if survey is not None and row.customer in survey:
            row.survey = survey[row.customer]
    ordered = sorted(rows.values(), key=lambda r: (r.currency, r.customer.casefold()))
    return PaymentsReport(period=Period(first, period.end), rows=ordered,
                          totals=[totals[c] for c in sorted(totals)],
                          monthly={c: dict(sorted(m.items())) for c, m in sorted(monthly.items())},
                          survey=survey is not None)
