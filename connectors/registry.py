"""Vendors are found by name through the ``pouracquit.connectors`` entry points.

Each entry point names a vendor package's ``VENDOR`` record (``connectors/<vendor>/__init__.py``):
its role, its connector class, its default mapping and its emulator. Reading the
records imports no vendor SDK; ``Vendor.load`` imports the connector when it is used.
A vendor installed from another distribution registers the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from pouracquit.common.calls import CallMeter, GateFactory, RetryPolicy, local_gates
from pouracquit.common.errors import ConfigError

from .base import CrmSource, Ledger, ReplayGuard, TokenStore

M = TypeVar("M", bound=BaseModel)
Role = Literal["source", "ledger"]


@dataclass(frozen=True)
class ConnectorContext:
    """What the core hands a connector when it builds one.

    ``window_scale`` shrinks the client-side rate windows the same way a
    sandbox's ``time_factor`` shrinks the vendor's (1.0 in production); the
    connector applies it to the windows it hands ``gates``. ``gates`` builds the
    connection's call gates: in-process by default, shared through Redis by a
    fleet's workers (``fleet.rates.RedisGates``) so that they spend one budget.
    """

    connection: str
    meter: CallMeter
    tokens: TokenStore
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    window_scale: float = 1.0
    mapping: Mapping[str, Any] = field(default_factory=dict)
    replays: ReplayGuard | None = None  # the state store in the service; None keeps them in memory
    gates: GateFactory = local_gates


class ConnectorFactory(Protocol):
    role: Role
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


@dataclass(frozen=True)
class Vendor:
    """One vendor's registration, naming all its parts. ``connector`` is the
    ``"module:Class"`` of its connector (imported on first use), ``mapping`` the name of
    its default mapping (``mappings/<mapping>.toml``), ``emulator`` the module of its
    sandbox (``SANDBOX``, ``connector_settings``, ``demo_seed``)."""

    name: str
    role: Role
    connector: str
    mapping: str
    emulator: str

    def load(self) -> ConnectorFactory:
        module, _, attr = self.connector.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def vendors() -> dict[str, Vendor]:
    """Every installed vendor by name."""
    return {ep.name: ep.load() for ep in entry_points(group="pouracquit.connectors")}


def vendor(name: str) -> Vendor:
    found = vendors()
    if name not in found:
        raise ConfigError(f"unknown vendor {name!r}; installed connectors: {', '.join(sorted(found))}")
    return found[name]


def factory(name: str, role: Role) -> ConnectorFactory:
    """The connector class registered as ``name`` for ``role``."""
    record = vendor(name)
    if record.role != role:
        raise ConfigError(f"{name} is a {record.role}, it cannot be used as a {role}")
    return record.load()
