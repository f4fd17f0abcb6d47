"""Multi-page documents: every page says whose document it is and which, and the
totals and legal mentions never sit alone on a page without the lines above them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from doc_samples import checker, credit_note, flat, invoice, pages_of, receipt
from support import SELLER

from pouracquit.common.model import Line
from pouracquit.core.document import DocumentSettings, Renderer

__all__ = ["checker"]  # the module-scoped fixture, imported for pytest


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(SELLER, DocumentSettings())


def articles(count: int, exempt_last: bool = True) -> list[Line]:
    lines = [Line(description=f"Article n°{i}", quantity="1", unit_price="12.5", vat_rate="20") for i in range(count)]
    if exempt_last:  # an exempt line brings a VAT mention that must stay with the totals
        lines[-1] = Line(description="Formation", quantity="1", unit_price="100", vat_rate="0",
                         vat_exemption="VATEX-EU-132-1I")
    return lines


def rows(page: str) -> int:
    return page.count("Article n°") + page.count("Formation ")


def test_45_lines_every_page_identified_and_totals_with_the_last_lines(
    renderer: Renderer, checker: Callable[[bytes], list[str]]
) -> None:
    pdf = renderer.render(receipt(invoice(articles(45))))
    assert checker(pdf) == []
    pages = pages_of(pdf)
    assert len(pages) >= 2
    for i, page in enumerate(pages, 1):
        text = flat(page)
        assert "Atelier Numérique" in text, f"page {i} does not name the seller"
        assert "Facture acquittée" in text and "F-2026-0001" in text, f"page {i} lacks title or number"
        assert f"Page {i}/{len(pages)}" in text
        assert "Désignation" in text  # the table header repeats
    assert sum(rows(p) for p in pages) == 45
    last = flat(pages[-1])
    assert rows(pages[-1]) >= 3  # the totals are never alone
    assert "Total TTC" in last and "Montant acquitté" in last
    assert "Exonération de TVA, article 132 1i de la directive 2006/112/CE" in last  # with its totals
    assert "Pas d'escompte pour paiement anticipé" in last
    for page in pages[:-1]:
        assert "Total TTC" not in page and "Mentions TVA" not in page


@pytest.mark.parametrize("count", range(12, 17))
def test_totals_never_alone_where_page_one_runs_out(renderer: Renderer, count: int) -> None:
    """Between 13 and 14 lines the totals stop fitting under the lines on page 1:
    they move with the last lines, never alone, and the exemption mention goes with them."""
    pages = pages_of(renderer.render(receipt(invoice(articles(count)))))
    totals = next(i for i, p in enumerate(pages) if "Total TTC" in p)
    assert rows(pages[totals]) >= min(3, count)
    assert "directive 2006/112/CE" in flat(pages[totals])
    assert totals == len(pages) - 1


def test_the_sweep_crosses_the_page_one_boundary(renderer: Renderer) -> None:
    """The sweep above means something only if its range holds the boundary."""
    counts = [len(pages_of(renderer.render(receipt(invoice(articles(n)))))) for n in (12, 16)]
    assert counts == [1, 2]


def test_credit_note_pages_say_credit_note(renderer: Renderer) -> None:
    pages = pages_of(renderer.render(credit_note(invoice(articles(45)))))
    assert len(pages) >= 2
    assert all("Facture d'avoir" in p and "A-2026-0001" in p for p in pages)
