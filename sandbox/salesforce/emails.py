"""EmailMessage in the Salesforce sandbox, as the org checks an insert.

Object reference, EmailMessage
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_emailmessage.htm):
``RelatedToId`` points at a non-human record (people go through
EmailMessageRelation); ``Status`` is a restricted picklist, "mostly read-only"
after insert; ``Subject`` is string(3000), ``TextBody`` textarea(32000). The
picklist codes beyond '3' = Sent are not confirmed (docs/vendors.md, Unverified):
the sandbox takes the codes 0-5 that public code uses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .soql import SoqlError
from .store import Org

STATUSES = frozenset({"0", "1", "2", "3", "4", "5"})
PEOPLE = frozenset({"Contact", "Lead", "User"})
LIMITS = {"Subject": 3000, "TextBody": 32000, "HtmlBody": 32000, "ToAddress": 4000}


def insert(org: Org, values: dict[str, Any], stamp: datetime) -> dict[str, Any]:
    """Create one EmailMessage, refused the way the org refuses it."""
    status = str(values.get("Status") or "")
    if status not in STATUSES:
        raise SoqlError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f"Status: bad value for restricted picklist "
                                                                   f"field: {status}")
    related = values.get("RelatedToId")
    if related:
        found = org.find(str(related))
        if found is None or found[0] in PEOPLE:
            raise SoqlError("FIELD_INTEGRITY_EXCEPTION", f"Related To ID: id value of incorrect type: {related}")
    for name, limit in LIMITS.items():
        if len(str(values.get(name) or "")) > limit:
            raise SoqlError("STRING_TOO_LONG", f"{name}: data value too large (max length={limit})")
    return org.create("EmailMessage", values, stamp)
