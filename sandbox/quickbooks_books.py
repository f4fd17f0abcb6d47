"""The QuickBooks sandbox's books: one company's entities and QBO's rules for
writing them (unique names and document numbers, valid references, VAT on
every line, totals computed server-side). No HTTP here: the server module
routes requests to these methods, which raise ``fault(...)`` as QBO answers.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .quickbooks_company import HOME_CURRENCY, initial_entities
from .quickbooks_query import Query, QueryError, page, parse, run
from .server import HttpError

# Entities whose list only returns active records unless the query names Active.
NAME_LISTS = frozenset({"Customer", "Item", "Account", "PaymentMethod", "TaxCode", "TaxRate"})
ENTITY_NAMES = (
    "Customer", "SalesReceipt", "Item", "Account", "PaymentMethod", "TaxCode", "TaxRate",
    "Attachable", "CompanyInfo", "Preferences",
)
_BY_LOWER = {name.lower(): name for name in ENTITY_NAMES}
DOC_NUMBER_MAX = 21
DISPLAY_NAME_MAX = 100


def now_stamp() -> str:
    """QBO's timestamp format, in UTC (the real service answers in US Pacific time)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def fault(status: int, code: str, message: str, detail: str = "", kind: str = "ValidationFault",
          element: str = "") -> HttpError:
    """An ``HttpError`` carrying QBO's Fault document."""
    error = {"Message": message, "Detail": detail or message, "code": code}
    if element:
        error["element"] = element
    return HttpError(status, {"Fault": {"Error": [error], "type": kind}, "time": now_stamp()})


def canonical(entity: str) -> str:
    """``salesreceipt`` -> ``SalesReceipt``; an unknown entity is QBO's 400."""
    name = _BY_LOWER.get(entity.lower().rstrip("s")) or _BY_LOWER.get(entity.lower())
    if name is None:
        raise fault(400, "4001", "Invalid query", f"QueryValidationError: Unsupported entity {entity}")
    return name


