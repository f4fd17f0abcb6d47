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

from collections.abc import Iterable
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
    text = str(value).strip()
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


def run_search(
    records: Iterable[dict[str, Any]], body: dict[str, Any], *, cap: int
) -> tuple[list[dict[str, Any]], int, int | None]:
    """Apply a search request to ``records`` (dicts with ``id`` and ``properties``).

    Returns (this page, total matches, next ``after`` offset or None). Ties in
    the sort order are broken by id so that offset paging is stable.
    """
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
    matched = [
        r for r in records
        if not groups or any(all(_matches(r["properties"], f) for f in g.get("filters") or []) for g in groups)
    ]
    matched.sort(key=lambda r: comparable(r["id"]))
    for name, descending in reversed(_sort_key(body.get("sorts") or [])):
        matched.sort(key=lambda r, n=name: comparable(r["properties"].get(n)), reverse=descending)
    page = matched[offset: min(offset + limit, cap)]
    next_after = offset + limit if offset + limit < len(matched) else None
    return page, len(matched), next_after
