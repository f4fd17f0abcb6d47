"""Which side of a connection has lost its vendor grant, and what fixes it.

A token endpoint that refuses a refresh (OAuth ``invalid_grant``: the refresh
token was revoked, expired, or retired by a rotation whose answer never
arrived, which QuickBooks does at once) leaves that side dead until someone
reconnects it. Every sync would fail the same way, so the fact is recorded
the moment the refusal comes back, as an entry of the audit trail, and
``/status``, ``/metrics`` and ``pouracquit status`` read it from there in
any process. A later successful refresh or ``pouracquit connect`` records the
reconnection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pouracquit.common.errors import ConfigError
from pouracquit.state.store import Store

from .config import ConnectionSettings

Side = Literal["source", "ledger"]
DISCONNECTED = "connection_disconnected"
RECONNECTED = "connection_reconnected"


def side_of(conn: ConnectionSettings, vendor: str) -> Side | None:
    """The side ``vendor`` plays in ``conn`` (a vendor is a source or a ledger, never both)."""
    if conn.source.vendor == vendor:
        return "source"
    return "ledger" if conn.ledger.vendor == vendor else None


def fix_for(conn: ConnectionSettings, side: Side, vendor: str, reason: str) -> str:
    """What a person does about it. ``invalid_client`` (RFC 6749 §5.2) is the
    app's own credentials, which reconnecting would not change."""
    if "invalid_client" in reason:
        return f"check client_id and client_secret in connections.{conn.name}.{side}"
    return f"pouracquit connect {vendor} --connection {conn.name}"


def disconnected(store: Store, connection: str) -> dict[str, dict[str, Any]]:
    """The sides of ``connection`` whose last recorded state is disconnected:
    side -> {vendor, since, reason, fix}."""
    out: dict[str, dict[str, Any]] = {}
    events = store.events(kind=DISCONNECTED, connection=connection) + store.events(kind=RECONNECTED,
                                                                                 connection=connection)
    for event in sorted(events, key=lambda e: e.seq or 0):
        data = json.loads(event.data)
        if event.kind == DISCONNECTED:
            out[data["side"]] = {"vendor": data["vendor"], "since": event.at.isoformat(), "reason": data["reason"],
                                 "fix": data["fix"]}
        else:
            out.pop(data["side"], None)
    return out


def record_disconnected(store: Store, conn: ConnectionSettings, side: Side, vendor: str, reason: str) -> None:
    with store.unit() as u:
        u.log(conn.name, DISCONNECTED, side=side, vendor=vendor, reason=reason, fix=fix_for(conn, side, vendor, reason))


def record_reconnected(store: Store, connection: str, side: Side, vendor: str, how: str) -> None:
    with store.unit() as u:
        u.log(connection, RECONNECTED, side=side, vendor=vendor, how=how)


@dataclass(frozen=True)
class DisconnectionWatch:
    """The ``RefreshWatcher`` of one connection (see ``common/calls.py``): a
    refused refresh records the side as disconnected, once per reason; the
    next successful one records it reconnected."""

    store: Store
    conn: ConnectionSettings

    def refreshed(self, vendor: str, refused: ConfigError | None) -> None:
        side = side_of(self.conn, vendor)
        if side is None:
            return
        current = disconnected(self.store, self.conn.name).get(side)
        if refused is not None:
            reason = str(refused)
            if current is None or current["reason"] != reason:
                record_disconnected(self.store, self.conn, side, vendor, reason)
        elif current is not None:
            record_reconnected(self.store, self.conn.name, side, vendor, how="token refreshed")
