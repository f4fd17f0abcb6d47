"""HubSpot CRM search semantics for the sandbox: filters, sorts, ``after`` paging.

Kept apart from the HTTP emulator so the rules read in one place:

* ``filterGroups`` are ORed, the filters inside one group ANDed; at most
  5 groups, 6 filters per group and 18 filters in all (HubSpot's documented
  limits);
* values compare as numbers when both sides are numbers or dates (HubSpot
  accepts epoch milliseconds or ISO 8601 for datetime properties), as text
  otherwise, case-insensitively for EQ/NEQ/IN as HubSpot does;
* ``limit`` is at most 200; ``after`` is an offset and the whole query is
  capped at 10,000 results: an ``after`` at or beyond the cap is a 400.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pouracquit.sandbox.server import HttpError

MAX_LIMIT = 200
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18


def validation_error(message: str) -> HttpError:
    """HubSpot's 400 body for a request it refuses to run."""
    return HttpError(400, {"status": "error", "message": message, "category": "VALIDATION_ERROR",
                           "correlationId": "00000000-0000-4000-8000-000000000400"})


def comparable(value: Any) -> tuple[int, Any]:
    """Sort/compare key: (0, number) for numbers and dates (as epoch ms), (1, text) otherwise."""
    if value is None:
        return (2, "")
    return _comparable_text(str(value).strip())


# Parsing a date or a number for every record of every query made a search over 100k
# records cost seconds: each text is parsed once (property values repeat across queries).
@functools.lru_cache(maxsize=2_000_000)
def _comparable_text(text: str) -> tuple[int, Any]:
    try:
        return (0, Decimal(text))
    except InvalidOperation:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return (1, text.lower())
    if isinstance(parsed, date) and not isinstance(parsed, datetime):  # pragma: no cover - fromisoformat gives datetime
        parsed = datetime(parsed.year, parsed.month, parsed.day)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (0, Decimal((parsed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)))


def _matches(props: dict[str, Any], flt: dict[str, Any]) -> bool:
    name = flt.get("propertyName")
    op = flt.get("operator", "EQ")
    if not name:
        raise validation_error("a filter has no propertyName")
    present = props.get(name) not in (None, "")
    if op == "HAS_PROPERTY":
        return present
    if op == "NOT_HAS_PROPERTY":
        return not present
    actual = comparable(props.get(name))
    if op in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list):
            raise validation_error(f"operator {op} needs a 'values' list")
        found = present and actual in {comparable(v) for v in values}
        return found if op == "IN" else not found
    if op == "CONTAINS_TOKEN":
        return present and str(flt.get("value", "")).lower().strip("*") in str(props.get(name)).lower()
    if op == "NOT_CONTAINS_TOKEN":
        return not (present and str(flt.get("value", "")).lower().strip("*") in str(props.get(name)).lower())
    wanted = comparable(flt.get("value"))
    if op == "EQ":
        return present and actual == wanted
    if op == "NEQ":
        return actual != wanted
    if not present or actual[0] != wanted[0]:
        return False
    if op == "GT":
        return actual > wanted
    if op == "GTE":
        return actual >= wanted
    if op == "LT":
        return actual < wanted
    if op == "LTE":
        return actual <= wanted
    if op == "BETWEEN":
        return wanted <= actual <= comparable(flt.get("highValue"))
    raise validation_error(f"unsupported operator {op!r}")


def _check_shape(groups: list[dict[str, Any]]) -> None:
    if len(groups) > MAX_GROUPS:
        raise validation_error(f"at most {MAX_GROUPS} filterGroups are allowed, got {len(groups)}")
    total = 0
    for group in groups:
        filters = group.get("filters") or []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(f"at most {MAX_FILTERS_PER_GROUP} filters per group, got {len(filters)}")
        total += len(filters)
    if total > MAX_FILTERS:
        raise validation_error(f"at most {MAX_FILTERS} filters in all, got {total}")


def _sort_key(sorts: list[Any]) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    for sort in sorts:
        if isinstance(sort, str):
            keys.append((sort.lstrip("-"), sort.startswith("-")))
        elif isinstance(sort, dict) and sort.get("propertyName"):
            keys.append((sort["propertyName"], str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"))
        else:
            raise validation_error(f"malformed sort {sort!r}")
    return keys


@dataclass
class SortedIndex:
    """Records sorted by one property then id, with their keys: a search sorted by
    that property starts at its lowest bound (bisect) and needs no sort, so a
    search over 100k records measures the client, not the emulator."""

    prop: str
    records: list[dict[str, Any]]
    keys: list[tuple[tuple[int, Any], tuple[int, Any]]]

    @classmethod
    def build(cls, prop: str, records: Iterable[dict[str, Any]]) -> SortedIndex:
        keyed = sorted(((comparable(r["properties"].get(prop)), comparable(r["id"])), r) for r in records)
        return cls(prop, [r for _, r in keyed], [k for k, _ in keyed])

    def candidates(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The records a search could match, in its order; None when it is not sorted by ``prop``."""
        if _sort_key(body.get("sorts") or []) != [(self.prop, False)]:
            return None
        bounds = []
        for group in body.get("filterGroups") or []:
            # GT, GTE and EQ on the sorted property all need a key of at least the value
            found = [comparable(f.get("value")) for f in group.get("filters") or []
                     if f.get("propertyName") == self.prop and f.get("operator") in ("GT", "GTE", "EQ")]
            if not found:
                return self.records
            bounds.append(max(found))
        start = bisect.bisect_left(self.keys, (min(bounds), (0, Decimal(0)))) if bounds else 0
        return self.records[start:]


def run_search(
    records: Iterable[dict[str, Any]], body: dict[str, Any], *, cap: int, index: SortedIndex | None = None
) -> tuple[list[dict[str, Any]], int, int | None]:
    """Apply a search request to ``records`` (dicts with ``id`` and ``properties``),
    or to the archived-free part of ``index`` when the search is sorted its way.

    Returns (this page, total matches, next ``after`` offset or None). Ties in
    the sort order are broken by id so that offset paging is stable.
    """
    presorted = index.candidates(body) if index is not None else None
    if presorted is not None:
        records = [r for r in presorted if not r["archived"]]
    groups = body.get("filterGroups") or []
    _check_shape(groups)
    limit = int(body.get("limit") or 10)
    if not 0 < limit <= MAX_LIMIT:
        raise validation_error(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    try:
        offset = int(body.get("after") or 0)
    except ValueError:
        raise validation_error(f"after must be an offset, got {body.get('after')!r}") from None
    if offset >= cap:
        raise validation_error(
            f"Search results are limited to {cap} per query; after={offset} is beyond it. "
            "Narrow the query (e.g. by hs_lastmodifieddate) instead of paging further."
        )
    hits = (r for r in records
            if not groups or any(all(_matches(r["properties"], f) for f in g.get("filters") or []) for g in groups))
    if presorted is not None:
        # in order already: stop one past the page; ``total`` then counts the candidates
        # left (an upper bound), which no change feed reads
        matched = list(itertools.islice(hits, offset + limit + 1))
        total = len(matched) if len(matched) <= offset + limit else len(records)
    else:
        matched = list(hits)
        matched.sort(key=lambda r: comparable(r["id"]))
        for name, descending in reversed(_sort_key(body.get("sorts") or [])):
            matched.sort(key=lambda r, n=name: comparable(r["properties"].get(n)), reverse=descending)
        total = len(matched)
    page = matched[offset: min(offset + limit, cap)]
    next_after = offset + limit if offset + limit < len(matched) else None
    return page, total, next_after
