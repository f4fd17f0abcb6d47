"""A COQL interpreter for the Zoho sandbox: enough of Zoho's query language
to answer what a connector sends, with Zoho's limits and error codes.

Supported: ``select f1, f2 from Module [where ...] [order by f [asc|desc], ...]
[limit n [offset m] | limit m, n]``; comparators ``= != > < >= <=``, ``in`` and
``not in`` (at most 50 values), ``is [not] null``, ``like``/``not like`` with
``%``, ``between a and b``; string literals in single quotes where ``\\'`` and
``\\\\`` are the escapes. As in Zoho: at most two criteria per bracket level
(``(A and (B and C))``), 25 criteria in all, 50 selected fields, LIMIT at most
2,000 and LIMIT+OFFSET at most 100,000; ``id`` is always returned; lookups
come back as ``{"id"}`` only; no ORDER BY means ascending id; ORDER BY takes at
most 10 fields, a field twice being DUPLICATE_DATA. Source:
https://www.zoho.com/crm/developer/docs/api/v8/COQL-Limitations.html (comparators
and bracketing: https://www.zoho.com/crm/developer/docs/api/COQL-Limitations.html).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .store import DATETIME_FIELDS, parse_zoho_time

MAX_LIMIT, MAX_ROWS, MAX_FIELDS, MAX_CRITERIA, MAX_IN, MAX_ORDER = 2000, 100_000, 50, 25, 50, 10

_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>>=|<=|!=|=|>|<)
                        |(?P<punct>[(),*])|(?P<word>[A-Za-z_$][\w$.]*)|(?P<bad>\S))""", re.VERBOSE)


