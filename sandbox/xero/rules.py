"""What the Xero sandbox's organisation starts with, and the shapes of Xero's
answers that every writer shares: dates, refusals, amounts.

Facts are from Xero's OpenAPI spec vendored in ``sandbox/xero/spec``
(``xero_accounting.yaml``, cited as ``spec#/components/schemas/...``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pouracquit.sandbox.server import HttpError

TENANT_ID = "5b1a6cb2-7a0e-4c53-9d84-3f1e2b7f0a11"
TENANT_NAME = "Demo Company (FR)"
BASE_CURRENCY = "EUR"
PAGE_SIZE = 100
ATTACHMENTS_PER_DOCUMENT = 10
CENT = Decimal("0.01")
# spec#/components/schemas/Invoice/properties/CurrencyRate: "(max length = [18].[6])".
RATE_STEP = Decimal("0.000001")

# The currencies the demo organisation has added (Settings > Currencies). GET /Currencies
# lists the base currency too (spec#/paths/~1Currencies/get example: a NZ org lists NZD).
DEMO_CURRENCIES: tuple[str, ...] = ("EUR", "USD")
CURRENCY_NAMES = {"EUR": "Euro", "USD": "United States Dollar", "GBP": "British Pound", "CHF": "Swiss Franc"}
# Stand-in for the XE.com rate of the day Xero applies when a document has no CurrencyRate
# (spec: "If no rate is specified, the XE.com day rate is used"), in Xero's direction:
# units of the foreign currency for one unit of the base currency (see docs/vendors.md, Xero).
DAY_RATES = {"USD": Decimal("1.085000"), "GBP": Decimal("0.835000"), "CHF": Decimal("0.940000")}

# (Name, TaxType, rate %, applies to revenue): collected VAT, deductible VAT, exemptions.
TAX_RATES: tuple[tuple[str, str, str, bool], ...] = (
    ("TVA collectée 20 %", "OUTPUT", "20", True),
    ("TVA collectée 10 %", "TAX001", "10", True),
    ("TVA collectée 5,5 %", "TAX002", "5.5", True),
    ("TVA collectée 2,1 %", "TAX003", "2.1", True),
    ("TVA déductible 20 %", "INPUT", "20", False),
    ("TVA déductible 10 %", "TAX004", "10", False),
    ("Exonéré de TVA", "EXEMPTOUTPUT", "0", True),
    ("Autoliquidation", "TAX005", "0", True),
    ("Hors champ de la TVA", "NONE", "0", True),
)
# (Code, Name, Type, Class)
ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    ("512000", "Banque", "BANK", "ASSET"),
    ("411000", "Clients", "CURRENT", "ASSET"),
    ("706000", "Prestations de services", "REVENUE", "REVENUE"),
    ("707000", "Ventes de marchandises", "SALES", "REVENUE"),
    ("606000", "Achats non stockés", "EXPENSE", "EXPENSE"),
)
CONTACTS: tuple[tuple[str, str], ...] = (
    ("Boulangerie Martin", "compta@boulangerie-martin.fr"),
    ("Dupont & Fils SA", "factures@dupont-fils.fr"),
    ("Marie Curie", "marie.curie@example.fr"),
)


def msdate(moment: datetime | date) -> str:
    """Xero's JSON date: ``/Date(1700000000000+0000)/`` (milliseconds since the epoch, UTC)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def validation(message: str, element: dict[str, Any] | None = None, *messages: str) -> HttpError:
    """Xero's 400 ValidationException, the refused element echoed with its ValidationErrors."""
    elem = dict(element or {})
    elem["ValidationErrors"] = [{"Message": m} for m in (message, *messages)]
    return HttpError(400, {"ErrorNumber": 10, "Type": "ValidationException",
                           "Message": "A validation exception occurred", "Elements": [elem]})


def query_error(message: str) -> HttpError:
    return HttpError(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})


def not_found(message: str = "The resource you're looking for cannot be found") -> HttpError:
    return HttpError(404, {"Title": "Not Found", "Status": 404, "Detail": message})


def number(value: Any, name: str, element: dict[str, Any]) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise validation(f"{name} must be a number", element) from None
    if not result.is_finite():
        raise validation(f"{name} must be a number", element)
    return result


def day(value: Any, name: str, element: dict[str, Any]) -> date:
    text = str(value or "")
    if text.startswith("/Date("):
        return datetime.fromtimestamp(int(text[6:19]) / 1000, UTC).date()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise validation(f"{name} is not a valid date", element) from None


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def stamp() -> str:
    return msdate(datetime.now(UTC))
