"""A SOQL subset for the Salesforce sandbox: what a connector sends, parsed
the way Salesforce parses it, refused the way Salesforce refuses it.

Supported: ``SELECT f1, Parent__r.Field FROM Object [WHERE ...] [ORDER BY f
[ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET m]``; comparisons
``= != <> < <= > >=``, ``[NOT] IN (...)``, ``[NOT] LIKE``, ``AND``, ``OR``,
``NOT`` and parentheses. Literals: quoted strings with SOQL's backslash
escapes (``\\' \\" \\\\ \\n \\r \\t \\b \\f``, and ``\\% \\_`` inside LIKE),
numbers, ``true``/``false``/``null``, date literals (``2026-01-31``) and
datetime literals (``2026-01-31T10:00:00Z``, ``...+01:00``, fractions allowed).

As in Salesforce: keywords are case-insensitive; mixing ``AND`` and ``OR``
at one level without parentheses is a MALFORMED_QUERY; ``=`` and ``LIKE`` on
text ignore case (the sandbox compares Id and reference fields exactly).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>'(?:[^'\\]|\\.)*')
        |(?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
        |(?P<date>\d{4}-\d{2}-\d{2})(?![\d:T])
        |(?P<num>-?\d+(?:\.\d+)?)
        |(?P<op>!=|<>|<=|>=|=|<|>)
        |(?P<punct>[(),])
        |(?P<word>[A-Za-z_][\w.]*)
        |(?P<bad>\S))""",
    re.VERBOSE,
)
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f",
            "%": "\\%", "_": "\\_"}  # \% and \_ stay escaped: only LIKE gives them meaning
_KEYWORDS = {"select", "from", "where", "order", "by", "limit", "offset", "and", "or", "not", "in", "like",
             "asc", "desc", "nulls", "first", "last", "null", "true", "false"}

Cond = tuple[Any, ...]


class SoqlError(Exception):
    """A query Salesforce would refuse: ``code`` is its errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool = False
    nulls_last: bool = False


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: Cond | None
    order: tuple[Order, ...]
    limit: int | None
    offset: int


def _unquote(token: str) -> str:
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise SoqlError("MALFORMED_QUERY", f"Invalid string literal '{token}'. Illegal character sequence "
                                                   f"'\\{nxt}' in string literal.")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _datetime(text: str) -> datetime:
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text).astimezone(UTC)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, Any, str]] = []
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            raw = match.group(kind) if kind else ""
            if kind is None:
                continue
            if kind == "bad":
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{raw}'")
            value: Any = raw
            if kind == "str":
                value = _unquote(raw)
            elif kind == "dt":
                value = _datetime(raw)
            elif kind == "date":
                value = date.fromisoformat(raw)
            elif kind == "num":
                value = Decimal(raw)
            self.tokens.append((kind, value, raw))
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, Any, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[2].lower() in words:
            self.pos += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            token = self.peek()
            found = token[2] if token else "<EOF>"
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{found}' (expecting {word.upper()})")

    def name(self) -> str:
        token = self.peek()
        if token is None or token[0] != "word" or token[2].lower() in _KEYWORDS:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token[2] if token else '<EOF>'}'")
        self.pos += 1
        return str(token[2])

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token and token[0] == "punct" and token[2] == char:
            self.pos += 1
            return True
        return False

    def literal(self) -> Any:
        token = self.peek()
        if token is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query, expecting a value")
        self.pos += 1
        kind, value, raw = token
        if kind in ("str", "dt", "date", "num"):
            return value
        if kind == "word" and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        if kind == "word" and raw.lower() == "null":
            return None
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{raw}' (expecting a value)")

    # -- grammar ----------------------------------------------------------------
    def query(self) -> Query:
        self.expect_keyword("select")
        fields = [self.name()]
        while self.punct(","):
            fields.append(self.name())
        self.expect_keyword("from")
        sobject = self.name()
        where = self.condition() if self.keyword("where") else None
        order: list[Order] = []
        if self.keyword("order"):
            self.expect_keyword("by")
            while True:
                field = self.name()
                descending = self.keyword("desc")
                if not descending:
                    self.keyword("asc")
                nulls_last = descending
                if self.keyword("nulls"):
                    nulls_last = self.keyword("last")
                    if not nulls_last:
                        self.expect_keyword("first")
                order.append(Order(field, descending, nulls_last))
                if not self.punct(","):
                    break
        limit = int(self.literal()) if self.keyword("limit") else None
        offset = int(self.literal()) if self.keyword("offset") else 0
        if self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.peek()[2]}'")  # type: ignore[index]
        return Query(tuple(fields), sobject, where, tuple(order), limit, offset)

    def condition(self) -> Cond:
        parts = [self.unary()]
        joiner: str | None = None
        while True:
            token = self.peek()
            word = token[2].lower() if token and token[0] == "word" else ""
            if word not in ("and", "or"):
                break
            if joiner is not None and word != joiner:
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token[2]}': "  # type: ignore[index]
                                                   "use parentheses to mix AND and OR")
            joiner = word
            self.pos += 1
            parts.append(self.unary())
        return parts[0] if joiner is None else (joiner, tuple(parts))

    def unary(self) -> Cond:
        if self.keyword("not"):
            return ("not", self.unary())
        if self.punct("("):
            inner = self.condition()
            if not self.punct(")"):
                raise SoqlError("MALFORMED_QUERY", "unexpected token, expecting ')'")
            return inner
        field = self.name()
        negate = self.keyword("not")
        if self.keyword("in"):
            if not self.punct("("):
                raise SoqlError("MALFORMED_QUERY", "expecting '(' after IN")
            values = [self.literal()]
            while self.punct(","):
                values.append(self.literal())
            if not self.punct(")"):
                raise SoqlError("MALFORMED_QUERY", "expecting ')' to close IN")
            return ("in", field, negate, tuple(values))
        if self.keyword("like"):
            pattern = self.literal()
            if not isinstance(pattern, str):
                raise SoqlError("MALFORMED_QUERY", "LIKE needs a string literal")
            return ("like", field, negate, pattern)
        if negate:
            raise SoqlError("MALFORMED_QUERY", "unexpected token: 'NOT' (expecting IN or LIKE)")
        token = self.peek()
        if token is None or token[0] != "op":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{token[2] if token else '<EOF>'}' "
                                               "(expecting a comparison operator)")
        self.pos += 1
        return ("cmp", field, "!=" if token[2] == "<>" else token[2], self.literal())


def parse(text: str) -> Query:
    """The parsed query, or ``SoqlError`` with Salesforce's errorCode."""
    return _Parser(text).query()