class CoqlError(Exception):
    """A query Zoho would refuse: ``code`` and ``details`` go in the error body."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


@dataclass(frozen=True)
class Query:
    module: str
    fields: list[str]
    where: Callable[[dict[str, Any]], bool]
    order: list[tuple[str, bool]]  # (field, descending)
    limit: int
    offset: int


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1], flags=re.DOTALL)


class _Parser:
    def __init__(self, text: str, known: Callable[[str], bool]) -> None:
        self.tokens: list[tuple[str, str]] = []
        for m in _TOKEN.finditer(text.strip()):
            kind = m.lastgroup or "bad"
            if kind == "bad":
                raise CoqlError("SYNTAX_ERROR", f"unexpected character {m.group(kind)!r}",
                                {"near": m.group(kind), "column": m.start(kind)})
            self.tokens.append((kind, m.group(kind)))
        self.pos, self.known, self.criteria = 0, known, 0

    def peek(self, lower: bool = True) -> str:
        if self.pos >= len(self.tokens):
            return ""
        value = self.tokens[self.pos][1]
        return value.lower() if lower else value

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise CoqlError("SYNTAX_ERROR", f"unexpected end of query, expected {expected or 'more'}")
        kind, value = self.tokens[self.pos]
        if expected is not None and value.lower() != expected:
            raise CoqlError("SYNTAX_ERROR", f"expected {expected!r} near {value!r}", {"near": value})
        self.pos += 1
        return kind, value

    def field(self) -> str:
        kind, value = self.take()
        if kind != "word":
            raise CoqlError("SYNTAX_ERROR", f"expected a field name near {value!r}", {"near": value})
        if not self.known(value):
            raise CoqlError("INVALID_QUERY", "invalid column given", {"column_name": value})
        return value

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return _unquote(value)
        if kind == "num":
            return Decimal(value)
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise CoqlError("SYNTAX_ERROR", f"expected a value near {value!r}", {"near": value})

    def condition(self) -> Callable[[dict[str, Any]], bool]:
        left = self.term()
        word = self.peek()
        if word not in ("and", "or"):
            return left
        self.take()
        right = self.term()
        if self.peek() in ("and", "or"):
            raise CoqlError("SYNTAX_ERROR", "more than two criteria at one level: use brackets, "
                            "e.g. (A and (B and C))")
        if word == "and":
            return lambda r: left(r) and right(r)
        return lambda r: left(r) or right(r)

    def term(self) -> Callable[[dict[str, Any]], bool]:
        if self.peek() == "(":
            self.take("(")
            inner = self.condition()
            self.take(")")
            return inner
        self.criteria += 1
        if self.criteria > MAX_CRITERIA:
            raise CoqlError("LIMIT_EXCEEDED", f"at most {MAX_CRITERIA} criteria in the where clause")
        name = self.field()
        word = self.peek()
        if word == "is":
            self.take()
            negate = self.peek() == "not"
            if negate:
                self.take()
            self.take("null")
            return lambda r: (_value(r, name) is None) != negate
        negate = word == "not"
        if negate:
            self.take()
            word = self.peek()
        if word == "in":
            self.take()
            self.take("(")
            values = [self.literal()]
            while self.peek() == ",":
                self.take()
                values.append(self.literal())
            self.take(")")
            if len(values) > MAX_IN:
                raise CoqlError("LIMIT_EXCEEDED", f"at most {MAX_IN} values in an in clause")
            return lambda r: any(_compare(name, _value(r, name), "=", v) for v in values) != negate
        if word == "like":
            self.take()
            pattern = self.literal()
            regex = re.compile("^" + ".*".join(re.escape(p) for p in str(pattern).split("%")) + "$", re.IGNORECASE)
            return lambda r: (_value(r, name) is not None and bool(regex.match(str(_value(r, name))))) != negate
        if word == "between":
            self.take()
            low = self.literal()
            self.take("and")
            high = self.literal()
            return lambda r: _compare(name, _value(r, name), ">=", low) and _compare(name, _value(r, name), "<=", high)
        kind, op = self.take()
        if kind != "op":
            raise CoqlError("SYNTAX_ERROR", f"expected a comparator near {op!r}", {"near": op})
        value = self.literal()
        return lambda r: _compare(name, _value(r, name), op, value)


def _value(record: dict[str, Any], name: str) -> Any:
    head, _, rest = name.partition(".")
    value = record.get(head)
    if rest:
        return value.get(rest) if isinstance(value, dict) else None
    if isinstance(value, dict):  # a lookup compares by its id
        return value.get("id")
    return value


def _key(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name.split(".")[-1] in DATETIME_FIELDS:
        try:
            return parse_zoho_time(str(value))
        except ValueError:
            raise CoqlError("INVALID_QUERY", f"invalid datetime value {value!r} for {name}",
                            {"column_name": name}) from None
    if isinstance(value, bool):
        return value
    try:
        return Decimal(str(value)) if isinstance(value, int | float | Decimal) or name.endswith("id") else value
    except InvalidOperation:
        raise CoqlError("INVALID_QUERY", f"invalid value {value!r} for {name}", {"column_name": name}) from None


def _compare(name: str, actual: Any, op: str, expected: Any) -> bool:
    left, right = _key(name, actual), _key(name, expected)
    if left is None:
        return op == "!=" and right is not None
    if isinstance(left, Decimal) and not isinstance(right, Decimal):
        right = _key(name + ".id", right) if isinstance(right, str) else right
    try:
        return {"=": left == right, "!=": left != right, ">": left > right, "<": left < right,
                ">=": left >= right, "<=": left <= right}[op]
    except TypeError:
        raise CoqlError("INVALID_QUERY", f"value {expected!r} does not fit the type of {name}",
                        {"column_name": name}) from None


def parse(text: str, modules: dict[str, Callable[[str], bool]]) -> Query:
    """Parse ``text``; ``modules`` maps each module name to a "field exists" test."""
    probe = _Parser(text, lambda _: True)
    probe.take("select")
    fields: list[str] = []
    while True:
        kind, value = probe.take()
        if kind != "word":
            raise CoqlError("SYNTAX_ERROR", f"expected a field name near {value!r}", {"near": value})
        fields.append(value)
        if probe.peek() != ",":
            break
        probe.take()
    probe.take("from")
    _, module = probe.take()
    if module not in modules:
        raise CoqlError("INVALID_QUERY", "invalid module given", {"module": module})
    if len(fields) > MAX_FIELDS:
        raise CoqlError("LIMIT_EXCEEDED", f"at most {MAX_FIELDS} fields in the select column")
    known = modules[module]
    for name in fields:
        if not known(name):
            raise CoqlError("INVALID_QUERY", "invalid column given", {"column_name": name})
    probe.known = known
    where: Callable[[dict[str, Any]], bool] = lambda r: True  # noqa: E731
    if probe.peek() == "where":
        probe.take()
        where = probe.condition()
    order: list[tuple[str, bool]] = []
    if probe.peek() == "order":
        probe.take()
        probe.take("by")
        while True:
            name = probe.field()
            descending = probe.peek() == "desc"
            if probe.peek() in ("asc", "desc"):
                probe.take()
            if name in (o[0] for o in order):
                raise CoqlError("DUPLICATE_DATA", "duplicate field in order by", {"column_name": name})
            order.append((name, descending))
            if len(order) > MAX_ORDER:
                raise CoqlError("LIMIT_EXCEEDED", f"at most {MAX_ORDER} fields in order by", {"limit": MAX_ORDER})
            if probe.peek() != ",":
                break
            probe.take()
    limit, offset = 200, 0
    if probe.peek() == "limit":
        probe.take()
        first = int(probe.literal())
        if probe.peek() == ",":
            probe.take()
            offset, limit = first, int(probe.literal())
        else:
            limit = first
            if probe.peek() == "offset":
                probe.take()
                offset = int(probe.literal())
    if probe.pos != len(probe.tokens):
        raise CoqlError("SYNTAX_ERROR", f"unexpected {probe.peek(lower=False)!r}", {"near": probe.peek(lower=False)})
    if not 1 <= limit <= MAX_LIMIT:
        raise CoqlError("LIMIT_EXCEEDED", f"limit must be between 1 and {MAX_LIMIT}", {"limit": limit})
    if offset < 0 or offset + limit > MAX_ROWS:
        raise CoqlError("LIMIT_EXCEEDED", f"limit + offset may not exceed {MAX_ROWS}", {"offset": offset})
    return Query(module, fields, where, order or [("id", False)], limit, offset)


def run(query: Query, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The selected rows of ``records`` (lookups reduced to ``{"id"}``) and
    whether more rows follow."""
    hits = [r for r in records if query.where(r)]
    for name, descending in reversed(query.order):
        present = [r for r in hits if _key(name, _value(r, name)) is not None]
        missing = [r for r in hits if _key(name, _value(r, name)) is None]
        present.sort(key=lambda r, n=name: _key(n, _value(r, n)), reverse=descending)
        hits = present + missing
    page = hits[query.offset:query.offset + query.limit]
    rows = []
    for record in page:
        row: dict[str, Any] = {"id": record["id"]}
        for name in query.fields:
            value = record.get(name.split(".")[0])
            row[name] = {"id": value["id"]} if isinstance(value, dict) and "id" in value and "." not in name else (
                _value(record, name) if "." in name else value)
        rows.append(row)
    return rows, len(hits) > query.offset + query.limit
