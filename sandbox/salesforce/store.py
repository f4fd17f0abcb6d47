"""The Salesforce sandbox's org: a schema, records, Salesforce-style ids and
the SystemModstamp clock, and the query engine over them.

Ids are 18 characters as the REST API prints them: a 3-character key prefix
per object (001 Account, 003 Contact, 006 Opportunity, 068 ContentVersion,
069 ContentDocument, 06A ContentDocumentLink; a0B.. for the custom objects),
a base-62 counter, and the case-safe 3-character suffix. Counters are fixed
width, so ids of one object sort in creation order.

SystemModstamp has one-second resolution here, and one transaction (one
seed call, one create) stamps all its records alike: many records sharing a
stamp is the normal case a change cursor must handle. A later change is
always stamped strictly after every earlier one (the clock never repeats a
second it already used for an earlier transaction).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from .soql import Query, SoqlError, leaves, matches, sort_key

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

ID, STR, NUM, BOOL, DATETIME, DATE, B64 = "id", "string", "double", "boolean", "datetime", "date", "base64"


@dataclass(frozen=True)
class Ref:
    """A lookup field: its relationship name (``Account__r``) and target object."""

    relationship: str
    target: str


_SYSTEM: dict[str, Any] = {"Id": ID, "CreatedDate": DATETIME, "LastModifiedDate": DATETIME,
                           "SystemModstamp": DATETIME, "IsDeleted": BOOL}

SCHEMA: dict[str, dict[str, Any]] = {
    "Account": {"Name": STR, "BillingStreet": STR, "BillingPostalCode": STR, "BillingCity": STR,
                "BillingCountry": STR, "Website": STR, "SIREN__c": STR, "VAT_Number__c": STR},
    "Contact": {"FirstName": STR, "LastName": STR, "Email": STR, "AccountId": Ref("Account", "Account"),
                "MailingStreet": STR, "MailingPostalCode": STR, "MailingCity": STR, "MailingCountry": STR},
    "Opportunity": {"Name": STR, "StageName": STR, "IsClosed": BOOL, "IsWon": BOOL, "Amount": NUM,
                    "CloseDate": DATE, "CurrencyIsoCode": STR, "AccountId": Ref("Account", "Account"),
                    "ContactId": Ref("Contact", "Contact"), "Paid__c": BOOL},
    "Invoice__c": {"Name": STR, "Invoice_Number__c": STR, "Status__c": STR, "CurrencyIsoCode": STR,
                   "Issue_Date__c": DATE, "Supply_Date__c": DATE, "Due_Date__c": DATE,
                   "Total_Amount__c": NUM, "Amount_Paid__c": NUM, "Payment_Date__c": DATE,
                   "Payment_Method__c": STR, "Payment_Reference__c": STR, "Demo_Id__c": STR, "Exchange_Rate__c": NUM,
                   "Account__c": Ref("Account__r", "Account"), "Contact__c": Ref("Contact__r", "Contact"),
                   "Opportunity__c": Ref("Opportunity__r", "Opportunity")},
    "Invoice_Line__c": {"Name": STR, "Invoice__c": Ref("Invoice__r", "Invoice__c"), "Description__c": STR,
                        "Quantity__c": NUM, "Unit_Price__c": NUM, "VAT_Rate__c": NUM, "Kind__c": STR,
                        "SKU__c": STR, "Position__c": NUM, "VAT_Exemption__c": STR},
    "Payment__c": {"Name": STR, "Invoice__c": Ref("Invoice__r", "Invoice__c"), "Amount__c": NUM,
                   "Payment_Date__c": DATE, "Method__c": STR, "Reference__c": STR},
    "ContentVersion": {"Title": STR, "Description": STR, "PathOnClient": STR, "VersionData": B64,
                       "FirstPublishLocationId": ID,
                       "ContentDocumentId": Ref("ContentDocument", "ContentDocument"), "IsLatest": BOOL,
                       "ContentSize": NUM, "FileExtension": STR, "Checksum": STR, "VersionNumber": STR},
    "ContentDocument": {"Title": STR, "LatestPublishedVersionId": ID, "FileExtension": STR,
                        "ContentSize": NUM},
    "ContentDocumentLink": {"ContentDocumentId": Ref("ContentDocument", "ContentDocument"),
                            "LinkedEntityId": ID, "ShareType": STR, "Visibility": STR},
    # inserted through sandbox/salesforce/emails.py, which checks it as the org does
    "EmailMessage": {"Subject": STR, "TextBody": STR, "HtmlBody": STR, "FromAddress": STR, "FromName": STR,
                     "ToAddress": STR, "CcAddress": STR, "BccAddress": STR, "Incoming": BOOL,
                     "MessageDate": DATETIME, "Status": STR, "RelatedToId": ID},
}
PREFIX = {"Account": "001", "Contact": "003", "Opportunity": "006", "ContentVersion": "068",
          "ContentDocument": "069", "ContentDocumentLink": "06A", "Invoice__c": "a0B",
          "Invoice_Line__c": "a0C", "Payment__c": "a0D",
          "EmailMessage": "02s"}  # 02s: the EmailMessage key prefix seen in org ids (docs/vendors.md, Unverified)
_CREATABLE = {"Account", "Contact", "Opportunity", "Invoice__c", "Invoice_Line__c", "Payment__c", "ContentVersion",
              "EmailMessage"}


def fields_of(sobject: str) -> dict[str, Any]:
    return {**_SYSTEM, **SCHEMA[sobject]}


def _case_safe(fifteen: str) -> str:
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(fifteen[chunk * 5:chunk * 5 + 5]) if "A" <= ch <= "Z")
        suffix += _SUFFIX[bits]
    return fifteen + suffix


def sf_time(moment: datetime) -> str:
    """A datetime as the REST API prints it: ``2026-03-14T09:30:00.000+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def looks_like_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) in (15, 18) and value.isalnum() and value.isascii()


