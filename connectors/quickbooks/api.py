"""The QuickBooks Online calls the ledger makes, each through the VendorClient
(gate, retries, error table): query, read, create, batch and upload, on the
python-quickbooks client of the connection.

Every write carries a ``requestid``: QBO answers a repeated requestid with the
original response instead of writing again; at most 50 characters, 36 for
/batch (Intuit, "Request ID update for QuickBooks Online integration",
https://blogs.intuit.com/blog/2015/04/06/15346/).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from quickbooks import QuickBooks

from .session import Connection


def quote(value: str) -> str:
    """A QBO query string literal: backslash-escape backslashes and single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select(entity: str, where: str = "", tail: str = "") -> str:
    """A QBO query; every literal in ``where`` must come from ``quote``."""
    statement = f"select * from {entity}"  # noqa: S608 - QBO query language, literals quoted by quote()
    return " ".join(part for part in (statement, f"where {where}" if where else "", tail) if part)


def request_id(*parts: str) -> str:
    """A deterministic requestid for writes whose natural key is long or composite."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:36]


class Api:
    """One realm's calls; ``call`` is the ledger's VendorClient.call."""

    def __init__(self, conn: Connection, call: Callable[..., Any]) -> None:
        self._conn = conn
        self.call = call

    def client(self) -> QuickBooks:
        return self._conn.client()

    def query(self, op: str, statement: str) -> list[dict[str, Any]]:
        """The rows of one ``select * from <Entity> ...`` statement."""
        qb = self.client()
        answer = self.call(op, lambda: qb.query(statement))["QueryResponse"]
        entity = statement.split()[3]
        return list(answer.get(entity, []))

    def read(self, op: str, entity: str, entity_id: str) -> dict[str, Any]:
        """GET /{entity}/{id}: the row as QBO holds it now."""
        qb = self.client()
        return dict(self.call(op, lambda: qb.get_single_object(entity, entity_id))[entity])

    def create(self, op: str, entity: str, body: str, key: str) -> dict[str, Any]:
        """POST /{entity} with ``key`` as requestid; the created row."""
        qb = self.client()
        return dict(self.call(op, lambda: qb.create_object(entity, body, request_id=key))[entity])

    def batch(self, op: str, items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        """POST /batch (at most 30 BatchItemRequest) under requestid ``key``."""
        qb = self.client()
        url = f"{qb.api_url}/company/{qb.company_id}/batch"
        body = json.dumps({"BatchItemRequest": items})
        answer = self.call(op, lambda: qb.post(url, body, request_id=key))
        return list(answer["BatchItemResponse"])
