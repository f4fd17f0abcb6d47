"""Xero's ``where`` filter, as far as the sandbox needs it.

Supported: ``Path==value``, ``Path!=value``, ``Path.Contains("x")``,
``Path.StartsWith("x")``, ``Path.EndsWith("x")``, ``AND``/``OR`` (also
``&&``/``||``, AND binding tighter) and parentheses; values are double-quoted
strings, ``Guid("...")``, numbers, ``true``/``false``; paths may be dotted
(``Contact.ContactID``).

String literals have NO escape: Xero's parser rejects ``Name=="O\\"Brien"``
with a ``QueryParseException`` (XeroAPI/Xero-Java#347, xeroizer#160), so the
first ``"`` after the opening one ends the literal and whatever follows is a
syntax error here too. A client must not put a double quote in a filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"[^"]*")|(?P<op>==|!=|&&|\|\||[().,])|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_]\w*))'
)
_METHODS = {
    "Contains": lambda have, want: want in have,
    "StartsWith": lambda have, want: have.startswith(want),
    "EndsWith": lambda have, want: have.endswith(want),
}


class WhereError(ValueError):
    """The filter does not parse; Xero answers 400 QueryParseException."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None or found.end() == pos:
            raise WhereError("Syntax error")
        kind = found.lastgroup or ""
        out.append((kind, found.group(kind)))
        pos = found.end()
    return out


def resolve(row: Mapping[str, Any], path: str) -> Any:
    """``Contact.ContactID`` -> ``row["Contact"]["ContactID"]`` (None when absent)."""
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _same(have: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return have is want
    if isinstance(want, Decimal):
        try:
            return Decimal(str(have)) == want
        except ArithmeticError:
            return False
    return have is not None and str(have) == want


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise WhereError("Syntax error")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.disjunction()
        if self.peek() is not None:
            raise WhereError("Syntax error")
        return pred

    def disjunction(self) -> Predicate:
        preds = [self.conjunction()]
        while (tok := self.peek()) and tok[1] in ("OR", "||"):
            self.take()
            preds.append(self.conjunction())
        return preds[0] if len(preds) == 1 else (lambda row: any(p(row) for p in preds))

    def conjunction(self) -> Predicate:
        preds = [self.term()]
        while (tok := self.peek()) and tok[1] in ("AND", "&&"):
            self.take()
            preds.append(self.term())
        return preds[0] if len(preds) == 1 else (lambda row: all(p(row) for p in preds))

    def term(self) -> Predicate:
        if (tok := self.peek()) and tok[1] == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        path = [self.take()[1]]
        while (tok := self.peek()) and tok[1] == ".":
            self.take()
            name = self.take()[1]
            if name in _METHODS and (nxt := self.peek()) and nxt[1] == "(":
                self.take()
                want = self.literal()
                self.take(")")
                method, dotted = _METHODS[name], ".".join(path)
                return lambda row: isinstance(v := resolve(row, dotted), str) and method(v, str(want))
            path.append(name)
        dotted = ".".join(path)
        op = self.take()[1]
        want = self.literal()
        if op == "==":
            return lambda row: _same(resolve(row, dotted), want)
        if op == "!=":
            return lambda row: not _same(resolve(row, dotted), want)
        raise WhereError("Syntax error")

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1]
        if kind == "num":
            return Decimal(value)
        if value in ("true", "false"):
            return value == "true"
        if value == "Guid":
            self.take("(")
            inner = self.take()
            self.take(")")
            if inner[0] != "str":
                raise WhereError("Syntax error")
            return inner[1][1:-1]
        raise WhereError(f"No property or field '{value}' exists")


def compile_where(text: str) -> Predicate:
    """A predicate over stored rows; raises WhereError as Xero would refuse the filter."""
    return _Parser(text).parse()
