"""Connectors are found by name through the ``pouracquit.connectors`` entry points."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from pouracquit.common.calls import CallMeter, RetryPolicy
from pouracquit.common.errors import ConfigError

from .base import CrmSource, Ledger, ReplayGuard, TokenStore

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ConnectorContext:
    """What the core hands a connector when it builds one.

    ``window_scale`` shrinks the client-side rate windows the same way a
    sandbox's ``time_factor`` shrinks the vendor's (1.0 in production).
    """

    connection: str
    meter: CallMeter
    tokens: TokenStore
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    window_scale: float = 1.0
    mapping: Mapping[str, Any] = field(default_factory=dict)
    replays: ReplayGuard | None = None  # the state store in the service; None keeps them in memory


class ConnectorFactory(Protocol):
    role: Literal["source", "ledger"]
    vendor: str

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> CrmSource | Ledger: ...


def parse_settings(model: type[M], raw: Mapping[str, Any], vendor: str) -> M:
    """Validate a connector's settings table; every problem is named by its key."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"{vendor}.{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid {vendor} settings: {problems}") from None


def factory(vendor: str, role: Literal["source", "ledger"]) -> ConnectorFactory:
    """The connector class registered as ``vendor`` for ``role``."""
    found = {ep.name: ep for ep in entry_points(group="pouracquit.connectors")}
    if vendor not in found:
        raise ConfigError(f"unknown vendor {vendor!r}; installed connectors: {', '.join(sorted(found))}")
    cls = found[vendor].load()
    if cls.role != role:
        raise ConfigError(f"{vendor} is a {cls.role}, it cannot be used as a {role}")
    return cls
