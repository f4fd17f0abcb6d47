"""The payments report's plots as inline SVG, drawn by matplotlib's SVG backend (no display, no raster, no pyplot).

The SVG carries no ``style`` attribute nor ``<style>`` element: matplotlib's inline
styles are turned into SVG presentation attributes, so a page served under a strict
Content-Security-Policy (no inline styles) still shows the plots as drawn. Text is
drawn as paths (matplotlib's default), so no font is needed on the reader's side;
the date metadata and id salt are fixed, so one report gives the same bytes twice.
"""

from __future__ import annotations

import io
import re

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .payments import BUCKET_LABELS, BUCKETS, PaymentsReport

# the ids matplotlib writes into an SVG are hashed with this salt: a fixed one gives the same bytes twice
matplotlib.rcParams["svg.hashsalt"] = "pouracquit"
_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')
_STYLE_ELEMENT = re.compile(r"<style[^>]*>.*?</style>", re.DOTALL)
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
# CSS properties that are also SVG presentation attributes (SVG 1.1, "Property index").
_PRESENTATION = frozenset({
    "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin",
    "stroke-opacity", "stroke-dasharray", "stroke-dashoffset", "stroke-miterlimit", "opacity", "clip-path",
    "font-family", "font-size", "font-weight", "font-style", "text-anchor", "mask",
})


def _attributes(match: re.Match[str]) -> str:
    pairs = []
    for declaration in match.group(1).split(";"):
        name, _, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if name in _PRESENTATION and value:
            pairs.append(f' {name}="{value}"')
    return "".join(pairs)


def _svg(fig: Figure, label: str) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = _STYLE_ELEMENT.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1))
    root = f'<svg stroke-linejoin="round" stroke-linecap="butt" role="img" aria-label="{label}" '
    text = text.replace("<svg ", root, 1)
    return _STYLE_ATTR.sub(_attributes, text)


def _figure(title: str) -> tuple[Figure, Axes]:
    # a bare Figure, not pyplot: no global figure registry nor backend switch, so the admin
    # server's threads can each draw their own
    fig = Figure(figsize=(6.4, 3.2), dpi=72)
    ax = fig.subplots()
    ax.set_title(title, fontsize=11)
    fig.set_label(title)
    return fig, ax


def days_to_pay(report: PaymentsReport) -> str:
    """Histogram of days to pay, one series per currency."""
    fig, ax = _figure("Days to pay")
    series = {t.currency: t.days_to_pay for t in report.totals if t.days_to_pay}
    if series:
        ax.hist(list(series.values()), bins=12, label=list(series), stacked=False)
        ax.legend(fontsize=8)
    ax.set_xlabel("days from invoice to full payment")
    ax.set_ylabel("invoices")
    return _svg(fig, fig.get_label())


def ageing(report: PaymentsReport) -> str:
    """Open amounts by age bucket, one group of bars per currency."""
    fig, ax = _figure("Open amounts by days past due")
    width = 0.8 / max(1, len(report.totals))
    for offset, total in enumerate(report.totals):
        xs = [i + offset * width for i in range(len(BUCKETS))]
        ax.bar(xs, [float(total.ageing[b]) for b in BUCKETS], width=width, label=total.currency)
    ax.set_xticks([i + width * (len(report.totals) - 1) / 2 for i in range(len(BUCKETS))],
                  [BUCKET_LABELS[b] for b in BUCKETS], fontsize=8)
    if report.totals:
        ax.legend(fontsize=8)
    return _svg(fig, fig.get_label())


def monthly(report: PaymentsReport) -> str:
    """Amounts received per month, one line per currency."""
    fig, ax = _figure("Amounts received per month")
    for currency, months in report.monthly.items():
        ax.plot(list(months), [float(v) for v in months.values()], marker="o", label=currency)
    if report.monthly:
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    return _svg(fig, fig.get_label())


def all_plots(report: PaymentsReport) -> dict[str, str]:
    """The three plots by name, as SVG text."""
    return {"days_to_pay": days_to_pay(report), "ageing": ageing(report), "monthly": monthly(report)}

