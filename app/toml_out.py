"""A TOML writer for the configs pouracquit generates (``sandbox
--write-config``): strings, numbers, booleans, tables, arrays of tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _is_table(v: Any) -> bool:
    return isinstance(v, Mapping) and not set(v) <= {"env", "file"}


def _emit(prefix: str, data: Mapping[str, Any], lines: list[str], header: str | None) -> None:
    if header:
        lines.append(f"\n{header}")
    for k, v in data.items():
        if not _is_table(v) and not (isinstance(v, list) and v and all(_is_table(x) for x in v)):
            lines.append(f"{k} = {_value(v)}")
    for k, v in data.items():
        path = f"{prefix}{k}"
        if _is_table(v):
            _emit(f"{path}.", v, lines, f"[{path}]")
        elif isinstance(v, list) and v and all(_is_table(x) for x in v):
            for item in v:
                _emit(f"{path}.", item, lines, f"[[{path}]]")


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text for ``data``; secret references stay inline tables."""
    lines: list[str] = ["# written by pouracquit"]
    _emit("", data, lines, None)
    return "\n".join(lines) + "\n"
