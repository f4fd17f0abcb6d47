"""Xero ledger: a paid invoice becomes an AUTHORISED ACCREC Invoice plus one
Payment per payment the CRM recorded (so Xero shows it PAID), with the PDF
attached. With ``mode = "bank_transaction"`` it becomes one RECEIVE
BankTransaction. A credit note (facture d'avoir) becomes an ACCRECCREDIT
CreditNote, refunded by a Payment when money went back (``credit.py``).
A foreign-currency invoice is booked in its currency at its own rate.

Exactly once, by three layers: an ``Idempotency-Key`` on every write (Xero
answers a repeated key with the first response, so replaying a lost answer is
safe; ``<key>:invoice`` and each ``<key>:payment...`` differ), a lookup by the
Reference (= the receipt key) before any create when an earlier attempt may
have written, and Xero's unique ACCREC invoice numbers, which send a blind
create back to that lookup. An invoice found without all its payments only
gets the missing ones.

Call budget: tax rates and accounts once per run, contacts in pages of 100
once per run, currencies once when a foreign one appears; after that a
receipt costs an invoice, a payment per CRM payment and an upload.

With ``match_existing = "by_number"`` a receipt first looks for the organisation's
own ACCREC invoice carrying the CRM invoice's number (``match.py``, rules in
``ledger_match``): found, it gets the payments it lacks and the PDF, and nothing
else is booked (one lookup more per receipt, and no batch booking).

Spec references (``spec#/...``) are to Xero's OpenAPI spec in
``sandbox/xero/spec/xero_accounting.yaml``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from pouracquit.common.errors import BadRecord, PermanentError, WebhookRejected
from pouracquit.connectors.base import Document, LedgerBooking, LedgerChange, ReceiptOrder, WebhookRequest
from pouracquit.connectors.ledger_base import LedgerConnector
from pouracquit.connectors.ledger_match import already_paid, check_total, unmatched
from pouracquit.connectors.registry import ConnectorContext
from pouracquit.connectors.signatures import verify_body

from . import paid
from . import payments as xero_payments
from .credit import CreditNotes, credit_note_id, ref_of
from .directory import Directory
from .format import HOME_CURRENCY, NUMBER_MAX, REFERENCE_MAX, amount, booking_day, check_booked, literal, xero_rate
from .match import LABEL, find_existing, invoice_id
from .match import ref_of as ref_of_invoice
from .session import (
    CALL_BUDGET,
    VENDOR,
    DuplicateNumber,
    XeroApi,
    XeroSettings,
    classify,
    oauth_app,
)

# Webhook event categories naming documents pouracquit books (xero-webhooks.yaml: INVOICE, and
# CREDITNOTE, #/components/schemas/CreditNoteWebhookEvent), and how each becomes the id
# record_receipt returned.
_WEBHOOK_REFS = {"INVOICE": str, "CREDITNOTE": ref_of}
# A credit-note event carries the note's Status (CreditNoteWebhookEvent ``data.Status``): these mean
# the booking is gone. Invoice events say CREATE or UPDATE only, so any change is worth a look.
_GONE = ("VOIDED", "DELETED")


class XeroLedger(LedgerConnector):
    """Books paid invoices and credit notes in Xero (connectors.base.Ledger)."""

    vendor = VENDOR
    settings_type = XeroSettings
    classify = staticmethod(classify)
    app_of = staticmethod(oauth_app)  # `pouracquit connect xero` (``session.oauth_app``)
    call_budget = CALL_BUDGET
    batch_size = 50  # Xero's advice for elements per create request
    from .doctor import diagnose  # `pouracquit doctor` (connectors.base.Diagnosable)

    def __init__(self, settings: XeroSettings, ctx: ConnectorContext) -> None:
        self.api = XeroApi(settings, ctx.tokens, self._call, ctx.window_scale)
        super().__init__(settings, ctx, refresh=self.api.refresh, overrides={
            "accounts": {"sales": settings.sales_account, "bank": settings.bank_account}})
        self.directory = Directory(self.api, self.mapping)
        self.credit_notes = CreditNotes(self.api, self.directory, self.mapping, self._currency_fields)

    @property
    def _bank_mode(self) -> bool:
        return self.settings.mode == "bank_transaction"

    # -- Ledger protocol ----------------------------------------------------------
    def find_receipt(self, order: ReceiptOrder) -> str | None:
        """The document booked for ``order`` once it is complete (paid, refunded)."""
        if order.is_credit_note:
            return self.credit_notes.find(order)
        existing = self._existing(order)
        if existing is not None:
            return self._ref(existing) if Decimal(str(existing.get("AmountDue"))) == 0 else None
        if self._bank_mode:
            found = self._find_bank_transaction(order)
            return str(found["BankTransactionID"]) if found else None
        invoice = self._find_invoice(order)
        if invoice is None or Decimal(str(invoice.get("AmountDue"))) != 0:
            return None
        return str(invoice["InvoiceID"])

    def record_receipt(self, order: ReceiptOrder, *, may_exist: bool) -> str:
        """Book the receipt once; the booked total must equal the invoice's gross total."""
        if order.is_credit_note:
            return self.credit_notes.record(order, may_exist)
        self._check_order(order)
        if self.settings.match_existing == "by_number":
            found = find_existing(self.api, self.directory, order)
            if found is None and self.settings.unmatched == "stop":
                raise unmatched(LABEL, order)
            if found is not None and found.get("Reference") != order.key:  # not one pouracquit booked
                return self._pay_existing(order, found)
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
        check_booked("Invoice", order, invoice)
        due = Decimal(str(invoice.get("AmountDue")))
        if due != 0:
            planned = xero_payments.plan(order, self.mapping)
            for payment in xero_payments.missing(planned, invoice.get("Payments") or [], due, order.number):
                self._pay(order, payment, str(invoice["InvoiceID"]))
        return str(invoice["InvoiceID"])

    def _existing(self, order: ReceiptOrder) -> dict[str, Any] | None:
        """With ``match_existing``, the organisation's own invoice for ``order`` (``match.py``);
        one pouracquit booked itself (its Reference is the receipt key) goes the usual way."""
        if self.settings.match_existing != "by_number":
            return None
        found = find_existing(self.api, self.directory, order)
        return found if found is not None and found.get("Reference") != order.key else None

    def _ref(self, invoice: Mapping[str, Any]) -> str:
        doc_id = str(invoice["InvoiceID"])
        return ref_of_invoice(doc_id) if self._bank_mode else doc_id

    def _pay_existing(self, order: ReceiptOrder, invoice: Mapping[str, Any]) -> str:
        """Pay an invoice someone else put in Xero with the CRM payments it lacks (the same
        plan and keys as our own invoices); one already paid there only gets the PDF."""
        ref = self._ref(invoice)
        check_total(LABEL, f"invoice {invoice['InvoiceID']}", order, invoice.get("Total"),
                    str(invoice.get("CurrencyCode") or HOME_CURRENCY))
        planned, booked = xero_payments.plan(order, self.mapping), invoice.get("Payments") or []
        due = Decimal(str(invoice.get("AmountDue")))
        if due == 0:
            if xero_payments.unbooked(planned, booked):
                already_paid(LABEL, order, ref)
            return ref
        for payment in xero_payments.missing(planned, booked, due, order.number):
            self._pay(order, payment, str(invoice["InvoiceID"]))
        return ref

    def record_receipts(self, orders: Sequence[ReceiptOrder]) -> dict[str, str | PermanentError]:
        """Book fresh receipts in three calls per batch, against Xero's 60 calls a
        minute: new contacts in one PUT /Contacts, the invoices in one PUT
        /Invoices, all their payments in one PUT /Payments, each with an
        Idempotency-Key derived from the orders' keys. ``summarizeErrors=false``
        keeps one refused element from sinking the others; those are left out
        of the answer for the one-by-one path (credit notes and bank transaction
        mode too, and every order with ``match_existing``: each looks for its invoice first)."""
        if self._bank_mode or self.settings.match_existing != "off":
            return {}
        ready = [o for o in orders if not o.is_credit_note and self._bookable(o)]
        self.directory.create_parties([(o.invoice.customer, "") for o in ready])
        bodies = []
        for order in ready:
            try:
                bodies.append((order, self._invoice_body(order)))
            except (BadRecord, PermanentError):
                continue  # reported against that order by the one-by-one path
        if not bodies:
            return {}
        batch = hashlib.sha256("\x1f".join(o.key for o, _ in bodies).encode()).hexdigest()[:40]
        answer = self.api.request("invoice.batch", "PUT", "/Invoices", json={"Invoices": [b for _, b in bodies]},
                                  params={"unitdp": 4, "summarizeErrors": "false"},
                                  idempotency_key=f"batch:{batch}:invoices")
        booked: dict[str, str | PermanentError] = {}
        unpaid: list[tuple[ReceiptOrder, str, list[xero_payments.PlannedPayment]]] = []
        for (order, _), row in zip(bodies, answer["Invoices"], strict=True):
            if row.get("StatusAttributeString") != "OK" or not row.get("InvoiceID"):
                continue
            try:
                check_booked("Invoice", order, row)
            except PermanentError as exc:
                booked[order.key] = exc
                continue
            unpaid.append((order, str(row["InvoiceID"]), xero_payments.plan(order, self.mapping)))
        if unpaid:
            bank = self.directory.references().bank_account
            flat = [(order, p) for order, _, planned in unpaid for p in planned]
            answer = self.api.request("payment.batch", "PUT", "/Payments", json={"Payments": [
                xero_payments.body(p, invoice_id, bank) for _, invoice_id, planned in unpaid for p in planned]},
                params={"summarizeErrors": "false"}, idempotency_key=f"batch:{batch}:payments")
            failed = {order.key for (order, p), row in zip(flat, answer["Payments"], strict=True)
                      if row.get("StatusAttributeString") != "OK" or Decimal(str(row.get("Amount") or 0)) != p.amount}
            booked.update({order.key: invoice_id for order, invoice_id, _ in unpaid if order.key not in failed})
        return booked

    def _bookable(self, order: ReceiptOrder) -> bool:
        try:
            self._check_order(order)
        except BadRecord:
            return False
        return True

    def paid_state(self, since: date | None) -> Iterator[LedgerBooking]:
        """The sales documents as Xero holds them now (connectors.base.LedgerReadBack)."""
        return paid.paid_state(self.api, since, bank_mode=self._bank_mode)

    def parse_ledger_webhook(self, request: WebhookRequest) -> list[LedgerChange]:
        """Xero webhook (``x-xero-signature``; an intent-to-receive check is a
        signed batch with no events): the invoices and credit notes of this tenant it names."""
        verify_body(request, "x-xero-signature", self.settings.webhook_key, "webhook_key")
        try:
            events = json.loads(request.body).get("events") or []
        except (ValueError, AttributeError):
            raise WebhookRejected("webhook body is not a Xero events document") from None
        tenant = self.settings.tenant_id
        return [
            LedgerChange(ref=_WEBHOOK_REFS[e["eventCategory"]](str(e.get("resourceId"))),
                         operation=str(e.get("eventType", "")),
                         destructive=isinstance(e.get("data"), dict) and e["data"].get("Status") in _GONE)
            for e in events
            if isinstance(e, dict) and e.get("eventCategory") in _WEBHOOK_REFS and e.get("resourceId")
            and (tenant is None or e.get("tenantId") == tenant)
        ]

    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        """Upload ``document`` to document ``ref`` (spec#/paths/~1Invoices~1{InvoiceID}~1Attachments~1{FileName}
        and the same under CreditNotes and BankTransactions); idempotent by FileName."""
        note, matched = credit_note_id(ref), invoice_id(ref)
        kind, doc_id = (("CreditNotes", note) if note else ("Invoices", matched) if matched
                        else ("BankTransactions" if self._bank_mode else "Invoices", ref))
        path = f"/{kind}/{quote(doc_id, safe='')}/Attachments"
        if may_exist:
            for row in self.api.request("attachment.find", "GET", path).get("Attachments") or []:
                if row.get("FileName") == document.name:
                    return str(row["AttachmentID"])
        key = hashlib.sha256(f"{ref}\x1f{document.name}\x1f{document.sha256}".encode()).hexdigest()
        # The spec's request body is application/octet-stream (raw bytes); Xero types the file by its name.
        answer = self.api.request(
            "attachment.upload", "PUT", f"{path}/{quote(document.name, safe='')}", data=document.content,
            headers={"Content-Type": "application/octet-stream"}, idempotency_key=f"attach:{key[:48]}",
        )
        return str(answer["Attachments"][0]["AttachmentID"])

    # -- invoice + payments -----------------------------------------------------------
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

    def _currency_fields(self, order: ReceiptOrder) -> dict[str, Any]:
        """CurrencyCode and, for a foreign currency the organisation has added, CurrencyRate in
        Xero's direction (``format.xero_rate``); without the invoice's own rate Xero applies
        its rate of the document's date (spec#/components/schemas/Invoice/properties/CurrencyRate)."""
        invoice = order.invoice
        fields: dict[str, Any] = {"CurrencyCode": invoice.currency}
        if invoice.currency != HOME_CURRENCY:
            self.directory.check_currency(invoice.currency)
            if invoice.exchange_rate is not None:
                fields["CurrencyRate"] = amount(xero_rate(invoice.exchange_rate))
        return fields

    def _invoice_body(self, order: ReceiptOrder) -> dict[str, Any]:
        invoice = order.invoice
        payment = invoice.last_payment
        assert payment is not None  # _check_order
        return {
            "Type": "ACCREC", "Status": "AUTHORISED", "InvoiceNumber": order.number, "Reference": order.key,
            "Contact": {"ContactID": self.directory.party_id(invoice.customer)},
            "Date": invoice.issue_date.isoformat(), "DueDate": (invoice.due_date or booking_day(payment)).isoformat(),
            "LineAmountTypes": "Exclusive", **self._currency_fields(order),
            "LineItems": self.directory.line_items(invoice),
        }

    def _pay(self, order: ReceiptOrder, payment: xero_payments.PlannedPayment, invoice_id: str) -> None:
        body = xero_payments.body(payment, invoice_id, self.directory.references().bank_account)
        answer = self.api.request("payment.create", "PUT", "/Payments", json={"Payments": [body]},
                                  idempotency_key=payment.key)
        paid = answer["Payments"][0]
        if Decimal(str(paid.get("Amount"))) != payment.amount:
            raise PermanentError(f"Xero booked a payment of {paid.get('Amount')} for {order.number}, "
                                 f"expected {payment.amount}")

    # -- bank transaction mode -----------------------------------------------------------
    def _find_bank_transaction(self, order: ReceiptOrder) -> dict[str, Any] | None:
        where = f"Type==\"RECEIVE\" AND Reference.StartsWith({literal(order.key + ' ')})"
        answer = self.api.request("banktransaction.find", "GET", "/BankTransactions", params={"where": where})
        rows = [r for r in answer.get("BankTransactions") or [] if r.get("Status") != "DELETED"]
        return rows[0] if rows else None

    def _record_bank_transaction(self, order: ReceiptOrder, may_exist: bool) -> str:
        found = self._find_bank_transaction(order) if may_exist else None
        refs = self.directory.references()
        if found is None and refs.bank_currency and refs.bank_currency != order.invoice.currency:
            # spec#/components/schemas/BankTransaction/properties/CurrencyRate: "Setting currency is only
            # supported on overpayments": a bank transaction is in its bank account's currency.
            raise PermanentError(f"a Xero bank transaction is in its bank account's currency ({refs.bank_currency}), "
                                 f"not {order.invoice.currency}: book {order.invoice.currency} receipts with mode "
                                 f"\"invoice_payment\" or set bank_account to a {order.invoice.currency} bank account")
        if found is None:
            payment = order.invoice.last_payment
            assert payment is not None
            text = xero_payments.payment_text(self.mapping, payment, order.number)
            body = {"BankTransactions": [{
                "Type": "RECEIVE", "Contact": {"ContactID": self.directory.party_id(order.invoice.customer)},
                "BankAccount": {"Code": refs.bank_account},
                "Date": booking_day(payment).isoformat(),
                # The key leads so a later lookup finds it; the number and payment text follow for people.
                "Reference": f"{order.key} {order.number} {text}"[:REFERENCE_MAX],
                "LineAmountTypes": "Exclusive", **self._currency_fields(order),
                "LineItems": self.directory.line_items(order.invoice),
            }]}
            answer = self.api.request("banktransaction.create", "PUT", "/BankTransactions", json=body,
                                      idempotency_key=f"{order.key}:banktransaction")
            found = answer["BankTransactions"][0]
        check_booked("BankTransaction", order, found)
        return str(found["BankTransactionID"])