def _dec(value: Any, element: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise fault(400, "2010", "Request has invalid or unsupported property",
                    f"Property {element} is not a number: {value!r}", element=element) from None
    if not result.is_finite():
        raise fault(400, "2010", "Request has invalid or unsupported property", element=element)
    return result


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _ref_id(obj: dict[str, Any], key: str) -> str | None:
    ref = obj.get(key)
    if isinstance(ref, dict) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


class Books:
    """One company. Not thread-safe: the server holds its lock around calls."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in ENTITY_NAMES}
        self.files: dict[str, bytes] = {}
        self.warn_duplicate_doc_number = True
        self._next_id = 1
        for name, rows in initial_entities(now_stamp()).items():
            for row in rows:
                self.entities[name][row["Id"]] = row
                self._next_id = max(self._next_id, int(row["Id"]) + 1)

    # -- storage ------------------------------------------------------------------
    def _new_id(self) -> str:
        value, self._next_id = self._next_id, self._next_id + 1
        return str(value)

    def _store(self, name: str, row: dict[str, Any]) -> dict[str, Any]:
        stamp = now_stamp()
        row["Id"] = str(row.get("Id") or self._new_id())
        row["SyncToken"] = "0"
        row.update({"domain": "QBO", "sparse": False, "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}})
        self.entities[name][row["Id"]] = row
        return copy.deepcopy(row)

    def get(self, entity: str, entity_id: str) -> dict[str, Any]:
        name = canonical(entity)
        row = self.entities[name].get(entity_id)
        if row is None:
            raise fault(400, "610", "Object Not Found",
                        f"Object Not Found : Something you're trying to use has been made inactive. "
                        f"{name} Id={entity_id}")
        return copy.deepcopy(row)

    def _require(self, name: str, ref: str | None, element: str) -> dict[str, Any]:
        row = self.entities[name].get(ref or "")
        if row is None or not row.get("Active", True):
            raise fault(400, "2500", "Invalid Reference Id",
                        f"Invalid Reference Id : {name} assigned to this transaction has been deleted "
                        f"or does not exist. Id={ref}", element=element)
        return row

    def seed(self, spec: dict[str, Any]) -> dict[str, int]:
        """Add raw entities (``{"Customer": [...], ...}``); Ids are assigned when absent."""
        counts: dict[str, int] = {}
        for key, rows in spec.items():
            if key == "preferences":
                self.warn_duplicate_doc_number = bool(rows.get("warn_duplicate_doc_number", True))
                continue
            name = canonical(key)
            for row in rows:
                self._store(name, copy.deepcopy(row))
            counts[name] = counts.get(name, 0) + len(rows)
        return counts

    # -- queries --------------------------------------------------------------------
    def query(self, text: str) -> dict[str, Any]:
        """The ``QueryResponse`` for one statement (COUNT(*) gives ``totalCount``)."""
        try:
            query = parse(text)
        except QueryError as exc:
            raise fault(400, "4000", "Error parsing query", str(exc)) from None
        name = canonical(query.entity)
        rows = run(query, self._visible(name, query))
        if query.count:
            return {"totalCount": len(rows)}
        window = page(query, rows)
        if not window:
            return {}
        return {name: copy.deepcopy(window), "startPosition": query.start_position, "maxResults": len(window)}

    def _visible(self, name: str, query: Query) -> list[dict[str, Any]]:
        rows = list(self.entities[name].values())
        if name in NAME_LISTS and not query.mentions("Active"):
            rows = [r for r in rows if r.get("Active", True)]
        return rows

    def changed_since(self, names: list[str], since: datetime) -> list[dict[str, Any]]:
        """The CDC answer: one QueryResponse per entity, rows updated at or after ``since``."""
        responses = []
        for entity in names:
            name = canonical(entity)
            rows = [
                copy.deepcopy(r) for r in self.entities[name].values()
                if datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]) >= since
            ]
            responses.append({name: rows, "startPosition": 1, "maxResults": len(rows)} if rows else {})
        return responses

    # -- writes -----------------------------------------------------------------------
    def write(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /{entity}: create without an Id, update (customers only) with one."""
        name = canonical(entity)
        if name == "Customer":
            return self.update_customer(body) if body.get("Id") else self.create_customer(body)
        if body.get("Id"):
            raise fault(400, "6000", "Business Validation Error",
                        f"This sandbox only creates {name} records; updates are not emulated")
        creators = {"SalesReceipt": self.create_sales_receipt, "Item": self.create_item,
                    "Attachable": self.create_attachable}
        if name not in creators:
            raise fault(400, "500", "Unsupported Operation", f"Operation create is not supported on {name}")
        return creators[name](body)

    def _check_display_name(self, name: str, own_id: str | None = None) -> None:
        if not name.strip():
            raise fault(400, "2020", "Required param missing, need to supply the required value for the API",
                        "Required parameter DisplayName is missing in the request", element="DisplayName")
        if len(name) > DISPLAY_NAME_MAX:
            raise fault(400, "2050", "String length is either shorter or longer than supported by specification",
                        f"String length specification exceeded. Min:0 Max:{DISPLAY_NAME_MAX} supported. "
                        f"Supplied length:{len(name)}", element="DisplayName")
        for row in self.entities["Customer"].values():
            if row["Id"] != own_id and row["DisplayName"].lower() == name.strip().lower():
                raise fault(400, "6240", "Duplicate Name Exists Error",
                            f"The name supplied already exists. : Another customer, vendor or employee "
                            f"is already using this name. Please use a different name. Id={row['Id']}")

    def create_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        display = str(body.get("DisplayName") or " ".join(
            str(body.get(k) or "") for k in ("GivenName", "FamilyName")).strip() or body.get("CompanyName") or "")
        self._check_display_name(display)
        row = {k: v for k, v in body.items() if v not in (None, "", [], {})}
        row.update({"DisplayName": display.strip(), "FullyQualifiedName": display.strip(),
                    "Active": body.get("Active", True), "Balance": Decimal("0"),
                    "CurrencyRef": {"value": HOME_CURRENCY, "name": "Euro"}})
        return self._store("Customer", row)

    def update_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        row = self.entities["Customer"].get(str(body["Id"]))
        if row is None:
            raise fault(400, "610", "Object Not Found", f"Customer Id={body['Id']}")
        if str(body.get("SyncToken")) != row["SyncToken"]:
            raise fault(400, "5010", "Stale Object Error",
                        f"You and someone else are editing the same thing. SyncToken {row['SyncToken']} expected")
        if "DisplayName" in body:
            self._check_display_name(str(body["DisplayName"]), own_id=row["Id"])
        updated = dict(row) if body.get("sparse") else {"Id": row["Id"]}
        updated.update({k: v for k, v in body.items() if k not in ("MetaData", "sparse")})
        updated["SyncToken"] = str(int(row["SyncToken"]) + 1)
        updated["MetaData"] = {"CreateTime": row["MetaData"]["CreateTime"], "LastUpdatedTime": now_stamp()}
        self.entities["Customer"][row["Id"]] = updated
        return copy.deepcopy(updated)

    def create_item(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("Name") or "").strip()
        if not name:
            raise fault(400, "2020", "Required param missing, need to supply the required value for the API",
                        "Required parameter Name is missing in the request", element="Name")
        if any(r["Name"].lower() == name.lower() for r in self.entities["Item"].values()):
            raise fault(400, "6240", "Duplicate Name Exists Error", f"The name supplied already exists. : {name}")
        if body.get("Type", "Service") in ("Service", "NonInventory"):
            self._require("Account", _ref_id(body, "IncomeAccountRef"), "IncomeAccountRef")
        row = {k: v for k, v in body.items() if v not in (None, "", [], {})}
        row.update({"Name": name, "FullyQualifiedName": name, "Active": True, "Type": body.get("Type", "Service")})
        return self._store("Item", row)

    def _tax_rates(self, code_id: str | None, element: str) -> list[Decimal]:
        if code_id is None:
            raise fault(400, "6000", "A business validation error has occurred while processing your request",
                        "Business Validation Error: Make sure all your transactions have a VAT rate "
                        "before you save.", element=element)
        code = self._require("TaxCode", code_id, element)
        details = code.get("SalesTaxRateList", {}).get("TaxRateDetail", [])
        return [Decimal(str(self._require("TaxRate", _ref_id(d, "TaxRateRef"), element)["RateValue"]))
                for d in details]

    def create_sales_receipt(self, body: dict[str, Any]) -> dict[str, Any]:
        doc = str(body.get("DocNumber") or "")
        if len(doc) > DOC_NUMBER_MAX:
            raise fault(400, "2050", "String length is either shorter or longer than supported by specification",
                        f"String length specification exceeded. Min:0 Max:{DOC_NUMBER_MAX} supported. "
                        f"Supplied length:{len(doc)}", element="DocNumber")
        if doc and self.warn_duplicate_doc_number:
            for row in self.entities["SalesReceipt"].values():
                if row.get("DocNumber", "").lower() == doc.lower():
                    raise fault(400, "6140", "Duplicate Document Number Error",
                                f"Duplicate Document Number Error : You must specify a different number. "
                                f"This number has already been used. DocNumber={doc} is assigned to "
                                f"TxnType=Sales Receipt with TxnId={row['Id']}")
        self._require("Customer", _ref_id(body, "CustomerRef"), "CustomerRef")
        for key, name in (("DepositToAccountRef", "Account"), ("PaymentMethodRef", "PaymentMethod")):
            if body.get(key):
                self._require(name, _ref_id(body, key), key)
        currency = _ref_id(body, "CurrencyRef") or HOME_CURRENCY
        if currency != HOME_CURRENCY:
            raise fault(400, "6000", "A business validation error has occurred while processing your request",
                        f"Business Validation Error: multicurrency is off; {currency} is not the home currency",
                        element="CurrencyRef")
        lines, buckets = self._receipt_lines(body.get("Line") or [])
        tax_lines, total_tax = [], Decimal("0")
        for (rate_id, rate), base in sorted(buckets.items()):
            tax = _cents(base * rate / 100)
            total_tax += tax
            tax_lines.append({"Amount": tax, "DetailType": "TaxLineDetail", "TaxLineDetail": {
                "TaxRateRef": {"value": rate_id}, "PercentBased": True, "TaxPercent": rate,
                "NetAmountTaxable": base}})
        subtotal = sum((line["Amount"] for line in lines), Decimal("0"))
        lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        row = {k: v for k, v in body.items() if v not in (None, "", [], {}) and k not in ("Line", "TotalAmt")}
        row.update({
            "DocNumber": doc, "Line": lines, "TotalAmt": subtotal + total_tax, "Balance": Decimal("0"),
            "TxnDate": body.get("TxnDate") or datetime.now(UTC).date().isoformat(),
            "TxnTaxDetail": {"TotalTax": total_tax, "TaxLine": tax_lines},
            "CurrencyRef": {"value": currency, "name": "Euro"}, "GlobalTaxCalculation": "TaxExcluded",
        })
        return self._store("SalesReceipt", row)

    def _receipt_lines(
        self, raw_lines: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[tuple[str, Decimal], Decimal]]:
        lines: list[dict[str, Any]] = []
        buckets: dict[tuple[str, Decimal], Decimal] = {}
        for raw in raw_lines:
            if raw.get("DetailType") != "SalesItemLineDetail":
                continue  # QBO recomputes subtotal lines; other kinds are not emulated
            detail = dict(raw.get("SalesItemLineDetail") or {})
            amount = _cents(_dec(raw.get("Amount", 0), "Line.Amount"))
            self._require("Item", _ref_id(detail, "ItemRef"), "Line.SalesItemLineDetail.ItemRef")
            qty, price = detail.get("Qty"), detail.get("UnitPrice")
            if qty not in (None, "", 0) and price not in (None, ""):
                if _cents(_dec(qty, "Qty") * _dec(price, "UnitPrice")) != amount:
                    raise fault(400, "6070", "Amount calculation incorrect",
                                f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                                element="Line.Amount")
            code_id = _ref_id(detail, "TaxCodeRef")
            for rate_id, rate in zip(self._rate_ids(code_id), self._tax_rates(code_id, "Line.TaxCodeRef"),
                                     strict=True):
                buckets[(rate_id, rate)] = buckets.get((rate_id, rate), Decimal("0")) + amount
            detail = {k: v for k, v in detail.items() if v not in (None, "", [], {})}
            lines.append({"Id": str(len(lines) + 1), "LineNum": len(lines) + 1, "Amount": amount,
                          "Description": raw.get("Description") or "", "DetailType": "SalesItemLineDetail",
                          "SalesItemLineDetail": detail})
        if not lines:
            raise fault(400, "6000", "A business validation error has occurred while processing your request",
                        "Business Validation Error: a transaction needs at least one line", element="Line")
        return lines, buckets

    def _rate_ids(self, code_id: str | None) -> list[str]:
        code = self.entities["TaxCode"].get(code_id or "", {})
        return [str(d["TaxRateRef"]["value"]) for d in code.get("SalesTaxRateList", {}).get("TaxRateDetail", [])]

    def create_attachable(self, meta: dict[str, Any], content: bytes | None = None) -> dict[str, Any]:
        """A note, or (with ``content``) an uploaded file, linked to its entities."""
        links = meta.get("AttachableRef") or []
        for link in links:
            ref = link.get("EntityRef") or {}
            self._require(canonical(str(ref.get("type", ""))), str(ref.get("value", "")), "AttachableRef.EntityRef")
        row = {k: v for k, v in meta.items() if v not in (None, "", [], {})}
        row["AttachableRef"] = links
        if content is not None:
            row.update({"Size": len(content), "ContentType": meta.get("ContentType") or "application/octet-stream"})
        stored = self._store("Attachable", row)
        if content is not None:
            self.files[stored["Id"]] = content
            uri = f"/v3/company/download/{stored['Id']}"
            self.entities["Attachable"][stored["Id"]].update({"FileAccessUri": uri, "TempDownloadUri": uri})
            stored.update({"FileAccessUri": uri, "TempDownloadUri": uri})
        return stored

    # -- state ---------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Every entity by plural type name; Attachables carry their file's size and sha256."""
        state: dict[str, Any] = {}
        for name, rows in self.entities.items():
            state[f"{name}s" if not name.endswith("s") else name] = [copy.deepcopy(r) for r in rows.values()]
        for row in state["Attachables"]:
            content = self.files.get(row["Id"])
            if content is not None:
                row["file"] = {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        return state


def decode_part(body: bytes, headers: dict[str, str]) -> bytes:
    """A multipart part's content, undoing ``Content-Transfer-Encoding: base64``."""
    if headers.get("content-transfer-encoding", "").strip().lower() == "base64":
        return base64.b64decode(b"".join(body.split()))
    return body
