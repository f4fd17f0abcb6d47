"""Declarative vendor mappings: one TOML file of defaults per vendor, merged
with the per-connection overrides from the user's config."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pouracquit.common.errors import BadRecord, ConfigError


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_mapping(vendor: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The default mapping of ``vendor`` with ``overrides`` merged in (tables deep)."""
    try:
        text = resources.files(__name__).joinpath(f"{vendor}.toml").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no default mapping for vendor {vendor!r} (mappings/{vendor}.toml)") from None
    return _merge(tomllib.loads(text), overrides or {})


def lookup(table: Mapping[str, Any], value: str, key_path: str) -> Any:
    """``table[value]``, or a BadRecord naming the mapping key to add."""
    if value in table:
        return table[value]
    raise BadRecord(f"unmapped value {value!r}: add it under [{key_path}] in the connection's mapping")
