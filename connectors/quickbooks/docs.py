"""The QuickBooks documents a receipt order becomes, built with python-quickbooks objects.

Which document: a RefundReceipt records money paid back and names the account
it left from (DepositToAccountRef, required: "account from which payment money
is refunded", Intuit RefundReceipt reference as quoted in
https://www.withone.ai/knowledge/quickbooks/conn_mod_def%3A%3AGJ6MlQA2zP0%3A%3AxOC-nLl7TNW_4ifEwIhzvA);
a CreditMemo moves no money: "with a credit memo, no money leaves your cash or
checking account; instead, it is saved as a credit that can be used as payment
for a future or open invoice" (Intuit's QuickBooks community answer, quoted in
docs/vendors.md; likewise https://www.mjobookkeeper.com/quickbooks-online/article/how-to-create-credit-memos-and-refund-receipts-in-quickbooks-online/:
refund receipts for "refunds paid to customers" who owe nothing). Hence:

* a paid invoice: a SalesReceipt (default mode), or an Invoice plus one Payment
  per invoice payment (``mode = "invoice_payment"``);
* a credit note whose money was returned (refund, or cancellation after payment
  with its refund): a RefundReceipt out of the bank account, dated the refund;
* a credit note with no money returned yet: a CreditMemo, the credit kept on the
  customer's account.

Each carries the document's own VAT per rate in TxnTaxDetail.TaxLine (TaxRateRef,
TaxPercent, NetAmountTaxable, Amount: python-quickbooks ``objects.tax``; Java SDK
TaxLineDetail, whose OverrideDeltaAmount records how far a supplied amount is from
QuickBooks' own computation), so the booked VAT is the VAT printed on the receipt.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from quickbooks.objects.base import LinkedTxn
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice as QboInvoice
from quickbooks.objects.payment import Payment as QboPayment
from quickbooks.objects.payment import PaymentLine
from quickbooks.objects.refundreceipt import RefundReceipt
from quickbooks.objects.salesreceipt import SalesReceipt
from quickbooks.objects.tax import TaxLine, TaxLineDetail, TxnTaxDetail

from pouracquit.common.errors import BadRecord, ConfigError, PermanentError
from pouracquit.common.model import Invoice, Line, Payment
from pouracquit.common.money import round_cents
from pouracquit.connectors.base import ReceiptOrder
from pouracquit.connectors.ledger_base import tax_setting, total_refused
from pouracquit.mappings import lookup

from .refs import Refs, TaxCode, ref

Kind = Literal["SalesReceipt", "Invoice", "RefundReceipt", "CreditMemo"]
KINDS: tuple[Kind, ...] = ("SalesReceipt", "Invoice", "RefundReceipt", "CreditMemo")
Mode = Literal["sales_receipt", "invoice_payment"]
DOC_NUMBER_MAX = 21
PAYMENT_REF_MAX = 21  # PaymentRefNum
MARKER = "pouracquit:"
# The date a French company books a payment on: its own calendar day.
BOOKING_TZ = ZoneInfo("Europe/Paris")
_READ_ONLY = ("TotalAmt", "Balance", "RemainingCredit", "HomeBalance", "HomeTotalAmt", "Deposit")
_PAID_KINDS = ("SalesReceipt", "RefundReceipt")


def kind_of(order: ReceiptOrder, mode: Mode) -> Kind:
    """The QuickBooks document ``order`` is booked as (see the module docstring)."""
    if order.credits is not None:
        return "RefundReceipt" if order.invoice.payments else "CreditMemo"
    return "Invoice" if mode == "invoice_payment" else "SalesReceipt"


def encode(kind: Kind, entity_id: str) -> str:
    """The ledger id the pipeline stores: a SalesReceipt's plain Id (as every receipt
    booked before credit notes existed), ``Kind:Id`` for the other documents."""
    return entity_id if kind == "SalesReceipt" else f"{kind}:{entity_id}"


def decode(ledger_id: str) -> tuple[Kind, str]:
    kind, sep, entity_id = ledger_id.partition(":")
    if sep and kind in KINDS:
        return kind, entity_id  # type: ignore[return-value]
    return "SalesReceipt", ledger_id


def local_day(payment: Payment) -> str:
    return payment.paid_at.astimezone(BOOKING_TZ).date().isoformat()


def check_order(order: ReceiptOrder, kind: Kind) -> None:
    if not order.number or len(order.number) > DOC_NUMBER_MAX:
        raise BadRecord(f"receipt number {order.number!r} cannot be a QuickBooks DocNumber "
                        f"(1 to {DOC_NUMBER_MAX} characters)")
    if kind in _PAID_KINDS and order.invoice.last_payment is None:
        raise BadRecord(f"invoice {order.number} has no payment: a {kind} needs its date")
    if kind == "Invoice" and not order.invoice.payments:
        raise BadRecord(f"invoice {order.number} has no payment to book against it")


def checked_total(kind: Kind, order: ReceiptOrder, entity_id: str, total_amt: Any) -> str | PermanentError:
    """The encoded id, or the stop naming both totals when QuickBooks' differs."""
    refused = total_refused(f"{kind} {entity_id}", order, total_amt, where=" in QuickBooks",
                            fix="check the VAT codes of the mapping")
    return refused or encode(kind, entity_id)


