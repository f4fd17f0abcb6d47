"""Documents per second per core on the one-page receipt, beside a bare WeasyPrint
page of the same content, with where the time goes (phases and WeasyPrint's own).

CPU time of this process (``time.process_time``) is what is divided: the figure is
per core whatever else the machine runs; the best of several rounds is kept.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench_render import SELLER, receipt
from weasyprint import CSS, HTML

from pouracquit.core.document import DocumentSettings, Renderer
from pouracquit.core.document.context import build_context
from pouracquit.core.document.pdf import embed_facturx
from pouracquit.core.document.validate import require_valid

BARE_PAGE = CSS(string="@page { size: A4; margin: 16mm 15mm 24mm 15mm }")


@dataclass
class RenderFigures:
    documents: int
    per_core: float  # whole documents (check, QR, layout, PDF/A, Factur-X, XSD) per CPU second
    bare_per_core: float  # WeasyPrint alone, the same HTML without our stylesheet
    weasyprint_per_core: float  # WeasyPrint alone, the same HTML with our stylesheet
    phases_ms: dict[str, float] = field(default_factory=dict)
    profile: str = ""


def _best(rounds: int, run: Callable[[], None], n: int) -> float:
    """Documents per CPU second, best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return n / best


def measure(n: int = 30, rounds: int = 3) -> RenderFigures:
    renderer = Renderer(SELLER, DocumentSettings(verify_base_url="https://receipts.example"))
    receipts = [receipt(i) for i in range(n + 1)]
    renderer.render(receipts[0])  # warm-up: fonts, schematrons, code paths
    work = receipts[1:]
    htmls = [renderer.template.render(build_context(r, renderer.seller, renderer.settings, renderer.wording,
                                                    renderer._qr(r))) for r in work]
    HTML(string=htmls[0]).write_pdf(stylesheets=[BARE_PAGE])
    whole = _best(rounds, lambda: [renderer.render(r) for r in work], n)
    bare = _best(rounds, lambda: [HTML(string=h).write_pdf(stylesheets=[BARE_PAGE]) for h in htmls], n)
    ours = _best(rounds, lambda: [renderer.writer.html_to_pdf(h) for h in htmls], n)
    return RenderFigures(n, whole, bare, ours, _phases(renderer, work), _profile(renderer, htmls[:10]))


def _phases(renderer: Renderer, work: list) -> dict[str, float]:  # type: ignore[type-arg]
    spent: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], object]) -> object:
        start = time.process_time()
        out = fn()
        spent[name] = spent.get(name, 0.0) + time.process_time() - start
        return out

    for r in work:
        xml = timed("check (Factur-X XML + schematron)", lambda r=r: renderer.check(r))
        qr = timed("QR code", lambda r=r: renderer._qr(r))
        html = timed("template", lambda r=r, qr=qr: renderer.template.render(
            build_context(r, renderer.seller, renderer.settings, renderer.wording, qr)))
        pdf = timed("WeasyPrint (layout + PDF/A)", lambda html=html: renderer.writer.html_to_pdf(html))
        doc = timed("Factur-X embedding", lambda pdf=pdf, xml=xml: embed_facturx(
            pdf, xml, title="t", subject="s", author="a", lang="fr-FR"))
        timed("XSD check of the PDF", lambda doc=doc: require_valid(doc, "xsd"))
    return {k: 1000 * v / len(work) for k, v in spent.items()}


def _profile(renderer: Renderer, htmls: list[str]) -> str:
    """WeasyPrint's stages for these pages, cumulative, as cProfile prints them."""
    profile = cProfile.Profile()
    profile.enable()
    for h in htmls:
        renderer.writer.html_to_pdf(h)
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(
        r"weasyprint/(__init__|document|layout/__init__|css/__init__|formatting_structure/build|draw/__init__"
        r"|pdf/__init__)\.py:\d+\((write_pdf|render|_render|layout_document|get_all_computed_styles"
        r"|build_formatting_structure|draw_page|generate_pdf|paint)\)")
    lines = [ln for ln in out.getvalue().splitlines()
             if ("weasyprint" in ln and "List reduced" not in ln) or "ncalls" in ln]
    return "\n".join(ln.replace(str(__import__("weasyprint").__path__[0]), "weasyprint") for ln in lines)
