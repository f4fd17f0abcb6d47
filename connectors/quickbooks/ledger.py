"""QuickBooks Online ledger: a paid invoice becomes one SalesReceipt (or an
Invoice plus one Payment per payment), a credit note a RefundReceipt or a
CreditMemo (see ``docs.py``), each with its PDF attached.

Exactly once, by three layers: the ``requestid`` query parameter (QBO returns
the original answer to a repeated write, so replaying a lost response is
safe), the DocNumber (= the receipt's number, looked up before creating when
an earlier attempt may have written), and QBO's own duplicate-DocNumber fault,
which sends us back to the lookup. Payments are found again through the
invoice's LinkedTxn and the marker in their PrivateNote.

Call budget: reference data is read in ONE batch request per run and customers
in pages of 1000 once per run (``refs.py``); after that a receipt costs
one create and one upload.

With ``match_existing = "by_number"`` a receipt first looks for the company's own
Invoice carrying the CRM invoice's number (``match.py``, rules in
``ledger_match``): found, it gets the Payments it lacks and the PDF, and nothing
else is booked; that costs one query more per receipt and no batch booking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import AttachableRef

from pouracquit.common.errors import BadRecord, PermanentError
from pouracquit.common.money import round_cents
from pouracquit.connectors.base import Document, LedgerBooking, LedgerChange, ReceiptOrder, WebhookRequest
from pouracquit.connectors.ledger_base import CallBudget, LedgerConnector, rate_key
from pouracquit.connectors.ledger_match import already_paid, check_total, unmatched, unsettled
from pouracquit.connectors.registry import ConnectorContext

from . import paid
from .api import Api, quote, request_id, select
from .docs import (
    KINDS,
    MARKER,
    Builder,
    Kind,
    check_order,
    checked_total,
    decode,
    encode,
    kind_of,
    payment_marker,
)
from .match import LABEL, currency_of, find_existing
from .refs import BATCH_MAX, Directory, ref
from .session import (
    VENDOR,
    Connection,
    DuplicateDocNumber,
    QuickBooksSettings,
    classify,
    oauth_app,
)
from .webhook import ledger_changes

__all__ = ["QuickBooksLedger", "quote", "rate_key"]


class QuickBooksLedger(LedgerConnector):
    """Books paid invoices and credit notes in QuickBooks Online (connectors.base.Ledger)."""

    vendor = VENDOR
    settings_type = QuickBooksSettings
    classify = staticmethod(classify)
    app_of = staticmethod(oauth_app)  # `pouracquit connect quickbooks` (``session.oauth_app``)
    # Intuit throttles 500 requests a minute per company (realmId), and 10 concurrent ones per app
    # and company (developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles;
    # developer.intuit.com/hub/blog/2016/08/08/idg-concurrent-api-use-changes-coming-soon).
    call_budget = CallBudget(limit=500, window=60.0, concurrency=10)
    batch_size = BATCH_MAX
    from .doctor import diagnose  # `pouracquit doctor` (connectors.base.Diagnosable)

    def __init__(self, settings: QuickBooksSettings, ctx: ConnectorContext) -> None:
        self._conn = Connection(settings, ctx.tokens, self._call)
        super().__init__(settings, ctx, refresh=self._conn.refresh, overrides={
            "deposit_account": settings.deposit_account, "item": settings.item,
            "vat_rates": settings.tax_codes, "payment_methods": settings.payment_methods})
        self.api = Api(self._conn, self._call)
        self.directory = Directory(self.api, self.mapping, settings.realm_id)

    def _builder(self) -> Builder:
        return Builder(self.mapping, self.directory.references())

    # -- Ledger protocol ----------------------------------------------------------
    def find_receipt(self, order: ReceiptOrder) -> str | None:
        """The document carrying ``order.number`` as DocNumber and our marker, if any; with
        ``match_existing``, first the company's own invoice for it once nothing is due on it."""
        if self._matching(order) and (existing := find_existing(self.api, self.directory, order)) is not None:
            return encode("Invoice", str(existing["Id"])) if Decimal(str(existing.get("Balance"))) == 0 else None
        kind = kind_of(order, self.settings.mode)
        ours = self._ours(self._numbered(kind, order), order)
        return encode(kind, str(ours[0]["Id"])) if ours else None

    def _numbered(self, kind: Kind, order: ReceiptOrder) -> list[dict[str, Any]]:
        return self.api.query(f"{kind.lower()}.find", select(kind, f"DocNumber = {quote(order.number)}"))

    @staticmethod
    def _ours(rows: list[dict[str, Any]], order: ReceiptOrder) -> list[dict[str, Any]]:
        # the note starts with the marker; what follows (credited invoice, rate) is for people
        return [r for r in rows if str(r.get("PrivateNote") or "").split(" ", 1)[0] == MARKER + order.key]

    def record_receipt(self, order: ReceiptOrder, *, may_exist: bool) -> str:
        """Create the document once; its TotalAmt must equal the order's gross total.
        In payment mode, then book each invoice payment not booked yet."""
        kind = kind_of(order, self.settings.mode)
        check_order(order, kind)
        builder = self._builder()
        builder.refs.check_currency(order.invoice.currency, order.number)
        if self._matching(order):
            return self._pay_existing(order, kind, builder, may_exist)
        return self._record(order, kind, builder, may_exist)

    def _matching(self, order: ReceiptOrder) -> bool:
        # credit notes are booked as always: their original, paid, takes no allocation (docs/vendors.md)
        return self.settings.match_existing == "by_number" and order.credits is None

    def _pay_existing(self, order: ReceiptOrder, kind: Kind, builder: Builder, may_exist: bool) -> str:
        """``match_existing = "by_number"``: pay the company's own invoice (``match.py``);
        without one, book as the mode says, or stop (setting ``unmatched``)."""
        existing = find_existing(self.api, self.directory, order)
        if existing is not None and self._ours([existing], order):
            return self._record(order, kind, builder, may_exist=True)  # booked by an earlier attempt
        if existing is None:
            if self.settings.unmatched == "stop":
                raise unmatched(LABEL, order)
            return self._record(order, kind, builder, may_exist)
        check_order(order, "Invoice")
        doc = encode("Invoice", str(existing["Id"]))
        check_total(LABEL, doc, order, existing.get("TotalAmt"), currency_of(existing, builder.refs.home_currency))
        self._book_payments(order, existing, builder, settle=True)
        return doc

    def _record(self, order: ReceiptOrder, kind: Kind, builder: Builder, may_exist: bool) -> str:
        row = None
        if may_exist and (ours := self._ours(self._numbered(kind, order), order)):
            row = ours[0]
        if row is None:
            customer = self.directory.party_id(order.invoice.customer, order.invoice.currency)
            doc = builder.document(order, kind, customer)
            try:
                row = self.api.create(f"{kind.lower()}.create", kind, doc.to_json(), order.key)
            except DuplicateDocNumber:
                rows = self._numbered(kind, order)
                ours = self._ours(rows, order)
                if not ours:
                    others = ", ".join(str(r["Id"]) for r in rows) or "a document this connection cannot read"
                    raise PermanentError(
                        f"DocNumber {order.number} is already used by {kind} {others}, which pouracquit "
                        f"did not book for this receipt"
                    ) from None
                row = ours[0]
        checked = checked_total(kind, order, str(row["Id"]), row.get("TotalAmt"))
        if isinstance(checked, PermanentError):
            raise checked
        if kind == "Invoice":
            self._book_payments(order, row, builder)
        return checked

    def _book_payments(self, order: ReceiptOrder, invoice: Mapping[str, Any], builder: Builder, *,
                       settle: bool = False) -> None:
        """Each invoice payment once: the ones already applied to the invoice (its LinkedTxn
        of TxnType Payment) that carry our marker are skipped; the others are created
        with a requestid derived from the order and the payment's place. With ``settle``
        (an invoice someone else booked) they must pay exactly its Balance, or nothing
        when it is paid already."""
        linked = [str(link["TxnId"]) for link in invoice.get("LinkedTxn") or []
                  if link.get("TxnType") == "Payment"]
        booked: set[str] = set()
        if linked:
            ids = ", ".join(quote(i) for i in linked)
            booked = {str(r.get("PrivateNote") or "") for r in self.api.query(
                "payment.find", select("Payment", f"Id IN ({ids})"))}
        missing = [i for i in range(len(order.invoice.payments)) if payment_marker(order, i) not in booked]
        if settle and missing:
            due = round_cents(Decimal(str(invoice.get("Balance") or 0)))
            to_pay = sum((order.invoice.payments[i].amount.rounded().amount for i in missing), Decimal(0))
            if due == 0:
                already_paid(LABEL, order, encode("Invoice", str(invoice["Id"])))
                return
            if to_pay != due:
                raise unsettled(LABEL, order, due, to_pay)
        customer = str(invoice["CustomerRef"]["value"])
        for index in missing:
            payment = builder.payment(order, index, customer, str(invoice["Id"]))
            key = request_id("payment", self.settings.realm_id, order.key, str(index))
            self.api.create("payment.create", "Payment", payment.to_json(), key)

    def record_receipts(self, orders: Sequence[ReceiptOrder]) -> dict[str, str | PermanentError]:
        """Book fresh SalesReceipts through /batch: missing customers first, then up to
        30 per call, each call with a requestid derived from its orders' keys (a lost
        answer is replayed, not re-booked). Credit notes, payment mode, and orders the
        batch refused are left out of the answer for the one-by-one path, and so are all
        orders with ``match_existing`` (each looks for its invoice first)."""
        if self.settings.mode != "sales_receipt" or self.settings.match_existing != "off":
            return {}
        builder = self._builder()
        plain = [o for o in orders if o.credits is None]
        bookable = []
        for order in plain:
            try:
                builder.refs.check_currency(order.invoice.currency, order.number)
                check_order(order, "SalesReceipt")
                bookable.append(order)
            except (BadRecord, PermanentError):
                continue  # the one-by-one path reports it against this order alone
        self.directory.create_parties([(o.invoice.customer, o.invoice.currency) for o in bookable])
        prepared = []
        for order in bookable:
            try:
                customer = self.directory.party_id(order.invoice.customer, order.invoice.currency)
                prepared.append((order, builder.document(order, "SalesReceipt", customer)))
            except BadRecord:
                continue
        booked: dict[str, str | PermanentError] = {}
        for start in range(0, len(prepared), BATCH_MAX):
            chunk = prepared[start:start + BATCH_MAX]
            items = [{"bId": order.key, "operation": "create", "SalesReceipt": json.loads(doc.to_json())}
                     for order, doc in chunk]
            key = request_id("salesreceipt.batch", self.settings.realm_id, *(o.key for o, _ in chunk))
            for item in self.api.batch("salesreceipt.batch", items, key):
                if "SalesReceipt" in item:
                    row = item["SalesReceipt"]
                    order = next(o for o, _ in chunk if o.key == item["bId"])
                    booked[order.key] = checked_total("SalesReceipt", order, str(row["Id"]), row.get("TotalAmt"))
        return booked

    def paid_state(self, since: date | None) -> Iterator[LedgerBooking]:
        """The sales documents as QuickBooks holds them now (connectors.base.LedgerReadBack)."""
        return paid.paid_state(self.api, lambda: self.directory.references().home_currency, since)

    def parse_ledger_webhook(self, request: WebhookRequest) -> list[LedgerChange]:
        """QuickBooks webhook (``intuit-signature``, CloudEvents or legacy envelope, see
        ``webhook.py``): the documents of this company pouracquit books
        (SalesReceipt, Invoice, RefundReceipt, CreditMemo) it names, with their
        operation, under the ids record_receipt returned for them."""
        return ledger_changes(request, self.settings.webhook_verifier_token, self.settings.realm_id, KINDS, encode)

    def attach(self, ref_: str, document: Document, *, may_exist: bool) -> str:
        """Upload ``document`` as an Attachable linked to the booked document ``ref_``
        (AttachableRef.EntityRef type = its entity name, Intuit Attachable entity)."""
        kind, entity_id = decode(ref_)
        if may_exist:
            rows = self.api.query(
                "attachable.find",
                select("Attachable", f"AttachableRef.EntityRef.Type = {quote(kind)} and "
                       f"AttachableRef.EntityRef.value = {quote(entity_id)}"),
            )
            for row in rows:
                if row.get("FileName") == document.name:
                    return str(row["Id"])
        link = AttachableRef()
        link.EntityRef = ref(entity_id)
        link.EntityRef.type = kind
        meta = Attachable()
        meta.AttachableRef.append(link)
        meta.FileName, meta.ContentType = document.name, document.media_type
        qb = self.api.client()
        key = request_id("upload", self.settings.realm_id, ref_, document.name, document.sha256)
        answer = self._call("attachable.upload", lambda: qb.create_object(
            "Attachable", meta.to_json(), _file_bytes=document.content, request_id=key))
        item = answer["AttachableResponse"][0]
        if "Fault" in item:  # QBO reports a refused file inside a 200 answer
            error = item["Fault"]["Error"][0]
            raise BadRecord(f"quickbooks refused the upload of {document.name}: {error.get('Message')} "
                            f"{error.get('Detail', '')}".strip())
        return str(item["Attachable"]["Id"])
