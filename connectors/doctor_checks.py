"""What the vendors' ``pouracquit doctor`` checks share: running one probe into a
Check, reading the granted scopes off a token answer, the VAT lines a ledger
mapping names and the ones the ledger cannot resolve, the fields a CRM object
lacks, and the webhook line for a vendor whose subscription cannot be read.

The scopes are read by a response hook on the connector's own session while the
connector refreshes its token as in a sync: the exchange checked is the real one,
and the connector keeps handling (and storing) the tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

import requests

from pouracquit.common.errors import ConfigError, PouracquitError, one_line
from pouracquit.common.model import Line

from .base import Check

T = TypeVar("T")


def probe(name: str, fn: Callable[[], T], fix: str | Callable[[PouracquitError], str]) -> tuple[T | None, Check | None]:
    """``fn()``, or None and a failed Check naming what the vendor answered; ``fix``
    may depend on the answer (a missing scope is not a missing account)."""
    try:
        return fn(), None
    except PouracquitError as exc:
        return None, Check(name, False, one_line(str(exc)), fix if isinstance(fix, str) else fix(exc))


@contextmanager
def granted_scopes(session: requests.Session, token_path: str) -> Iterator[list[frozenset[str]]]:
    """While open, the scopes named by each token answer ``session`` receives from a
    URL ending in ``token_path`` (``scope``, space- or comma-separated, or a ``scopes``
    list); the answer itself, tokens included, is never kept."""
    seen: list[frozenset[str]] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code != 200 or not response.url.split("?")[0].endswith(token_path):
            return
        try:
            body = response.json()
        except ValueError:
            return
        raw = body.get("scopes", body.get("scope")) if isinstance(body, dict) else None
        if isinstance(raw, list):
            seen.append(frozenset(str(s) for s in raw))
        elif isinstance(raw, str):
            seen.append(frozenset(raw.replace(",", " ").split()))

    session.hooks["response"].append(hook)
    try:
        yield seen
    finally:
        session.hooks["response"].remove(hook)


def scope_check(vendor: str, answers: list[frozenset[str]], needed: Iterable[str], fix: str,
                covers: Mapping[str, Iterable[str]] | None = None) -> Check:
    """Compare the scopes of the last token answer with ``needed``; ``covers`` maps a
    broad scope to the narrower ones it includes."""
    if not answers:
        return Check("scopes", None, f"{vendor}'s token answer did not name the granted scopes")
    granted = set(answers[-1])
    for broad, narrow in (covers or {}).items():
        if broad in granted:
            granted |= set(narrow)
    missing = [s for s in needed if s not in granted]
    if missing:
        shown = " ".join(sorted(answers[-1]))
        return Check("scopes", False, f"the grant lacks {', '.join(missing)} (granted: {shown})", fix)
    return Check("scopes", True, f"granted {' '.join(sorted(answers[-1]))}")


def vat_lines(mapping: Mapping[str, Any]) -> list[tuple[str, str, Line]]:
    """(mapping key, mapped value, a one-unit line) for each ``[vat_rates]`` and
    ``[exemptions]`` key of a ledger mapping: what the ledger must resolve to a tax code."""
    lines = []
    for key, value in mapping.get("vat_rates", {}).items():
        lines.append((f"vat_rates.{key}", str(value), Line(description="doctor", quantity=1, unit_price=1,
                                                            vat_rate=Decimal(str(key)))))
    for code, value in mapping.get("exemptions", {}).items():
        lines.append((f"exemptions.{code}", str(value), Line(description="doctor", quantity=1, unit_price=1,
                                                              vat_rate=Decimal(0), vat_exemption=code)))
    return lines


def unresolved(lines: list[tuple[str, str, Line]], resolve: Callable[[Line], object]
               ) -> dict[str, tuple[str, list[str]]]:
    """Mapped value -> (the ledger's refusal for its first key, every key naming it) for the
    lines ``resolve`` refuses with a ConfigError: one line per missing code, not per key."""
    failed: dict[str, tuple[str, list[str]]] = {}
    for key, value, line in lines:
        try:
            resolve(line)
        except ConfigError as exc:
            failed.setdefault(value, (one_line(str(exc)), []))[1].append(key)
    return failed


def webhook_unread(vendor: str, public_url: str | None, verifiable: bool, where: str) -> Check:
    """The neutral webhook line of a vendor whose subscription this connection cannot
    read (``where`` says where it lives and why): the address it must hold, for a
    person to compare. ``verifiable``: the settings hold the secret that checks the
    vendor's signatures. Webhooks are optional (polling finds every change), so
    nothing here fails."""
    if not public_url:
        return Check("webhook", None, f"admin.public_url is not set: no {vendor} webhook reaches this service; "
                                      "polling alone finds the changes",
                     f"to receive them, set admin.public_url and point the {vendor} subscription at "
                     f"<admin.public_url>/webhooks/{vendor}")
    target = f"{public_url.rstrip('/')}/webhooks/{vendor}"
    if not verifiable:
        return Check("webhook", None, f"no signing secret in the settings: {vendor} webhooks to {target} are "
                                      "refused; polling alone finds the changes")
    return Check("webhook", None, f"not checkable: {where}. It must be {target}")


def missing_fields(fields: list[tuple[str, str]], query: Callable[[list[str]], object],
                   is_missing: Callable[[PouracquitError], bool]) -> tuple[list[tuple[str, str]], Check | None]:
    """The (mapping key, field) pairs a CRM object lacks. ``query(names)`` selects
    ``names`` from the object; one query for all of them, then one per field only
    when that fails, so a healthy org costs one call. A refusal that is not about a
    field (``is_missing`` False) comes back as a failed Check."""
    try:
        query([f for _, f in fields])
        return [], None
    except PouracquitError:
        pass
    lacking = []
    for key, name in fields:
        try:
            query([name])
        except PouracquitError as exc:
            if not is_missing(exc):
                return lacking, Check("fields", False, one_line(str(exc)), "check the OAuth scopes and the module")
            lacking.append((key, name))
    return lacking, None


def field_checks(obj: str, fields: list[tuple[str, str]], query: Callable[[list[str]], object],
                 is_missing: Callable[[PouracquitError], bool],
                 describe: Callable[[str, str], Check]) -> list[Check]:
    """One check per field ``obj`` lacks (``describe(key, name)`` words it for the vendor),
    the refusal that stopped the lookup if any, or one passing line when all exist."""
    lacking, refused = missing_fields(fields, query, is_missing)
    checks = [describe(key, name) for key, name in lacking]
    if refused:
        checks.append(refused)
    return checks or [Check(f"fields of {obj}", True, f"all {len(fields)} fields the mapping reads exist")]
