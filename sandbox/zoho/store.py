"""The Zoho sandbox's data: module records, attachments and the clock.

Zoho record ids are 19-digit numeric strings. ``Modified_Time`` has one-second
resolution and is printed in the org's time zone (``2026-03-14T10:30:00+01:00``);
the store keeps epoch seconds and prints them with ``ORG_OFFSET``. Bulk writes
(the demo seed) share one second, as a Zoho import does; any other write gets a
second strictly after the last one, so a ``touch`` in a test is always newer
than what was read before it.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

MODULES = ("Invoices", "Accounts", "Contacts", "Deals", "Products")
ORG_OFFSET = timezone(timedelta(hours=1))  # the sandbox org lives in Paris (CET)
DATETIME_FIELDS = frozenset({"Modified_Time", "Created_Time"})


def zoho_time(seconds: int) -> str:
    """Epoch seconds as Zoho prints datetimes, in the org's offset."""
    return datetime.fromtimestamp(seconds, tz=ORG_OFFSET).isoformat(timespec="seconds")


def parse_zoho_time(text: str) -> int:
    """A Zoho datetime literal (``yyyy-MM-ddTHH:mm:ss±HH:mm``) as epoch seconds."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"datetime {text!r} has no offset")
    return int(parsed.astimezone(UTC).timestamp())


@dataclass
class ZohoStore:
    """Records by module and id (with ``_mtime`` epoch seconds kept beside the
    printed ``Modified_Time``), and attachments by parent record id."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {m: {} for m in MODULES})
    attachments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(5_725_767_000_000_400_001))
    _last: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def new_id(self) -> str:
        return str(next(self._ids))

    def tick(self) -> int:
        """Now in epoch seconds, strictly after every earlier write."""
        with self._lock:
            self._last = max(int(time.time()), self._last + 1)
            return self._last

    def _stamp(self, record: dict[str, Any], seconds: int) -> None:
        self._last = max(self._last, seconds)
        record["_mtime"] = seconds
        record["Modified_Time"] = zoho_time(seconds)

    def create(self, module: str, fields: dict[str, Any], *, at: int | None = None,
               record_id: str | None = None) -> dict[str, Any]:
        """Store a new record; ``at`` pins its create/modify second."""
        with self._lock:
            seconds = at if at is not None else self.tick()
            rid = record_id or self.new_id()
            record = {**fields, "id": rid, "Created_Time": zoho_time(seconds)}
            self._stamp(record, seconds)
            self.records[module][rid] = record
            return record

    def update(self, module: str, record_id: str, fields: dict[str, Any], *, at: int | None = None) -> dict[str, Any]:
        """Change fields and bump ``Modified_Time`` (KeyError if unknown)."""
        with self._lock:
            record = self.records[module][record_id]
            record.update({k: v for k, v in fields.items() if k not in ("id", "_mtime")})
            self._stamp(record, at if at is not None else self.tick())
            return record

    def attach(self, parent_id: str, name: str, content: bytes) -> dict[str, Any]:
        """Store an attachment; the parent's ``Modified_Time`` does not move."""
        with self._lock:
            now = zoho_time(self.tick())
            item = {"id": self.new_id(), "File_Name": name, "Size": str(len(content)), "Created_Time": now,
                    "Modified_Time": now, "$file_id": f"sandbox-{self.new_id()}", "content": content}
            self.attachments.setdefault(parent_id, []).append(item)
            return item


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the API prints it (internal keys dropped)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
