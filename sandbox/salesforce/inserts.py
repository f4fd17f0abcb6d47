"""Record inserts in the Salesforce sandbox, one by one (``POST .../sobjects/{type}``) or
as an sObject Collection (``POST .../composite/sobjects``).

sObject Collections, as Salesforce documents them
(https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-create.html):
up to 200 records, each with ``attributes.type`` and no ``id``; created in the order
listed, the SaveResults returned in that order; a well-formed request is 200 OK even
when records fail (``success`` false, ``errors`` [{statusCode, message, fields}]), a
malformed one 400; ``allOrNone`` (default false) rolls everything back when one fails.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import emails
from .soql import SoqlError
from .store import SCHEMA, Org

COLLECTION_MAX = 200


def insert(org: Org, sobject: str, values: dict[str, Any], stamp: datetime) -> dict[str, Any]:
    """One record as the org inserts it: a ContentVersion publishes its file, an
    EmailMessage is checked as Salesforce checks it."""
    if sobject == "ContentVersion":
        return org.publish(values, stamp)
    if sobject == "EmailMessage":
        return emails.insert(org, values, stamp)
    return org.create(sobject, values, stamp)


def _save(org: Org, record: Any, stamp: datetime) -> dict[str, Any]:
    if not isinstance(record, dict) or not isinstance(record.get("attributes"), dict):
        return _failed("INVALID_FIELD", "each record needs an attributes map with a type")
    name = str(record["attributes"].get("type") or "")
    sobject = next((o for o in SCHEMA if o.lower() == name.lower()), None)
    if sobject is None:
        return _failed("INVALID_TYPE", f"sObject type '{name}' is not supported.")
    if "id" in {k.lower() for k in record}:
        return _failed("INVALID_FIELD", "Don't set the id field in a create request")
    try:
        created = insert(org, sobject, {k: v for k, v in record.items() if k != "attributes"}, stamp)
    except SoqlError as exc:
        return _failed(exc.code, exc.message)
    return {"id": created["Id"], "success": True, "errors": []}


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": []}]}


def create_collection(org: Org, body: Any, stamp: datetime) -> list[dict[str, Any]]:
    """The SaveResults of an sObject Collection create; SoqlError for a malformed request."""
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        raise SoqlError("JSON_PARSER_ERROR", "records: a list of sObjects is required")
    if len(records) > COLLECTION_MAX:
        raise SoqlError("INVALID_INPUT", f"more than {COLLECTION_MAX} records")  # code: docs/vendors.md, Unverified
    results = [_save(org, record, stamp) for record in records]
    if body.get("allOrNone") and not all(r["success"] for r in results):
        for result in results:
            if result["success"]:
                found = org.find(result["id"])
                if found is not None:
                    org.records[found[0]].pop(result["id"])
        results = [r if not r["success"] else _failed("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back "
                                                         "because not all records were valid and the request "
                                                         "was using AllOrNone header") for r in results]
    return results
