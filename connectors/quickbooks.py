"""QuickBooks Online ledger: a paid invoice becomes one SalesReceipt with its PDF attached.

Exactly once, by three layers: the ``requestid`` query parameter (QBO returns
the original answer to a repeated write, so replaying a lost response is
safe), the DocNumber (= the receipt's number, looked up before creating when
an earlier attempt may have written), and QBO's own duplicate-DocNumber fault,
which sends us back to the lookup.

Call budget: reference data (tax codes and rates, deposit account, payment
methods, item) is read in ONE batch request per run and customers in pages of
1000 once per run; after that a receipt costs one create and one upload.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import Address, AttachableRef, EmailAddress, Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.item import Item
from quickbooks.objects.salesreceipt import SalesReceipt

from pouracquit.core.calls import CallGate, VendorClient
from pouracquit.core.errors import BadRecord, ConfigError, PermanentError, WebhookRejected
from pouracquit.core.model import Line, Party
from pouracquit.core.money import round_cents
from pouracquit.mappings import load_mapping, lookup

from .base import Document, LedgerChange, ReceiptOrder, WebhookRequest
from .oauth import OAuthApp
from .quickbooks_session import (
    VENDOR,
    Connection,
    DuplicateDocNumber,
    DuplicateName,
    QuickBooksSettings,
    classify,
    oauth_app,
)
from .registry import ConnectorContext
from .signatures import verify_body

DOC_NUMBER_MAX = 21
BATCH_MAX = 30  # BatchItemRequests per /batch call
DISPLAY_NAME_MAX = 100
PAGE_SIZE = 1000
MARKER = "pouracquit:"
# The date a French company books a payment on: its own calendar day.
BOOKING_TZ = ZoneInfo("Europe/Paris")


def quote(value: str) -> str:
    """A QBO query string literal: backslash-escape backslashes and single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select(entity: str, where: str = "", tail: str = "") -> str:
    """A QBO query; every literal in ``where`` must come from ``quote``."""
    statement = f"select * from {entity}"  # noqa: S608 - QBO query language, literals quoted by quote()
    return " ".join(part for part in (statement, f"where {where}" if where else "", tail) if part)


def rate_key(rate: Decimal) -> str:
    """``Decimal("5.50")`` -> ``"5.5"``: the key of ``[vat_rates]``."""
    text = format(rate.normalize(), "f")
    return text if text != "-0" else "0"


def _request_id(*parts: str) -> str:
    """A deterministic requestid for writes whose natural key is long or composite."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:36]


@dataclass
class _TaxCode:
    id: str
    name: str
    rates: list[Decimal]


@dataclass
class _Refs:
    """The company's reference data, read once per run."""

    tax_codes: dict[str, _TaxCode]
    deposit_account: str
    payment_methods: dict[str, str]
    item: str


@dataclass
class _Customers:
    by_email: dict[str, str] = field(default_factory=dict)
    by_name: dict[str, str] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        email = str((row.get("PrimaryEmailAddr") or {}).get("Address") or "").strip().lower()
        if email:
            self.by_email.setdefault(email, str(row["Id"]))  # rows come by Id: the oldest wins
        self.by_name[str(row["DisplayName"]).strip().lower()] = str(row["Id"])


