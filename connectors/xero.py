"""Xero ledger: a paid invoice becomes an AUTHORISED ACCREC Invoice plus a
Payment for its full amount (so Xero shows it PAID), with the PDF attached.
With ``mode = "bank_transaction"`` it becomes one RECEIVE BankTransaction.

Exactly once, by three layers: an ``Idempotency-Key`` on every write (Xero
answers a repeated key with the first response, so replaying a lost answer is
safe; ``<key>:invoice`` and ``<key>:payment`` differ), a lookup by the
Reference (= the receipt key) before any create when an earlier attempt may
have written, and Xero's unique ACCREC invoice numbers, which send a blind
create back to that lookup. An invoice found without its payment only gets
the payment.

Call budget: tax rates and accounts once per run, contacts in pages of 100
once per run; after that a receipt costs an invoice, a payment and an upload.
Values never go into a ``where`` filter unless they are ours (the receipt
key): Xero's filter syntax has no escape for a double quote.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pouracquit.core.calls import CallGate, VendorClient
from pouracquit.core.errors import BadRecord, ConfigError, PermanentError, WebhookRejected
from pouracquit.core.model import Invoice, Line, Party
from pouracquit.core.money import round_cents
from pouracquit.mappings import load_mapping, lookup

from .base import Document, LedgerChange, ReceiptOrder, WebhookRequest
from .oauth import OAuthApp
from .registry import ConnectorContext
from .signatures import verify_body
from .xero_session import VENDOR, DuplicateNumber, XeroApi, XeroSettings, classify, oauth_app

NUMBER_MAX = 255
CONTACT_NAME_MAX = 255
CENT = Decimal("0.01")
# The date a French company books a payment on: its own calendar day.
BOOKING_TZ = ZoneInfo("Europe/Paris")
_SAFE_LITERAL = re.compile(r'^[^"\\]*$')


def literal(value: str) -> str:
    """A ``where`` string literal. Xero's parser has no escape for ``"`` (``Name=="O\\"Brien"`` is a
    QueryParseException), so a value holding one is refused here rather than sent."""
    if not _SAFE_LITERAL.match(value):
        raise PermanentError(f"value {value!r} cannot appear in a Xero where filter (no escape for quotes)")
    return f'"{value}"'


def rate_key(rate: Decimal) -> str:
    """``Decimal("5.50")`` -> ``"5.5"``: the key of ``[vat_rates]``."""
    text = format(rate.normalize(), "f")
    return text if text != "-0" else "0"


def line_taxes(invoice: Invoice) -> list[Decimal]:
    """Per-line VAT summing, per rate, to the invoice's own VAT (rounded once per rate, BR-CO-17).

    Xero rounds tax line by line; sending each line's TaxAmount, off by at most a
    cent from Xero's own, makes Xero's total the invoice's total."""
    taxes = [round_cents(line.net * line.vat_rate / 100) for line in invoice.lines]
    for bucket in invoice.vat_breakdown():
        members = [i for i, line in enumerate(invoice.lines)
                   if line.vat_rate.normalize() == bucket.rate and line.vat_exemption == bucket.exemption]
        diff = bucket.tax - sum((taxes[i] for i in members), Decimal("0"))
        members.sort(key=lambda i: -abs(invoice.lines[i].net))
        step = CENT if diff > 0 else -CENT
        k = 0
        while diff != 0 and members:
            taxes[members[k % len(members)]] += step
            diff -= step
            k += 1
    return taxes


def _amount(value: Decimal) -> float:
    """A JSON number with exactly the decimal digits of ``value`` (float repr round-trips them)."""
    return float(value)


@dataclass
class _Refs:
    """The organisation's reference data, read once per run."""

    tax_rates: list[dict[str, Any]]
    sales_account: str
    bank_account: str


