"""What the ledgers (QuickBooks, Xero) share, written once: the connector's
skeleton (settings laid over the mapping, one VendorClient through which every
call goes, the entry points the registry and ``connect`` use), the party
directory (customers, contacts: read once per run, matched by e-mail then by
name, created once), the mapping key a line's tax is looked up under, and the
check of the total a ledger booked.

Each vendor keeps what really differs: its calls, its pages, its documents.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal, NamedTuple

from pouracquit.common.calls import VendorClient
from pouracquit.common.errors import PermanentError, PouracquitError
from pouracquit.common.model import Line, Party
from pouracquit.common.money import round_cents
from pouracquit.mappings import load_mapping, lookup

from .base import ReceiptOrder
from .oauth import OAuthApp
from .registry import ConnectorContext


def overlay(mapping: dict[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The connection's settings laid over the vendor mapping: a table merges key by key,
    a value replaces the mapping's, an unset one (None, empty) leaves it."""
    for key, value in settings.items():
        if isinstance(value, Mapping):
            overlay(mapping.setdefault(key, {}), value)
        elif value is not None and value != "":
            mapping[key] = value
    return mapping


class CallBudget(NamedTuple):
    """The vendor's rate limit as the client paces it: ``limit`` calls per ``window`` seconds,
    at most ``concurrency`` in flight."""

    limit: int
    window: float
    concurrency: int


class LedgerConnector:
    """The skeleton of a ledger connector. A subclass names its vendor, settings model
    (a ``load(raw)`` classmethod that raises ConfigError), error table (``classify``) and
    OAuth app (``app_of``), both as staticmethods, and its call budget; it opens its
    session (which calls through ``_call``) before calling ``__init__``."""

    role: ClassVar[Literal["ledger"]] = "ledger"
    vendor: ClassVar[str]
    settings_type: ClassVar[Any]
    call_budget: ClassVar[CallBudget]
    classify: ClassVar[Callable[[Exception], PouracquitError]]
    app_of: ClassVar[Callable[[Any], OAuthApp]]

    def __init__(self, settings: Any, ctx: ConnectorContext, *, refresh: Callable[[], None],
                 overrides: Mapping[str, Any]) -> None:
        """``overrides``: the settings that take precedence over the mapping's keys."""
        self.settings = settings
        self.mapping = overlay(load_mapping(self.vendor, ctx.mapping), overrides)
        budget = self.call_budget
        self.client = VendorClient(
            vendor=self.vendor, classify=self.classify, meter=ctx.meter,
            gate=ctx.gates("api", limit=budget.limit, window=budget.window * ctx.window_scale,
                           concurrency=budget.concurrency),
            retry=ctx.retry, refresh=refresh,
        )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> Any:
        """Build from the connection's ledger table; a bad key is a ConfigError naming it."""
        return cls(cls.settings_type.load(settings), ctx)

    @classmethod
    def oauth_app(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> OAuthApp:
        """What ``pouracquit connect <vendor>`` needs (connectors.base.OAuthConnector)."""
        return cls.app_of(cls.settings_type.load(settings))

    def _call(self, op: str, fn: Any, *, replay_safe: bool = True) -> Any:
        return self.client.call(op, fn, replay_safe=replay_safe)


def rate_key(rate: Decimal) -> str:
    """``Decimal("5.50")`` -> ``"5.5"``: the key of ``[vat_rates]``."""
    text = format(rate.normalize(), "f")
    return text if text != "-0" else "0"


def tax_setting(mapping: Mapping[str, Any], line: Line) -> tuple[Any, str]:
    """What the mapping names for ``line``'s tax (its exemption's entry for an exempt line,
    else its rate's) and the key it stands under, for the error."""
    exemptions = mapping.get("exemptions", {})
    if line.vat_rate == 0 and line.vat_exemption in exemptions:
        return exemptions[line.vat_exemption], f"exemptions.{line.vat_exemption}"
    key = rate_key(line.vat_rate)
    return lookup(mapping["vat_rates"], key, "vat_rates"), f"vat_rates.{key}"


def total_refused(what: str, order: ReceiptOrder, total: object, currency: str | None = None, *,
                  where: str = "", fix: str) -> PermanentError | None:
    """The stop naming both totals when the ledger booked another gross total (or, when it
    says one, another currency) than the order's; None when they agree."""
    booked = round_cents(Decimal(str(total)))
    expected = order.invoice.gross_total.rounded()
    currency = currency or expected.currency
    if booked == expected.amount and currency == expected.currency:
        return None
    return PermanentError(f"{what} totals {booked} {currency}{where} but the "
                          f"{'credit note' if order.is_credit_note else 'invoice'} {order.number} totals "
                          f"{expected}: {fix}")


class PartyRow(NamedTuple):
    """A ledger customer as the directory indexes it. ``scope`` is what a party may be
    twice under (a QuickBooks customer's currency; nothing for a Xero contact)."""

    scope: str
    email: str
    name: str
    id: str


@dataclass
class PartyIndex:
    """Ledger ids by (scope, lower-cased e-mail) and (scope, lower-cased name)."""

    by_email: dict[tuple[str, str], str] = field(default_factory=dict)
    by_name: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, row: PartyRow) -> None:
        email = row.email.strip().lower()
        if email:
            self.by_email.setdefault((row.scope, email), row.id)  # rows come oldest first: the oldest wins
        self.by_name[(row.scope, row.name.strip().lower())] = row.id  # names are unique in both ledgers


