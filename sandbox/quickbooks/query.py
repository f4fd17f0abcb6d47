"""The QuickBooks Online query language, as much of it as python-quickbooks emits.

``SELECT * | COUNT(*) | fields FROM Entity [WHERE cond AND cond ...]
[ORDER BY field [ASC|DESC], ...] [STARTPOSITION n] [MAXRESULTS n]`` where a
condition is ``field op value`` with ``=, !=, <, >, <=, >=``, ``IN (v, ...)``
or ``LIKE 'pat%'``. There is no ``OR`` in QBO's language: it is a parse error.

Strings are single-quoted; a backslash escapes the next character (``\\'``
for a quote, ``\\\\`` for a backslash). String comparisons ignore case, as
QBO's do. python-quickbooks writes ``ORDERBY`` in one word in ``where()``;
both spellings are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_RESULTS_LIMIT = 1000
DEFAULT_MAX_RESULTS = 100

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*')
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),*])
      | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE | re.DOTALL,
)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


class QueryError(ValueError):
    """The statement does not parse; the message mimics QBO's QueryParserError."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # one of = != < > <= >= in like
    value: Any


@dataclass(frozen=True)
class Query:
    entity: str
    count: bool = False
    where: tuple[Condition, ...] = ()
    order_by: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    start_position: int = 1
    max_results: int = DEFAULT_MAX_RESULTS

    def mentions(self, field: str) -> bool:
        return any(c.field.lower() == field.lower() for c in self.where)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    value: Any


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None or found.end() == pos:
            if not text[pos:].strip():
                break
            raise QueryError(f"QueryParserError: Encountered \" {text[pos:pos + 10]!r} \" at column {pos + 1}")
        pos = found.end()
        kind = found.lastgroup or ""
        raw = found.group(kind)
        if kind == "str":
            tokens.append(_Tok("str", raw, _UNESCAPE.sub(r"\1", raw[1:-1])))
        elif kind == "num":
            tokens.append(_Tok("num", raw, Decimal(raw)))
        else:
            tokens.append(_Tok(kind, raw, raw))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> _Tok | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text.upper() in words

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise QueryError("QueryParserError: Encountered \"<EOF>\"")
        self.pos += 1
        return tok

    def expect_word(self, word: str) -> None:
        tok = self.take()
        if tok.kind != "word" or tok.text.upper() != word:
            raise QueryError(f"QueryParserError: Encountered \" {tok.text} \", expected {word}")

    def expect_punct(self, char: str) -> None:
        tok = self.take()
        if tok.text != char:
            raise QueryError(f"QueryParserError: Encountered \" {tok.text} \", expected \"{char}\"")

    def field(self) -> str:
        tok = self.take()
        if tok.kind != "word":
            raise QueryError(f"QueryParserError: Encountered \" {tok.text} \", expected a property name")
        return tok.text

    def value(self) -> Any:
        tok = self.take()
        if tok.kind in ("str", "num"):
            return tok.value
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            return tok.text.lower() == "true"
        raise QueryError(f"QueryParserError: Encountered \" {tok.text} \", expected a literal")

    def integer(self) -> int:
        tok = self.take()
        if tok.kind != "num" or "." in tok.text:
            raise QueryError(f"QueryParserError: Encountered \" {tok.text} \", expected an integer")
        return int(tok.text)

    def parse(self) -> Query:
        self.expect_word("SELECT")
        count = False
        if self.is_word("COUNT"):
            self.take()
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            count = True
        else:
            # "*", "*, Sku" or a list of fields: every property is returned anyway.
            while not self.is_word("FROM"):
                self.take()
        self.expect_word("FROM")
        entity = self.field()
        where: list[Condition] = []
        if self.is_word("WHERE"):
            self.take()
            where.append(self.condition())
            while self.is_word("AND", "OR"):
                if self.take().text.upper() == "OR":
                    raise QueryError("QueryParserError: Encountered \" OR \": OR is not supported")
                where.append(self.condition())
        order: list[tuple[str, bool]] = []
        if self.is_word("ORDER", "ORDERBY"):
            if self.take().text.upper() == "ORDER":
                self.expect_word("BY")
            order.append(self.order_item())
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                order.append(self.order_item())
        start, limit = 1, DEFAULT_MAX_RESULTS
        while self.is_word("STARTPOSITION", "MAXRESULTS"):
            if self.take().text.upper() == "STARTPOSITION":
                start = self.integer()
            else:
                limit = self.integer()
        if self.peek() is not None:
            raise QueryError(f"QueryParserError: Encountered \" {self.take().text} \"")
        if start < 1 or not 1 <= limit <= MAX_RESULTS_LIMIT:
            raise QueryError(
                f"QueryValidationError: STARTPOSITION must be >= 1 and MAXRESULTS in 1..{MAX_RESULTS_LIMIT}"
            )
        return Query(entity, count, tuple(where), tuple(order), start, limit)

    def order_item(self) -> tuple[str, bool]:
        name = self.field()
        descending = False
        if self.is_word("ASC", "DESC"):
            descending = self.take().text.upper() == "DESC"
        return name, descending

    def condition(self) -> Condition:
        name = self.field()
        if self.is_word("IN"):
            self.take()
            self.expect_punct("(")
            values = [self.value()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                values.append(self.value())
            self.expect_punct(")")
            return Condition(name, "in", tuple(values))
        if self.is_word("LIKE"):
            self.take()
            pattern = self.value()
            if not isinstance(pattern, str):
                raise QueryError("QueryValidationError: LIKE needs a quoted pattern")
            return Condition(name, "like", pattern)
        tok = self.take()
        if tok.kind != "op":
            raise QueryError(f"QueryParserError: Encountered \" {tok.text} \", expected an operator")
        return Condition(name, "!=" if tok.text == "<>" else tok.text, self.value())


def parse(text: str) -> Query:
    """Parse one QBO query statement; raises ``QueryError``."""
    return _Parser(text).parse()


def field_values(entity: Any, path: str) -> list[Any]:
    """Every value at a dotted, case-insensitive ``path``; lists fan out, as
    ``AttachableRef.EntityRef.value`` does over an Attachable's links."""
    current: list[Any] = [entity]
    for part in path.split("."):
        found: list[Any] = []
        for item in current:
            for node in item if isinstance(item, list) else [item]:
                if isinstance(node, Mapping):
                    for key, value in node.items():
                        if key.lower() == part.lower():
                            found.append(value)
        current = found
    return [v for item in current for v in (item if isinstance(item, list) else [item])]


def _comparable(actual: Any, wanted: Any) -> tuple[Any, Any] | None:
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return (actual, wanted) if isinstance(actual, bool) and isinstance(wanted, bool) else None
    if isinstance(wanted, Decimal) or isinstance(actual, (int, float, Decimal)):
        try:
            return Decimal(str(actual)), Decimal(str(wanted))
        except InvalidOperation:
            return None
    if isinstance(actual, Mapping) and "value" in actual:  # a Ref compared with its id
        actual = actual["value"]
    if actual is None:
        return None
    return str(actual).lower(), str(wanted).lower()


def _like(actual: Any, pattern: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.lower().split("%"))
    return re.fullmatch(regex, str(actual).lower(), re.DOTALL) is not None


def _holds(cond: Condition, entity: Mapping[str, Any]) -> bool:
    for actual in field_values(entity, cond.field):
        if cond.op == "like":
            if _like(actual, cond.value):
                return True
            continue
        for wanted in cond.value if cond.op == "in" else (cond.value,):
            pair = _comparable(actual, wanted)
            if pair is None:
                continue
            a, w = pair
            ok = {
                "=": a == w, "in": a == w, "!=": a != w,
                "<": a < w, ">": a > w, "<=": a <= w, ">=": a >= w,
            }[cond.op]
            if ok:
                return True
    return False


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    try:
        return (1, Decimal(str(value)))
    except InvalidOperation:
        return (2, str(value).lower())


def run(query: Query, rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows matching ``query``, sorted (by Id when no ORDER BY), not paged."""
    matched = [row for row in rows if all(_holds(c, row) for c in query.where)]
    matched.sort(key=lambda r: _sort_key(r.get("Id")))
    for name, descending in reversed(query.order_by):
        matched.sort(key=lambda r, n=name: _sort_key(next(iter(field_values(r, n)), None)), reverse=descending)
    return matched


def page(query: Query, rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The STARTPOSITION/MAXRESULTS window (1-based) of ``rows``."""
    return rows[query.start_position - 1 : query.start_position - 1 + query.max_results]