@dataclass
class Org:
    """Every record by object, and the clock."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {o: {} for o in SCHEMA})
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last: datetime = field(default_factory=lambda: datetime(2000, 1, 1, tzinfo=UTC))
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- clock and ids ------------------------------------------------------------
    def stamp(self, at: datetime | None = None) -> datetime:
        """One transaction's SystemModstamp: now to the second, after every earlier one."""
        if at is not None:
            return at.astimezone(UTC).replace(microsecond=0)
        now = datetime.now(UTC).replace(microsecond=0)
        self._last = max(now, self._last + timedelta(seconds=1))
        return self._last

    def new_id(self, sobject: str) -> str:
        n, digits = next(self._counter), ""
        for _ in range(9):
            n, rest = divmod(n, 62)
            digits = _B62[rest] + digits
        return _case_safe(f"{PREFIX[sobject]}5g0{digits}")

    def find(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        for sobject, rows in self.records.items():
            if record_id in rows:
                return sobject, rows[record_id]
        if len(record_id) == 15:  # a 15-character id names the same record as its 18-character form
            return self.find(_case_safe(record_id))
        return None

    # -- writes -----------------------------------------------------------------
    def _coerce(self, sobject: str, name: str, value: Any) -> Any:
        kind = fields_of(sobject)[name]
        if value is None or value == "":
            return None
        if kind == NUM:
            return Decimal(str(value))
        if kind == DATE:
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        if kind == DATETIME:
            return value if isinstance(value, datetime) else datetime.fromisoformat(
                str(value).replace("Z", "+00:00")).astimezone(UTC)
        if kind == BOOL:
            return bool(value)
        return str(value)

    def canonical(self, sobject: str, name: str) -> str:
        """The field's API name whatever the case it was written in, or INVALID_FIELD."""
        return canonical(sobject, name)

    def create(self, sobject: str, values: dict[str, Any], stamp: datetime, record_id: str | None = None
               ) -> dict[str, Any]:
        if sobject not in _CREATABLE:
            raise SoqlError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        record: dict[str, Any] = dict.fromkeys(fields_of(sobject))
        for name, value in values.items():
            key = self.canonical(sobject, name)
            record[key] = self._coerce(sobject, key, value)
        record.update(Id=record_id or self.new_id(sobject), CreatedDate=stamp, LastModifiedDate=stamp,
                      SystemModstamp=stamp, IsDeleted=False)
        if "Name" in record and not record["Name"] and sobject.endswith("__c"):
            record["Name"] = f"{sobject[:3].upper()}-{next(self._names):06d}"  # auto-number Name field
        self.records[sobject][record["Id"]] = record
        return record

    def update(self, record_id: str, values: dict[str, Any], stamp: datetime) -> dict[str, Any]:
        found = self.find(record_id)
        if found is None:
            raise KeyError(record_id)
        sobject, record = found
        for name, value in values.items():
            key = self.canonical(sobject, name)
            record[key] = self._coerce(sobject, key, value)
        record.update(LastModifiedDate=stamp, SystemModstamp=stamp)
        return record

    def publish(self, values: dict[str, Any], stamp: datetime) -> dict[str, Any]:
        """Insert a ContentVersion; like Salesforce, create its ContentDocument and,
        with FirstPublishLocationId, the link that shares it with that record."""
        target = values.get("FirstPublishLocationId")
        if target and self.find(str(target)) is None:
            raise SoqlError("FIELD_INTEGRITY_EXCEPTION", f"First Publish Location ID: id value of incorrect "
                                                         f"type: {target}")
        if not values.get("PathOnClient") or values.get("VersionData") is None:
            raise SoqlError("REQUIRED_FIELD_MISSING", "Required fields are missing: [PathOnClient, VersionData]")
        try:
            content = base64.b64decode(str(values["VersionData"]), validate=True)
        except ValueError:
            raise SoqlError("MALFORMED_QUERY", "VersionData is not valid base64") from None
        path = str(values["PathOnClient"])
        extension = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        title = values.get("Title") or (path.rsplit(".", 1)[0] if "." in path else path)
        version = self.create("ContentVersion", {**values, "Title": title, "VersionData": values["VersionData"],
                                                 "IsLatest": True, "ContentSize": len(content),
                                                 "FileExtension": extension, "VersionNumber": "1",
                                                 "Checksum": hashlib.md5(content, usedforsecurity=False).hexdigest()},
                              stamp)
        document_id = self.new_id("ContentDocument")
        self.records["ContentDocument"][document_id] = {
            **dict.fromkeys(fields_of("ContentDocument")), "Id": document_id, "Title": title,
            "LatestPublishedVersionId": version["Id"], "FileExtension": extension, "ContentSize": len(content),
            "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp, "IsDeleted": False}
        version["ContentDocumentId"] = document_id
        if target:
            link_id = self.new_id("ContentDocumentLink")
            self.records["ContentDocumentLink"][link_id] = {
                **dict.fromkeys(fields_of("ContentDocumentLink")), "Id": link_id, "ContentDocumentId": document_id,
                "LinkedEntityId": str(target), "ShareType": "V", "Visibility": "AllUsers",
                "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp, "IsDeleted": False}
        return version

    # -- reads ------------------------------------------------------------------
    def _resolve(self, sobject: str, path: str) -> tuple[tuple[tuple[str, Ref], ...], str, str]:
        """``Account__r.Name`` on Invoice__c -> ([(lookup field, Ref)], target object, field)."""
        return _resolve(sobject, path)

    def value(self, sobject: str, record: dict[str, Any], path: str) -> Any:
        hops, _, name = self._resolve(sobject, path)
        for lookup, ref in hops:
            parent_id = record.get(lookup)
            record = self.records[ref.target].get(parent_id) if parent_id else None  # type: ignore[assignment]
            if record is None:
                return None
        return record.get(name)

    def exact(self, sobject: str, path: str) -> bool:
        _, target, name = self._resolve(sobject, path)
        return fields_of(target)[name] == ID or isinstance(fields_of(target)[name], Ref)

    def run(self, query: Query) -> list[dict[str, Any]]:
        """Records matching ``query`` in its order (before LIMIT/OFFSET paging by the caller)."""
        sobject = next((o for o in SCHEMA if o.lower() == query.sobject.lower()), None)
        if sobject is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{query.sobject}' is not supported. If you are "
                                            "attempting to use a custom object, be sure to append the '__c' "
                                            "after the entity name.")
        for path in query.fields:
            self._resolve(sobject, path)
        for path, literals in leaves(query.where):
            if self.exact(sobject, path):
                bad = next((v for v in literals if v is not None and not looks_like_id(v)), None)
                if bad is not None:
                    raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {bad}")
        rows = [r for r in self.records[sobject].values() if not r["IsDeleted"] and matches(
            query.where, lambda p, r=r: self.value(sobject, r, p), lambda p: self.exact(sobject, p))]
        for order in reversed(query.order):
            exact = self.exact(sobject, order.field)
            values = {r["Id"]: self.value(sobject, r, order.field) for r in rows}
            present = [r for r in rows if values[r["Id"]] is not None]
            absent = [r for r in rows if values[r["Id"]] is None]
            present.sort(key=lambda r: sort_key(values[r["Id"]], exact), reverse=order.descending)
            rows = present + absent if order.nulls_last else absent + present
        rows = rows[query.offset:]
        return rows if query.limit is None else rows[:query.limit]

    def view(self, sobject: str, record: dict[str, Any], paths: tuple[str, ...], version: str) -> dict[str, Any]:
        """The record as a query returns it: attributes, the selected fields, parents nested."""
        out: dict[str, Any] = {"attributes": self.attributes(sobject, record["Id"], version)}
        for path in paths:
            hops, _, name = self._resolve(sobject, path)
            node, source = out, record
            for lookup, ref in hops:
                parent_id = source.get(lookup) if source else None
                parent = self.records[ref.target].get(parent_id) if parent_id else None
                if parent is None:
                    node[ref.relationship] = None
                    source = None  # type: ignore[assignment]
                    break
                child = node.get(ref.relationship)
                if not isinstance(child, dict):
                    child = node[ref.relationship] = {"attributes": self.attributes(ref.target, parent["Id"], version)}
                node, source = child, parent
            else:
                node[name] = source.get(name)
        return out

    @staticmethod
    def attributes(sobject: str, record_id: str, version: str) -> dict[str, str]:
        return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}"}


@functools.lru_cache(maxsize=4096)
def canonical(sobject: str, name: str) -> str:
    """The field's API name whatever the case it was written in, or INVALID_FIELD (cached: the schema is fixed)."""
    for known in fields_of(sobject):
        if known.lower() == name.lower():
            return known
    raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'. If you are attempting "
                                     "to use a custom field, be sure to append the '__c' after the custom "
                                     "field name. Please reference your WSDL or the describe call for the "
                                     "appropriate names.")


@functools.lru_cache(maxsize=4096)
def _resolve(sobject: str, path: str) -> tuple[tuple[tuple[str, Ref], ...], str, str]:
    hops: list[tuple[str, Ref]] = []
    current = sobject
    *relations, last = path.split(".")
    for relation in relations:
        lookup = next(((name, kind) for name, kind in fields_of(current).items()
                       if isinstance(kind, Ref) and kind.relationship.lower() == relation.lower()), None)
        if lookup is None:
            raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{relation}' in field path. If "
                                             "you are attempting to use a custom relationship, be sure to "
                                             "append the '__r' after the custom relationship name.")
        hops.append(lookup)
        current = lookup[1].target
    return tuple(hops), current, canonical(current, last)