@dataclass
class _Contacts:
    by_email: dict[str, str] = field(default_factory=dict)
    by_name: dict[str, str] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        email = str(row.get("EmailAddress") or "").strip().lower()
        if email:
            self.by_email.setdefault(email, str(row["ContactID"]))
        self.by_name[str(row["Name"]).strip().lower()] = str(row["ContactID"])


class XeroLedger:
    """Books paid invoices in Xero (connectors.base.Ledger)."""

    role: Literal["ledger"] = "ledger"
    vendor = VENDOR

    batch_size = 50  # Xero's advice for elements per create request

    def __init__(self, settings: XeroSettings, ctx: ConnectorContext) -> None:
        self.settings = settings
        mapping = load_mapping(VENDOR, ctx.mapping)
        accounts = dict(mapping.get("accounts", {}))
        if settings.sales_account:
            accounts["sales"] = settings.sales_account
        if settings.bank_account:
            accounts["bank"] = settings.bank_account
        mapping["accounts"] = accounts
        self.mapping = mapping
        self.api = XeroApi(settings, ctx.tokens, self._call, ctx.window_scale)
        self.client = VendorClient(
            vendor=VENDOR, classify=classify, meter=ctx.meter,
            gate=CallGate(limit=60, window=60 * ctx.window_scale, concurrency=5),
            retry=ctx.retry, refresh=self.api.refresh,
        )
        self._lock = threading.RLock()
        self._refs: _Refs | None = None
        self._contacts: _Contacts | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> XeroLedger:
        """Build from the connection's ledger table; a bad key is a ConfigError naming it."""
        return cls(XeroSettings.load(settings), ctx)

    @classmethod
    def oauth_app(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> OAuthApp:
        """What ``pouracquit connect xero`` needs (see ``xero_session.oauth_app``)."""
        return oauth_app(XeroSettings.load(settings))

    def _call(self, op: str, fn: Any, *, replay_safe: bool = True) -> Any:
        return self.client.call(op, fn, replay_safe=replay_safe)

    @property
    def _bank_mode(self) -> bool:
        return self.settings.mode == "bank_transaction"

    # -- Ledger protocol ----------------------------------------------------------
    def find_receipt(self, order: ReceiptOrder) -> str | None:
        """The invoice (or bank transaction) booked for ``order`` once it is fully paid."""
        if self._bank_mode:
            found = self._find_bank_transaction(order)
            return str(found["BankTransactionID"]) if found else None
        invoice = self._find_invoice(order)
        if invoice is None or Decimal(str(invoice.get("AmountDue"))) != 0:
            return None
        return str(invoice["InvoiceID"])

    def record_receipt(self, order: ReceiptOrder, *, may_exist: bool) -> str:
        """Book the receipt once; the booked total must equal the invoice's gross total."""
        self._check_order(order)
        if self._bank_mode:
            return self._record_bank_transaction(order, may_exist)
        invoice = self._find_invoice(order) if may_exist else None
        if invoice is None:
            body = {"Invoices": [self._invoice_body(order)]}
            try:
                answer = self.api.request("invoice.create", "PUT", "/Invoices", json=body, params={"unitdp": 4},
                                          idempotency_key=f"{order.key}:invoice")
                invoice = answer["Invoices"][0]
            except DuplicateNumber:
                invoice = self._find_invoice(order)
                if invoice is None:
                    raise PermanentError(f"InvoiceNumber {order.number} is already used in Xero by an invoice "
                                         f"pouracquit did not book for this receipt (Reference {order.key})") from None
        self._check_total(order, "Invoice", invoice)
        due = Decimal(str(invoice.get("AmountDue")))
        if due != 0:
            if Decimal(str(invoice.get("AmountPaid") or 0)) != 0:
                raise PermanentError(f"Xero invoice {order.number} is partly paid by someone else "
                                     f"({invoice.get('AmountPaid')} paid): settle it by hand")
            self._pay(order, str(invoice["InvoiceID"]))
        return str(invoice["InvoiceID"])

    def record_receipts(self, orders: Sequence[ReceiptOrder]) -> dict[str, str | PermanentError]:
        """Book fresh receipts in three calls per batch, against Xero's 60 calls a
        minute: new contacts in one PUT /Contacts, the invoices in one PUT
        /Invoices, their payments in one PUT /Payments, each with an
        Idempotency-Key derived from the orders' keys. ``summarizeErrors=false``
        keeps one refused element from sinking the others; those are left out
        of the answer for the one-by-one path (bank transaction mode too)."""
        if self._bank_mode:
            return {}
        ready = [o for o in orders if self._bookable(o)]
        self._create_contacts([o.invoice.customer for o in ready])
        bodies = []
        for order in ready:
            try:
                bodies.append((order, self._invoice_body(order)))
            except BadRecord:
                continue  # reported against that order by the one-by-one path
        if not bodies:
            return {}
        batch = hashlib.sha256("\x1f".join(o.key for o, _ in bodies).encode()).hexdigest()[:40]
        answer = self.api.request("invoice.batch", "PUT", "/Invoices", json={"Invoices": [b for _, b in bodies]},
                                  params={"unitdp": 4, "summarizeErrors": "false"},
                                  idempotency_key=f"batch:{batch}:invoices")
        booked: dict[str, str | PermanentError] = {}
        unpaid: list[tuple[ReceiptOrder, str]] = []
        for (order, _), row in zip(bodies, answer["Invoices"], strict=True):
            if row.get("StatusAttributeString") != "OK" or not row.get("InvoiceID"):
                continue
            try:
                self._check_total(order, "Invoice", row)
            except PermanentError as exc:
                booked[order.key] = exc
                continue
            unpaid.append((order, str(row["InvoiceID"])))
        if unpaid:
            answer = self.api.request("payment.batch", "PUT", "/Payments",
                                      json={"Payments": [self._payment_body(o, i) for o, i in unpaid]},
                                      params={"summarizeErrors": "false"}, idempotency_key=f"batch:{batch}:payments")
            for (order, invoice_id), row in zip(unpaid, answer["Payments"], strict=True):
                amount = Decimal(str(row.get("Amount") or 0))
                if row.get("StatusAttributeString") == "OK" and amount == order.invoice.gross_total.rounded().amount:
                    booked[order.key] = invoice_id
        return booked

    def _bookable(self, order: ReceiptOrder) -> bool:
        try:
            self._check_order(order)
        except BadRecord:
            return False
        return True

    def _create_contacts(self, parties: Sequence[Party]) -> None:
        """Create the contacts this run has not seen in one call; a refused one is
        left to the one-by-one path, which handles a namesake."""
        index = self._contact_index()
        missing: dict[str, dict[str, Any]] = {}
        for party in parties:
            name, email = party.name[:CONTACT_NAME_MAX].strip(), party.email.strip().lower()
            if (email and email in index.by_email) or name.lower() in index.by_name:
                continue
            missing.setdefault(name.lower(), self._contact_body(party, name))
        if not missing:
            return
        key = hashlib.sha256("\x1f".join([self.api.tenant(), *sorted(missing)]).encode()).hexdigest()[:48]
        answer = self.api.request("contact.batch", "PUT", "/Contacts", json={"Contacts": list(missing.values())},
                                  params={"summarizeErrors": "false"}, idempotency_key=f"contacts:{key}")
        with self._lock:
            for row in answer["Contacts"]:
                if row.get("StatusAttributeString") == "OK" and row.get("ContactID"):
                    index.add(row)

    def parse_ledger_webhook(self, request: WebhookRequest) -> list[LedgerChange]:
        """Xero webhook (``x-xero-signature``; an intent-to-receive check is a
        signed batch with no events): the invoices of this tenant it names."""
        verify_body(request, "x-xero-signature", self.settings.webhook_key, "webhook_key")
        try:
            events = json.loads(request.body).get("events") or []
        except (ValueError, AttributeError):
            raise WebhookRejected("webhook body is not a Xero events document") from None
        tenant = self.settings.tenant_id
        return [
            # Xero says CREATE or UPDATE only: a void or delete is an UPDATE, so any change is worth a look
            LedgerChange(ref=str(e.get("resourceId")), operation=str(e.get("eventType", "")), destructive=False)
            for e in events
            if isinstance(e, dict) and e.get("eventCategory") == "INVOICE" and e.get("resourceId")
            and (tenant is None or e.get("tenantId") == tenant)
        ]

    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        """Upload ``document`` as an attachment of document ``ref``; idempotent by FileName."""
        kind = "BankTransactions" if self._bank_mode else "Invoices"
        if may_exist:
            rows = self.api.request("attachment.find", "GET", f"/{kind}/{quote(ref, safe='')}/Attachments")
            for row in rows.get("Attachments") or []:
                if row.get("FileName") == document.name:
                    return str(row["AttachmentID"])
        key = hashlib.sha256(f"{ref}\x1f{document.name}\x1f{document.sha256}".encode()).hexdigest()
        answer = self.api.request(
            "attachment.upload", "PUT", f"/{kind}/{quote(ref, safe='')}/Attachments/{quote(document.name, safe='')}",
            data=document.content, headers={"Content-Type": document.media_type},
            idempotency_key=f"attach:{key[:48]}",
        )
        return str(answer["Attachments"][0]["AttachmentID"])

    # -- invoice + payment ------------------------------------------------------------
    def _check_order(self, order: ReceiptOrder) -> None:
        if not order.number or len(order.number) > NUMBER_MAX:
            raise BadRecord(f"receipt number {order.number!r} cannot be a Xero InvoiceNumber "
                            f"(1 to {NUMBER_MAX} characters)")
        if order.invoice.last_payment is None:
            raise BadRecord(f"invoice {order.number} has no payment: a paid receipt needs its date")

    def _find_invoice(self, order: ReceiptOrder) -> dict[str, Any] | None:
        where = f"Type==\"ACCREC\" AND Reference=={literal(order.key)}"
        answer = self.api.request("invoice.find", "GET", "/Invoices", params={"where": where})
        rows = [r for r in answer.get("Invoices") or [] if r.get("Status") not in ("DELETED", "VOIDED")]
        return rows[0] if rows else None

    def _check_total(self, order: ReceiptOrder, kind: str, booked: Mapping[str, Any]) -> None:
        total = round_cents(Decimal(str(booked.get("Total"))))
        expected = order.invoice.gross_total.rounded()
        if total != expected.amount:
            raise PermanentError(f"Xero {kind} for {order.number} totals {total} {expected.currency} but the "
                                 f"invoice totals {expected}: check the tax rates of the mapping")

    def _lines(self, invoice: Invoice) -> list[dict[str, Any]]:
        refs = self._references()
        items = []
        for line, tax in zip(invoice.lines, line_taxes(invoice), strict=True):
            item: dict[str, Any] = {
                "Description": line.description[:4000] or "-", "Quantity": _amount(line.quantity),
                "UnitAmount": _amount(line.unit_price), "AccountCode": refs.sales_account,
                "TaxType": self._tax_type(line, refs), "TaxAmount": _amount(tax),
            }
            if line.discount:
                item["DiscountAmount"] = _amount(line.discount)
            items.append(item)
        return items

    def _dates(self, order: ReceiptOrder) -> tuple[str, str]:
        payment = order.invoice.last_payment
        assert payment is not None  # _check_order
        paid_on = payment.paid_at.astimezone(BOOKING_TZ).date()
        return order.invoice.issue_date.isoformat(), (order.invoice.due_date or paid_on).isoformat()

    def _invoice_body(self, order: ReceiptOrder) -> dict[str, Any]:
        invoice = order.invoice
        issued, due = self._dates(order)
        return {
            "Type": "ACCREC", "Status": "AUTHORISED", "InvoiceNumber": order.number, "Reference": order.key,
            "Contact": {"ContactID": self._contact_id(invoice.customer)}, "Date": issued, "DueDate": due,
            "LineAmountTypes": "Exclusive", "CurrencyCode": invoice.currency, "LineItems": self._lines(invoice),
        }

    def _payment_text(self, order: ReceiptOrder) -> str:
        payment = order.invoice.last_payment
        assert payment is not None
        words = lookup(self.mapping["payment_methods"], payment.method.value, "payment_methods")
        return " ".join(part for part in (str(words), payment.reference) if part) or order.number

    def _payment_body(self, order: ReceiptOrder, invoice_id: str) -> dict[str, Any]:
        payment = order.invoice.last_payment
        assert payment is not None
        return {
            "Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": self._references().bank_account},
            "Date": payment.paid_at.astimezone(BOOKING_TZ).date().isoformat(),
            "Amount": _amount(order.invoice.gross_total.rounded().amount),
            "Reference": self._payment_text(order)[:255],
        }

    def _pay(self, order: ReceiptOrder, invoice_id: str) -> None:
        body = {"Payments": [self._payment_body(order, invoice_id)]}
        answer = self.api.request("payment.create", "PUT", "/Payments", json=body,
                                  idempotency_key=f"{order.key}:payment")
        paid = answer["Payments"][0]
        if Decimal(str(paid.get("Amount"))) != order.invoice.gross_total.rounded().amount:
            raise PermanentError(f"Xero booked a payment of {paid.get('Amount')} for {order.number}, "
                                 f"expected {order.invoice.gross_total}")

    # -- bank transaction mode -----------------------------------------------------------
    def _find_bank_transaction(self, order: ReceiptOrder) -> dict[str, Any] | None:
        where = f"Type==\"RECEIVE\" AND Reference.StartsWith({literal(order.key + ' ')})"
        answer = self.api.request("banktransaction.find", "GET", "/BankTransactions", params={"where": where})
        rows = [r for r in answer.get("BankTransactions") or [] if r.get("Status") != "DELETED"]
        return rows[0] if rows else None

    def _record_bank_transaction(self, order: ReceiptOrder, may_exist: bool) -> str:
        found = self._find_bank_transaction(order) if may_exist else None
        if found is None:
            payment = order.invoice.last_payment
            assert payment is not None
            body = {"BankTransactions": [{
                "Type": "RECEIVE", "Contact": {"ContactID": self._contact_id(order.invoice.customer)},
                "BankAccount": {"Code": self._references().bank_account},
                "Date": payment.paid_at.astimezone(BOOKING_TZ).date().isoformat(),
                # The key leads so a later lookup finds it; the number and payment text follow for people.
                "Reference": f"{order.key} {order.number} {self._payment_text(order)}"[:255],
                "LineAmountTypes": "Exclusive", "CurrencyCode": order.invoice.currency,
                "LineItems": self._lines(order.invoice),
            }]}
            answer = self.api.request("banktransaction.create", "PUT", "/BankTransactions", json=body,
                                      idempotency_key=f"{order.key}:banktransaction")
            found = answer["BankTransactions"][0]
        self._check_total(order, "BankTransaction", found)
        return str(found["BankTransactionID"])

    # -- per-run lookups -------------------------------------------------------------------
    def _references(self) -> _Refs:
        """Tax rates and accounts: read once per run, checked against the mapping."""
        with self._lock:
            if self._refs is None:
                rates = self.api.request("taxrates.list", "GET", "/TaxRates").get("TaxRates") or []
                accounts = self.api.request("accounts.list", "GET", "/Accounts").get("Accounts") or []
                by_code = {str(a.get("Code")): a for a in accounts if a.get("Status", "ACTIVE") == "ACTIVE"}
                sales, bank = str(self.mapping["accounts"]["sales"]), str(self.mapping["accounts"]["bank"])
                if by_code.get(sales, {}).get("Class") != "REVENUE":
                    raise ConfigError(f"Xero has no active revenue account with Code {sales!r} "
                                      f"(setting sales_account, mapping accounts.sales)")
                bank_row = by_code.get(bank, {})
                if bank_row.get("Type") != "BANK" and not bank_row.get("EnablePaymentsToAccount"):
                    raise ConfigError(f"Xero has no bank account with Code {bank!r} that takes payments "
                                      f"(setting bank_account, mapping accounts.bank)")
                self._refs = _Refs([r for r in rates if r.get("Status") == "ACTIVE"], sales, bank)
            return self._refs

    def _tax_type(self, line: Line, refs: _Refs) -> str:
        exemptions = self.mapping.get("exemptions", {})
        if line.vat_rate == 0 and line.vat_exemption in exemptions:
            pattern, key = exemptions[line.vat_exemption], f"exemptions.{line.vat_exemption}"
        else:
            key = rate_key(line.vat_rate)
            pattern, key = lookup(self.mapping["vat_rates"], key, "vat_rates"), f"vat_rates.{key}"
        found = [r for r in refs.tax_rates
                 if Decimal(str(r.get("EffectiveRate"))) == line.vat_rate and r.get("CanApplyToRevenue", True)
                 and re.search(str(pattern), str(r.get("Name")), re.IGNORECASE)]
        if len(found) != 1:
            names = ", ".join(str(r.get("Name")) for r in found) or "none"
            raise ConfigError(f"mapping {key} = {pattern!r} must match exactly one active Xero sales tax rate "
                              f"of {line.vat_rate} %, it matches {names}")
        return str(found[0]["TaxType"])

    def _contact_index(self) -> _Contacts:
        with self._lock:
            if self._contacts is None:
                index, page = _Contacts(), 1
                while True:
                    answer = self.api.request("contacts.list", "GET", "/Contacts",
                                              params={"page": page, "summaryOnly": "true"})
                    rows = answer.get("Contacts") or []
                    for row in rows:
                        index.add(row)
                    pagination = answer.get("pagination") or {}
                    if not rows or page >= int(pagination.get("pageCount") or page):
                        break
                    page += 1
                self._contacts = index
            return self._contacts

    @staticmethod
    def _contact_body(party: Party, name: str) -> dict[str, Any]:
        body: dict[str, Any] = {"Name": name, "EmailAddress": party.email, "Addresses": [{
            "AddressType": "STREET", "AddressLine1": party.address.line1, "AddressLine2": party.address.line2,
            "City": party.address.city, "PostalCode": party.address.postal_code, "Country": party.address.country,
        }]}
        if party.vat_number:
            body["TaxNumber"] = party.vat_number
        if party.siren:
            body["CompanyNumber"] = party.siren
        return body

    def _contact_id(self, party: Party) -> str:
        """Match by EmailAddress, then by Name (unique in Xero); create once and remember it for the run."""
        index = self._contact_index()
        name = party.name[:CONTACT_NAME_MAX].strip()
        email = party.email.strip().lower()
        found = (index.by_email.get(email) if email else None) or index.by_name.get(name.lower())
        if found:
            return found
        body = self._contact_body(party, name)
        key = "contact:" + hashlib.sha256(f"{self.api.tenant()}\x1f{name.lower()}".encode()).hexdigest()[:48]
        try:
            answer = self.api.request("contact.create", "PUT", "/Contacts", json={"Contacts": [body]},
                                      idempotency_key=key)
        except BadRecord as exc:
            if "already assigned" not in str(exc):
                raise
            with self._lock:  # created elsewhere since the list was read: read it again
                self._contacts = None
            again = self._contact_index().by_name.get(name.lower())
            if again is None:
                raise
            return again
        row = answer["Contacts"][0]
        with self._lock:
            index.add(row)
        return str(row["ContactID"])
