"""Paid invoice -> legally complete French facture acquittée (PDF/A-3b + Factur-X).

``Renderer(seller, settings).render(PaidReceipt(...))`` is the whole API the
pipeline needs; the modules behind it hold one concern each: ``settings``
(config sections), ``mentions`` (what the law makes us print), ``wording``
(labels and Babel formats), ``context`` (invoice -> template values), ``cii``
(Factur-X XML), ``pdf`` (WeasyPrint and embedding).
"""

from .context import PaidReceipt
from .mentions import MissingMention
from .pool import RenderPool
from .renderer import Renderer
from .settings import DocumentSettings, Seller, SellerAddress

__all__ = ["DocumentSettings", "MissingMention", "PaidReceipt", "RenderPool", "Renderer", "Seller", "SellerAddress"]
