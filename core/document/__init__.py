"""Paid invoice -> legally complete French facture acquittée (PDF/A-3b + Factur-X).

``Renderer(seller, settings).render(PaidReceipt(...))`` is the whole API the
pipeline needs; the modules behind it hold one concern each: ``settings``
(config sections), ``mentions`` (what the law makes us print), ``wording``
(labels and Babel formats), ``context`` (invoice -> template values), ``cii``
(Factur-X XML), ``pdf`` (WeasyPrint and embedding).
"""


from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import PaidReceipt
from .mentions import MissingMention
from .settings import DocumentSettings, Seller, SellerAddress

if TYPE_CHECKING:
    from .pool import RenderPool
    from .renderer import Renderer

__all__ = ["DocumentSettings", "MissingMention", "PaidReceipt", "RenderPool", "Renderer", "Seller", "SellerAddress"]


def __getattr__(name: str) -> Any:
    # WeasyPrint, Saxon and factur-x take over a second to import: only what renders pays for it
    if name == "Renderer":
        from .renderer import Renderer
        return Renderer
    if name == "RenderPool":
        from .pool import RenderPool
        return RenderPool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