class QuickBooksLedger:
    """Books paid invoices as QuickBooks Online SalesReceipts (connectors.base.Ledger)."""

    role: Literal["ledger"] = "ledger"
    vendor = VENDOR
    batch_size = BATCH_MAX

    def __init__(self, settings: QuickBooksSettings, ctx: ConnectorContext) -> None:
        self.settings = settings
        self._ctx = ctx
        mapping = load_mapping(VENDOR, ctx.mapping)
        for key, value in (("deposit_account", settings.deposit_account), ("item", settings.item)):
            if value:
                mapping[key] = value
        mapping["vat_rates"] = {**mapping.get("vat_rates", {}), **settings.tax_codes}
        mapping["payment_methods"] = {**mapping.get("payment_methods", {}), **settings.payment_methods}
        self.mapping = mapping
        self._conn = Connection(settings, ctx.tokens, self._call)
        self.client = VendorClient(
            vendor=VENDOR, classify=classify, meter=ctx.meter,
            gate=CallGate(limit=500, window=60 * ctx.window_scale, concurrency=10),
            retry=ctx.retry, refresh=self._conn.refresh,
        )
        self._lock = threading.RLock()
        self._refs: _Refs | None = None
        self._customers: _Customers | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> QuickBooksLedger:
        """Build from the connection's ledger table; a bad key is a ConfigError naming it."""
        return cls(QuickBooksSettings.load(settings), ctx)

    @classmethod
    def oauth_app(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> OAuthApp:
        """What ``pouracquit connect quickbooks`` needs (see ``quickbooks_session.oauth_app``)."""
        return oauth_app(QuickBooksSettings.load(settings))

    def _call(self, op: str, fn: Any, *, replay_safe: bool = True) -> Any:
        return self.client.call(op, fn, replay_safe=replay_safe)

    def _query(self, op: str, statement: str) -> list[dict[str, Any]]:
        qb = self._conn.client()
        answer = self._call(op, lambda: qb.query(statement))["QueryResponse"]
        entity = statement.split()[3]  # "select * from <Entity> ..."
        return list(answer.get(entity, []))

    # -- Ledger protocol ----------------------------------------------------------
    def find_receipt(self, order: ReceiptOrder) -> str | None:
        """The SalesReceipt carrying ``order.number`` as DocNumber and our marker, if any."""
        ours = self._ours(self._numbered(order), order)
        return str(ours[0]["Id"]) if ours else None

    def _numbered(self, order: ReceiptOrder) -> list[dict[str, Any]]:
        return self._query("salesreceipt.find",
                           select("SalesReceipt", f"DocNumber = {quote(order.number)}"))

    @staticmethod
    def _ours(rows: list[dict[str, Any]], order: ReceiptOrder) -> list[dict[str, Any]]:
        return [r for r in rows if MARKER + order.key in str(r.get("PrivateNote") or "")]

    def record_receipt(self, order: ReceiptOrder, *, may_exist: bool) -> str:
        """Create the SalesReceipt once; its TotalAmt must equal the invoice's gross total."""
        self._check_order(order)
        if may_exist and (existing := self.find_receipt(order)):
            return existing
        receipt = self._build_receipt(order)
        qb = self._conn.client()
        try:
            created = self._call("salesreceipt.create", lambda: receipt.save(qb=qb, request_id=order.key))
        except DuplicateDocNumber:
            rows = self._numbered(order)
            ours = self._ours(rows, order)
            if ours:
                return str(ours[0]["Id"])
            others = ", ".join(str(r["Id"]) for r in rows) or "a receipt this connection cannot read"
            raise PermanentError(
                f"DocNumber {order.number} is already used by SalesReceipt {others}, which pouracquit "
                f"did not book for this receipt"
            ) from None
        checked = self._checked_total(order, str(created.Id), created.TotalAmt)
        if isinstance(checked, PermanentError):
            raise checked
        return checked

    def record_receipts(self, orders: Sequence[ReceiptOrder]) -> dict[str, str | PermanentError]:
        """Book fresh receipts through /batch: missing customers first, then up to
        30 SalesReceipts per call, each call with a requestid derived from its
        orders' keys (a lost answer is replayed, not re-booked). Orders the
        batch refused are left out of the answer for the one-by-one path."""
        self._create_customers([o.invoice.customer for o in orders])
        prepared = []
        for order in orders:
            try:
                self._check_order(order)
                prepared.append((order, self._build_receipt(order)))
            except BadRecord:
                continue  # the one-by-one path reports it against this order alone
        booked: dict[str, str | PermanentError] = {}
        for chunk in _chunks(prepared, BATCH_MAX):
            items = [{"bId": order.key, "operation": "create", "SalesReceipt": json.loads(receipt.to_json())}
                     for order, receipt in chunk]
            for item in self._batch("salesreceipt.batch", items, *(o.key for o, _ in chunk)):
                if "SalesReceipt" in item:
                    row = item["SalesReceipt"]
                    order = next(o for o, _ in chunk if o.key == item["bId"])
                    booked[order.key] = self._checked_total(order, str(row["Id"]), row.get("TotalAmt"))
        return booked

    def _batch(self, op: str, items: list[dict[str, Any]], *key_parts: str) -> list[dict[str, Any]]:
        qb = self._conn.client()
        url = f"{qb.api_url}/company/{qb.company_id}/batch"
        body = json.dumps({"BatchItemRequest": items})
        request_id = _request_id(op, self.settings.realm_id, *key_parts)
        answer = self._call(op, lambda: qb.post(url, body, request_id=request_id))
        return list(answer["BatchItemResponse"])

    def _create_customers(self, parties: Sequence[Party]) -> None:
        """Create the customers this run has not seen, 30 per /batch call. One
        the batch refuses (a namesake) is left to the one-by-one path."""
        index = self._customer_index()
        missing: dict[str, Customer] = {}
        for party in parties:
            display, email = party.name[:DISPLAY_NAME_MAX].strip(), party.email.strip().lower()
            if (email and email in index.by_email) or display.lower() in index.by_name:
                continue
            missing.setdefault(display.lower(), self._new_customer(party, display))
        for chunk in _chunks(list(missing.values()), BATCH_MAX):
            items = [{"bId": c.DisplayName, "operation": "create", "Customer": json.loads(c.to_json())}
                     for c in chunk]
            for item in self._batch("customer.batch", items, *(c.DisplayName for c in chunk)):
                if "Customer" in item:
                    with self._lock:
                        index.add(item["Customer"])

    def _checked_total(self, order: ReceiptOrder, receipt_id: str, total_amt: Any) -> str | PermanentError:
        total = round_cents(Decimal(str(total_amt)))
        expected = order.invoice.gross_total.rounded()
        if total != expected.amount:
            return PermanentError(
                f"SalesReceipt {receipt_id} totals {total} {expected.currency} in QuickBooks but the "
                f"invoice {order.number} totals {expected}: check the VAT codes of the mapping"
            )
        return receipt_id

    def parse_ledger_webhook(self, request: WebhookRequest) -> list[LedgerChange]:
        """QuickBooks webhook (``intuit-signature``): the SalesReceipts of this
        company it names, with their operation."""
        verify_body(request, "intuit-signature", self.settings.webhook_verifier_token, "webhook_verifier_token")
        try:
            notes = json.loads(request.body).get("eventNotifications") or []
        except (ValueError, AttributeError):
            raise WebhookRejected("webhook body is not a QuickBooks eventNotifications document") from None
        return [
            LedgerChange(ref=str(entity.get("id")), operation=str(entity.get("operation", "")),
                         destructive=str(entity.get("operation", "")) in ("Delete", "Void"))
            for note in notes if isinstance(note, dict) and str(note.get("realmId")) == self.settings.realm_id
            for entity in (note.get("dataChangeEvent") or {}).get("entities") or []
            if isinstance(entity, dict) and entity.get("name") == "SalesReceipt" and entity.get("id")
        ]

    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        """Upload ``document`` as an Attachable linked to SalesReceipt ``ref``."""
        if may_exist:
            rows = self._query(
                "attachable.find",
                select("Attachable", "AttachableRef.EntityRef.Type = 'SalesReceipt' and "
                       f"AttachableRef.EntityRef.value = {quote(ref)}"),
            )
            for row in rows:
                if row.get("FileName") == document.name:
                    return str(row["Id"])
        link = AttachableRef()
        link.EntityRef = Ref()
        link.EntityRef.type, link.EntityRef.value = "SalesReceipt", ref
        meta = Attachable()
        meta.AttachableRef.append(link)
        meta.FileName, meta.ContentType = document.name, document.media_type
        qb = self._conn.client()
        request_id = _request_id("upload", self.settings.realm_id, ref, document.name, document.sha256)
        answer = self._call("attachable.upload", lambda: qb.create_object(
            "Attachable", meta.to_json(), _file_bytes=document.content, request_id=request_id))
        item = answer["AttachableResponse"][0]
        if "Fault" in item:  # QBO reports a refused file inside a 200 answer
            error = item["Fault"]["Error"][0]
            raise BadRecord(f"quickbooks refused the upload of {document.name}: {error.get('Message')} "
                            f"{error.get('Detail', '')}".strip())
        return str(item["Attachable"]["Id"])

    # -- receipt ----------------------------------------------------------------------
    def _check_order(self, order: ReceiptOrder) -> None:
        if not order.number or len(order.number) > DOC_NUMBER_MAX:
            raise BadRecord(f"receipt number {order.number!r} cannot be a QuickBooks DocNumber "
                            f"(1 to {DOC_NUMBER_MAX} characters)")
        if order.invoice.last_payment is None:
            raise BadRecord(f"invoice {order.number} has no payment: a sales receipt needs its date")

    def _build_receipt(self, order: ReceiptOrder) -> SalesReceipt:
        invoice, refs = order.invoice, self._references()
        payment = invoice.last_payment
        assert payment is not None  # _check_order
        receipt = SalesReceipt()
        receipt.DocNumber = order.number
        receipt.TxnDate = payment.paid_at.astimezone(BOOKING_TZ).date().isoformat()
        receipt.CustomerRef = self._ref(self._customer_id(invoice.customer))
        receipt.CurrencyRef = self._ref(invoice.currency)
        receipt.DepositToAccountRef = self._ref(refs.deposit_account)
        method_name = lookup(self.mapping["payment_methods"], payment.method.value, "payment_methods")
        if method_name:
            method_id = refs.payment_methods.get(method_name.lower())
            if method_id is None:
                raise ConfigError(f"QuickBooks has no payment method {method_name!r} "
                                  f"(mapping payment_methods.{payment.method.value})")
            receipt.PaymentMethodRef = self._ref(method_id)
        receipt.PaymentRefNum = payment.reference[:21]  # QBO's limit on PaymentRefNum
        receipt.PrivateNote = f"{MARKER}{order.key}"
        receipt.Line = [self._line(line, refs) for line in invoice.lines]
        return receipt

    @staticmethod
    def _ref(value: str) -> Ref:
        ref = Ref()
        ref.value = value
        return ref

    def _line(self, line: Line, refs: _Refs) -> SalesItemLine:
        detail = SalesItemLineDetail()
        detail.ItemRef = self._ref(refs.item)
        detail.TaxCodeRef = self._ref(self._tax_code(line, refs))
        # QBO checks Amount = Qty x UnitPrice; a discounted line that breaks it goes by amount alone.
        if round_cents(line.quantity * line.unit_price) == line.net:
            detail.Qty, detail.UnitPrice = line.quantity, line.unit_price
        else:
            detail.Qty = detail.UnitPrice = None
        detail.ServiceDate = detail.TaxInclusiveAmt = None
        sales_line = SalesItemLine()
        sales_line.Amount, sales_line.Description = line.net, line.description[:4000]
        sales_line.SalesItemLineDetail = detail
        return sales_line

    def _tax_code(self, line: Line, refs: _Refs) -> str:
        exemptions = self.mapping.get("exemptions", {})
        if line.vat_rate == 0 and line.vat_exemption in exemptions:
            name, key = exemptions[line.vat_exemption], f"exemptions.{line.vat_exemption}"
        else:
            key = rate_key(line.vat_rate)
            name, key = lookup(self.mapping["vat_rates"], key, "vat_rates"), f"vat_rates.{key}"
        code = refs.tax_codes.get(str(name).lower())
        if code is None:
            raise ConfigError(f"QuickBooks has no TaxCode named {name!r} (mapping {key})")
        if any(rate != line.vat_rate for rate in code.rates):
            raise ConfigError(f"TaxCode {code.name!r} charges {', '.join(map(str, code.rates))} % "
                              f"but the mapping {key} uses it for {line.vat_rate} %")
        return code.id

    # -- per-run lookups ------------------------------------------------------------------
    def _references(self) -> _Refs:
        """Tax codes, tax rates, accounts, payment methods and the item: one batch call per run."""
        with self._lock:
            if self._refs is not None:
                return self._refs
            item_name = str(self.mapping["item"])
            statements = {
                "TaxCode": select("TaxCode", tail=f"maxresults {PAGE_SIZE}"),
                "TaxRate": select("TaxRate", tail=f"maxresults {PAGE_SIZE}"),
                "Account": select("Account", "AccountType IN ('Bank', 'Income')", f"maxresults {PAGE_SIZE}"),
                "PaymentMethod": select("PaymentMethod", tail=f"maxresults {PAGE_SIZE}"),
                "Item": select("Item", f"Name = {quote(item_name)}"),
            }
            qb = self._conn.client()
            body = {"BatchItemRequest": [{"bId": k, "Query": q} for k, q in statements.items()]}
            answer = self._call("references.batch", lambda: qb.batch_operation(json.dumps(body)))
            rows: dict[str, list[dict[str, Any]]] = {}
            for item in answer["BatchItemResponse"]:
                if "Fault" in item:
                    raise PermanentError(f"quickbooks refused the lookup of {item['bId']}: {item['Fault']}")
                rows[item["bId"]] = list(item.get("QueryResponse", {}).get(item["bId"], []))
            self._refs = self._assemble(rows, item_name)
            return self._refs

    def _assemble(self, rows: dict[str, list[dict[str, Any]]], item_name: str) -> _Refs:
        rates = {str(r["Id"]): Decimal(str(r["RateValue"])) for r in rows["TaxRate"]}
        codes = {}
        for code in rows["TaxCode"]:
            details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
            code_rates = [rates[str(d["TaxRateRef"]["value"])] for d in details
                          if str(d["TaxRateRef"]["value"]) in rates]
            codes[str(code["Name"]).lower()] = _TaxCode(str(code["Id"]), str(code["Name"]), code_rates)
        accounts = {str(a["Name"]).lower(): a for a in rows["Account"]}
        deposit = accounts.get(str(self.mapping["deposit_account"]).lower())
        if deposit is None or deposit.get("AccountType") != "Bank":
            raise ConfigError(f"QuickBooks has no bank account named {self.mapping['deposit_account']!r} "
                              f"(setting deposit_account)")
        methods = {str(m["Name"]).lower(): str(m["Id"]) for m in rows["PaymentMethod"]}
        items = rows["Item"]
        item_id = str(items[0]["Id"]) if items else self._create_item(item_name, accounts)
        return _Refs(codes, str(deposit["Id"]), methods, item_id)

    def _create_item(self, name: str, accounts: Mapping[str, Mapping[str, Any]]) -> str:
        income_name = str(self.mapping.get("item_income_account", ""))
        income = accounts.get(income_name.lower())
        if income is None:
            raise ConfigError(f"QuickBooks has no item {name!r} and no income account {income_name!r} "
                              f"to create it with (mapping item, item_income_account)")
        item = Item()
        item.Name, item.Type = name, "Service"
        item.IncomeAccountRef = self._ref(str(income["Id"]))
        qb = self._conn.client()
        created = self._call("item.create", lambda: item.save(
            qb=qb, request_id=_request_id("item", self.settings.realm_id, name)))
        return str(created.Id)

    def _customer_index(self) -> _Customers:
        with self._lock:
            if self._customers is None:
                index, start = _Customers(), 1
                while True:
                    rows = self._query("customer.list", select(
                        "Customer", tail=f"startposition {start} maxresults {PAGE_SIZE}"))
                    for row in rows:
                        index.add(row)
                    if len(rows) < PAGE_SIZE:
                        break
                    start += PAGE_SIZE
                self._customers = index
            return self._customers

    @staticmethod
    def _new_customer(party: Party, display: str) -> Customer:
        customer = Customer()
        customer.DisplayName = display
        customer.CompanyName = display if party.kind == "company" else ""
        if party.email:
            customer.PrimaryEmailAddr = EmailAddress()
            customer.PrimaryEmailAddr.Address = party.email
        addr = Address()
        addr.Line1, addr.Line2 = party.address.line1, party.address.line2
        addr.City, addr.PostalCode, addr.Country = party.address.city, party.address.postal_code, party.address.country
        customer.BillAddr = addr
        return customer

    def _customer_id(self, party: Party) -> str:
        """Match by email, then by DisplayName; create once and remember it for the run."""
        index = self._customer_index()
        display = party.name[:DISPLAY_NAME_MAX].strip()
        email = party.email.strip().lower()
        found = (index.by_email.get(email) if email else None) or index.by_name.get(display.lower())
        if found:
            return found
        customer = self._new_customer(party, display)
        qb = self._conn.client()
        request_id = _request_id("customer", self.settings.realm_id, display)
        try:
            created = self._call("customer.create", lambda: customer.save(qb=qb, request_id=request_id))
            row = {"Id": created.Id, "DisplayName": display, "PrimaryEmailAddr": {"Address": party.email}}
        except DuplicateName:  # an inactive namesake, or created since the list was read
            rows = self._query("customer.find", select(
                "Customer", f"DisplayName = {quote(display)} and Active IN (true, false)"))
            if not rows:
                raise
            row = rows[0]
            if row.get("Active") is False:  # QBO refuses an inactive customer on a transaction
                body = {"Id": row["Id"], "SyncToken": row["SyncToken"], "sparse": True, "Active": True}
                self._call("customer.reactivate", lambda: qb.update_object(
                    "Customer", json.dumps(body), request_id=_request_id("reactivate", request_id)))
        with self._lock:
            index.add(row)
        return str(row["Id"])


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