def leaves(cond: Cond | None) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every (field, literals) a condition compares, for validation."""
    if cond is None:
        return
    if cond[0] in ("and", "or"):
        for part in cond[1]:
            yield from leaves(part)
    elif cond[0] == "not":
        yield from leaves(cond[1])
    elif cond[0] == "in":
        yield cond[1], cond[3]
    else:
        yield cond[1], (cond[3],)


def _like(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _norm(value: Any, exact: bool) -> Any:
    if isinstance(value, str) and not exact:
        return value.casefold()
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _compare(value: Any, op: str, literal: Any, exact: bool) -> bool:
    if literal is None or value is None:
        if op == "=":
            return value is None and literal is None
        if op == "!=":
            return (value is None) != (literal is None)
        return False
    a, b = _norm(value, exact), _norm(literal, exact)
    try:
        if isinstance(a, bool) or isinstance(b, bool):
            a, b = bool(a), bool(b)
        elif isinstance(a, Decimal | int | float) or isinstance(b, Decimal):
            a, b = Decimal(str(a)), Decimal(str(b))
        return {"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except (TypeError, ArithmeticError):
        raise SoqlError("INVALID_FIELD", f"value of filter criterion is not of the field's type: {literal!r}") from None


def matches(cond: Cond | None, get: Callable[[str], Any], exact: Callable[[str], bool]) -> bool:
    """Does a record (read through ``get(field)``) satisfy ``cond``?
    ``exact(field)`` says whether the field compares case-sensitively."""
    if cond is None:
        return True
    kind = cond[0]
    if kind == "and":
        return all(matches(c, get, exact) for c in cond[1])
    if kind == "or":
        return any(matches(c, get, exact) for c in cond[1])
    if kind == "not":
        return not matches(cond[1], get, exact)
    field = cond[1]
    value = get(field)
    if kind == "cmp":
        return _compare(value, cond[2], cond[3], exact(field))
    if kind == "in":
        if exact(field) and isinstance(value, str):  # ids: a set lookup, the common batched-children case
            found = value in _as_set(cond[3])
        else:
            found = any(_compare(value, "=", v, exact(field)) for v in cond[3])
        return found != cond[2]
    hit = value is not None and bool(_like(cond[3]).fullmatch(str(value)))
    return hit != cond[2]


@functools.lru_cache(maxsize=256)
def _as_set(values: tuple[Any, ...]) -> frozenset[Any]:
    return frozenset(values)


def sort_key(value: Any, exact: bool) -> tuple[int, Any]:
    """Order-by key: nulls apart, text ignoring case except ids."""
    if value is None:
        return (0, "")
    return (1, _norm(value, exact))