class Builder:
    """Turns orders into QuickBooks objects with the run's reference data."""

    def __init__(self, mapping: Mapping[str, Any], refs: Refs) -> None:
        self.mapping = mapping
        self.refs = refs

    def document(self, order: ReceiptOrder, kind: Kind, customer_id: str) -> Any:
        """The SalesReceipt, Invoice, RefundReceipt or CreditMemo for ``order``."""
        invoice = order.invoice
        doc = {"SalesReceipt": SalesReceipt, "Invoice": QboInvoice, "RefundReceipt": RefundReceipt,
               "CreditMemo": CreditMemo}[kind]()
        for name in _READ_ONLY:
            if hasattr(doc, name):
                setattr(doc, name, None)
        doc.DocNumber = order.number
        doc.CustomerRef = ref(customer_id)
        self.currency(doc, invoice)
        doc.PrivateNote = f"{MARKER}{order.key}"
        if order.credits is not None:
            credited = order.credits
            doc.PrivateNote += (f" avoir {order.number} ({credited.reason}) sur la facture {credited.number} "
                                f"du {credited.issue_date.isoformat()}")
        if invoice.currency != self.refs.home_currency:  # where the booked rate came from, for the audit
            doc.PrivateNote += f" taux {invoice.exchange_rate} {self.refs.home_currency}/{invoice.currency}"
            if invoice.exchange_rate_source:
                doc.PrivateNote += f" ({invoice.exchange_rate_source})"
        codes = [self.tax_code(line) for line in invoice.lines]
        doc.Line = [self._line(line, code) for line, code in zip(invoice.lines, codes, strict=True)]
        doc.TxnTaxDetail = self.tax_detail(invoice, codes)
        doc.GlobalTaxCalculation = "TaxExcluded"
        if kind in _PAID_KINDS:
            payment = invoice.last_payment
            assert payment is not None  # check_order
            doc.TxnDate = local_day(payment)
            # SalesReceipt: the bank account the money went to; RefundReceipt: the one it left
            # from (Intuit RefundReceipt: DepositToAccountRef required, a Bank or Other Current
            # Asset account).
            doc.DepositToAccountRef = ref(self.refs.deposit_account)
            method = self.payment_method(payment)
            if method:
                doc.PaymentMethodRef = ref(method)
            doc.PaymentRefNum = payment.reference[:PAYMENT_REF_MAX]
        else:
            doc.TxnDate = invoice.issue_date.isoformat()
        if kind == "Invoice":  # QBO would put its own today there (SalesTransaction.DueDate, Finance.xsd)
            doc.DueDate = (invoice.due_date or invoice.issue_date).isoformat()
        return doc

    def payment(self, order: ReceiptOrder, index: int, customer_id: str, invoice_id: str) -> QboPayment:
        """Invoice payment ``index`` as a QuickBooks Payment applied to the invoice (LinkedTxn
        TxnType "Invoice", Intuit Payment entity), deposited straight to the bank account so
        it matches its bank line on reconciliation."""
        paid = order.invoice.payments[index]
        payment = QboPayment()
        payment.TxnDate = local_day(paid)
        payment.TotalAmt = paid.amount.amount
        payment.CustomerRef = ref(customer_id)
        payment.DepositToAccountRef = ref(self.refs.deposit_account)
        method = self.payment_method(paid)
        if method:
            payment.PaymentMethodRef = ref(method)
        payment.PaymentRefNum = paid.reference[:PAYMENT_REF_MAX] or None
        payment.PrivateNote = payment_marker(order, index)
        self.currency(payment, order.invoice)
        link = LinkedTxn()
        link.TxnId, link.TxnType, link.TxnLineId = invoice_id, "Invoice", None
        line = PaymentLine()
        line.Amount, line.LinkedTxn = paid.amount.amount, [link]
        payment.Line = [line]
        return payment

    def currency(self, doc: Any, invoice: Invoice) -> None:
        """CurrencyRef and ExchangeRate: QuickBooks records "the number of home currency units it
        takes to equal one foreign currency unit" (Transaction.ExchangeRate, ipp-v3-java-data
        Finance.xsd), the convention of Invoice.exchange_rate when the home currency is EUR."""
        refs = self.refs
        refs.check_currency(invoice.currency, invoice.number or invoice.source_id)
        doc.CurrencyRef = ref(invoice.currency)
        if invoice.currency == refs.home_currency:
            doc.ExchangeRate = 1
            return
        if refs.home_currency != "EUR":
            raise PermanentError(f"this QuickBooks company's home currency is {refs.home_currency}; pouracquit's "
                                 f"exchange rates are euros per unit, so {invoice.currency} cannot be converted")
        if invoice.exchange_rate is None:
            raise BadRecord(f"invoice {invoice.number} is in {invoice.currency} without an exchange_rate: the "
                            f"receipt must print the rate it was booked at")
        doc.ExchangeRate = invoice.exchange_rate

    def payment_method(self, payment: Payment) -> str | None:
        method_name = lookup(self.mapping["payment_methods"], payment.method.value, "payment_methods")
        if not method_name:
            return None
        method_id = self.refs.payment_methods.get(str(method_name).lower())
        if method_id is None:
            raise ConfigError(f"QuickBooks has no payment method {method_name!r} "
                              f"(mapping payment_methods.{payment.method.value})")
        return method_id

    def tax_code(self, line: Line) -> TaxCode:
        name, key = tax_setting(self.mapping, line)
        code = self.refs.tax_codes.get(str(name).lower())
        if code is None:
            raise ConfigError(f"QuickBooks has no TaxCode named {name!r} (mapping {key})")
        if any(rate != line.vat_rate for _, rate in code.rates):
            raise ConfigError(f"TaxCode {code.name!r} charges {', '.join(str(r) for _, r in code.rates)} % "
                              f"but the mapping {key} uses it for {line.vat_rate} %")
        return code

    def _line(self, line: Line, code: TaxCode) -> SalesItemLine:
        detail = SalesItemLineDetail()
        detail.ItemRef = ref(self.refs.item)
        detail.TaxCodeRef = ref(code.id)
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

    @staticmethod
    def tax_detail(invoice: Invoice, codes: list[TaxCode]) -> TxnTaxDetail:
        """One TaxLine per TaxRate: base summed first, tax rounded once (EN16931 BR-CO-17),
        as the receipt prints it."""
        bases: dict[str, tuple[Decimal, Decimal]] = {}
        for line, code in zip(invoice.lines, codes, strict=True):
            for rate_id, rate in code.rates:
                base = bases.get(rate_id, (rate, Decimal("0")))[1]
                bases[rate_id] = (rate, base + line.net)
        detail = TxnTaxDetail()
        detail.TxnTaxCodeRef = None
        total = Decimal("0")
        for rate_id, (rate, base) in sorted(bases.items()):
            tax_line = TaxLine()
            tax_line.DetailType = "TaxLineDetail"
            tax_line.Amount = round_cents(base * rate / 100)
            tax_line.TaxLineDetail = TaxLineDetail()
            tax_line.TaxLineDetail.TaxRateRef = ref(rate_id)
            tax_line.TaxLineDetail.TaxPercent = rate
            tax_line.TaxLineDetail.NetAmountTaxable = base
            detail.TaxLine.append(tax_line)
            total += tax_line.Amount
        detail.TotalTax = total
        return detail


def payment_marker(order: ReceiptOrder, index: int) -> str:
    """What a Payment's PrivateNote carries: the order's key and the payment's place."""
    return f"{MARKER}{order.key}#{index + 1}"
