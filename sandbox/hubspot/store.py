"""The HubSpot sandbox's data: CRM objects, associations, files and the clock.

HubSpot ids are numeric strings; datetime properties travel as ISO 8601 with
milliseconds (``2026-03-14T09:30:00.123Z``) in responses, the way the v3 API
prints ``hs_lastmodifieddate``. The store's clock is strictly increasing so
that every write gets its own ``hs_lastmodifieddate`` unless a caller pins
one (tests that need many records sharing one millisecond do).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

OBJECT_TYPES = frozenset({"contacts", "companies", "deals", "line_items", "invoices", "notes", "products"})

# Association type ids, (from, to) -> (typeId, v3 type label): HubSpot's published
# HUBSPOT_DEFINED values, as HubSpot/hubspot-api-python lists them in
# hubspot/crm/association_type.py (NOTE_TO_DEAL = 214, INVOICE_TO_LINE_ITEM = 409 ...).
PUBLISHED_TYPES: dict[tuple[str, str], tuple[int, str]] = {
    ("contacts", "companies"): (1, "contact_to_company"),
    ("companies", "contacts"): (2, "company_to_contact"),
    ("deals", "contacts"): (3, "deal_to_contact"),
    ("contacts", "deals"): (4, "contact_to_deal"),
    ("deals", "companies"): (5, "deal_to_company"),
    ("companies", "deals"): (6, "company_to_deal"),
    ("notes", "companies"): (190, "note_to_company"),
    ("companies", "notes"): (189, "company_to_note"),
    ("notes", "contacts"): (202, "note_to_contact"),
    ("contacts", "notes"): (201, "contact_to_note"),
    ("notes", "deals"): (214, "note_to_deal"),
    ("deals", "notes"): (213, "deal_to_note"),
    ("invoices", "line_items"): (409, "invoice_to_line_item"),
    ("line_items", "invoices"): (410, "line_item_to_invoice"),
    ("invoices", "contacts"): (177, "invoice_to_contact"),
    ("contacts", "invoices"): (178, "contact_to_invoice"),
    ("invoices", "companies"): (179, "invoice_to_company"),
    ("companies", "invoices"): (180, "company_to_invoice"),
    ("invoices", "deals"): (175, "invoice_to_deal"),
    ("deals", "invoices"): (176, "deal_to_invoice"),
}
# Pairs HubSpot associates but publishes no id for (association_type.py has no
# NOTE_TO_INVOICE): a client reads the id from GET /crm/v4/associations/{from}/{to}/labels.
# Each sandbox portal draws its own, so a client that hard-codes one fails as it would
# on a real portal whose id differs.
UNPUBLISHED_PAIRS = (("notes", "invoices"), ("invoices", "notes"))


def _portal_types() -> dict[tuple[str, str], tuple[int, str]]:
    drawn = dict(PUBLISHED_TYPES)
    taken = {type_id for type_id, _ in PUBLISHED_TYPES.values()}
    for a, b in UNPUBLISHED_PAIRS:
        type_id = 0
        while type_id in taken or type_id == 0:
            type_id = 2000 + secrets.randbelow(8000)
        taken.add(type_id)
        drawn[(a, b)] = (type_id, f"{a[:-1]}_to_{b[:-1]}")
    return drawn


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as HubSpot prints datetimes: ``2026-03-14T09:30:00.123Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass
class Store:
    """Objects by type and id, associations both ways, uploaded files."""

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    links: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)
    association_types: dict[tuple[str, str], tuple[int, str]] = field(default_factory=_portal_types)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(90_000_001))
    _last_ms: int = 0
    version: int = 0  # bumped by every create and update: what a search index was built on
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def new_id(self) -> str:
        return str(next(self._ids))

    def tick(self) -> int:
        """Now in epoch ms, strictly after the previous tick."""
        with self._lock:
            self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
            return self._last_ms

    def create(self, object_type: str, properties: dict[str, Any], *, at_ms: int | None = None,
               object_id: str | None = None) -> dict[str, Any]:
        """Store a new object; ``at_ms`` pins its create/modify time."""
        with self._lock:
            ms = at_ms if at_ms is not None else self.tick()
            self._last_ms = max(self._last_ms, ms)
            oid = object_id or self.new_id()
            props = {k: None if v is None else str(v) for k, v in properties.items()}
            stamp = iso_ms(ms)
            props.update(hs_object_id=oid, hs_createdate=stamp, hs_lastmodifieddate=stamp)
            record = {"id": oid, "properties": props, "createdAt": stamp, "updatedAt": stamp, "archived": False}
            self.objects.setdefault(object_type, {})[oid] = record
            self.version += 1
            return record

    def update(self, object_type: str, object_id: str, properties: dict[str, Any], *,
               at_ms: int | None = None) -> dict[str, Any]:
        """Change properties and bump ``hs_lastmodifieddate`` (KeyError if unknown)."""
        with self._lock:
            record = self.objects[object_type][object_id]
            ms = at_ms if at_ms is not None else self.tick()
            self._last_ms = max(self._last_ms, ms)
            record["properties"].update({k: None if v is None else str(v) for k, v in properties.items()})
            record["properties"]["hs_lastmodifieddate"] = record["updatedAt"] = iso_ms(ms)
            self.version += 1
            return record

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Link two objects both ways (HubSpot associations are bidirectional)."""
        with self._lock:
            for (a, a_id, b, b_id) in ((from_type, from_id, to_type, to_id), (to_type, to_id, from_type, from_id)):
                targets = self.links.setdefault((a, b), {}).setdefault(a_id, [])
                if b_id not in targets:
                    targets.append(b_id)

    def associated(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        return list(self.links.get((from_type, to_type), {}).get(from_id, []))

    def type_id(self, from_type: str, to_type: str) -> int:
        return self.association_types.get((from_type, to_type), (0, ""))[0]

    def type_label(self, from_type: str, to_type: str) -> str:
        return self.association_types.get((from_type, to_type), (0, f"{from_type}_to_{to_type}"))[1]

    def with_associations(self, object_type: str, record: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``record`` with an ``associations`` map of linked ids by type."""
        links = {
            to_type: self.associated(object_type, record["id"], to_type)
            for (from_type, to_type) in self.links
            if from_type == object_type and self.associated(object_type, record["id"], to_type)
        }
        return {**record, "properties": dict(record["properties"]), "associations": links}