class PartyDirectory(ABC):
    """A ledger's customers (or contacts) as one run sees them: read once, in pages; a
    party resolves by e-mail address, then by name; one missing is created once (one by
    one, or many per call before a batch) and remembered. Thread-safe: the pipeline books
    from several threads. A subclass says how its vendor lists, names and creates them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._parties: PartyIndex | None = None

    @abstractmethod
    def _read_parties(self) -> Iterator[Mapping[str, Any]]:
        """Every customer of the ledger, page after page, oldest first."""

    @abstractmethod
    def _row(self, row: Mapping[str, Any]) -> PartyRow:
        """What the index keeps of a vendor row."""

    @abstractmethod
    def _names(self, party: Party, scope: str) -> list[str]:
        """The names ``party`` may stand under in ``scope``, the one it is created under first."""

    @abstractmethod
    def _create_party(self, party: Party, scope: str) -> Mapping[str, Any]:
        """Create one customer; a namesake the ledger refuses to duplicate is found and returned."""

    @abstractmethod
    def _create_parties(self, wanted: Sequence[tuple[Party, str]]) -> Iterator[Mapping[str, Any]]:
        """Create many in as few calls as the vendor allows; yields the rows it created
        (one it refused is left to ``party_id``, which handles a namesake)."""

    def parties(self) -> PartyIndex:
        with self._lock:
            if self._parties is None:
                index = PartyIndex()
                for row in self._read_parties():
                    index.add(self._row(row))
                self._parties = index
            return self._parties

    def forget_parties(self) -> None:
        """Read the list again at the next lookup (a party was created elsewhere since)."""
        with self._lock:
            self._parties = None

    def remember(self, row: Mapping[str, Any]) -> None:
        with self._lock:
            self.parties().add(self._row(row))

    def party_ids(self, party: Party, scope: str = "") -> list[str]:
        """The existing customers ``party`` resolves to in ``scope``, best first (none created)."""
        index = self.parties()
        email = party.email.strip().lower()
        found = [index.by_email.get((scope, email)) if email else None]
        found += [index.by_name.get((scope, name.strip().lower())) for name in self._names(party, scope)]
        return list(dict.fromkeys(f for f in found if f))

    def party_id(self, party: Party, scope: str = "") -> str:
        """The customer ``party`` resolves to in ``scope``, created once when there is none."""
        found = self.party_ids(party, scope)
        if found:
            return found[0]
        row = self._create_party(party, scope)
        self.remember(row)
        return self._row(row).id

    def create_parties(self, wanted: Sequence[tuple[Party, str]]) -> None:
        """Create the (party, scope) customers this run has not seen, each once."""
        missing: dict[tuple[str, str], tuple[Party, str]] = {}
        for party, scope in wanted:
            if not self.party_ids(party, scope):
                missing.setdefault((scope, self._names(party, scope)[0].strip().lower()), (party, scope))
        if missing:
            for row in self._create_parties(list(missing.values())):
                self.remember(row)
