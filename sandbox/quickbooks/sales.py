"""QBO's rules for the sales documents the sandbox books: SalesReceipt,
Invoice, RefundReceipt, CreditMemo, and the Payment applied to an invoice.

Shapes and rules follow the Intuit entities (ipp-v3-java-data Finance.xsd,
github:intuit/QuickBooks-V3-Java-SDK; python-quickbooks ``objects``):

* every sales document: lines with a TaxCode each (VAT computed per TaxRate,
  summed by rate, in TxnTaxDetail.TaxLine), TotalAmt computed server-side;
* TxnTaxDetail.TaxLine sent by the client for a rate of the document overrides
  that rate's amount; the difference is kept in TaxLineDetail.OverrideDeltaAmount
  ("the difference between the actual tax and overridden amount supplied by the
  user", Java/.NET SDK TaxLineDetail);
* CurrencyRef must be the home currency unless Preferences.CurrencyPrefs.
  MultiCurrencyEnabled, and then the customer's own currency (one currency per
  customer); ExchangeRate is "the number of home currency units it takes to
  equal one foreign currency unit" (Transaction.ExchangeRate), taken from the
  company's rate table when the client sends none; HomeTotalAmt = TotalAmt x rate;
* RefundReceipt needs DepositToAccountRef (the account the money is refunded
  from); a CreditMemo keeps its total as RemainingCredit; an Invoice keeps a
  Balance that each Payment applied to it (Line[].LinkedTxn TxnType Invoice)
  lowers, and lists those payments in its own LinkedTxn (TxnType Payment).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from .company import EXCHANGE_RATES
from .faults import fault

if TYPE_CHECKING:
    from .books import Books

SALES_DOCUMENTS = ("SalesReceipt", "Invoice", "RefundReceipt", "CreditMemo")
_TXN_TYPE_LABEL = {"SalesReceipt": "Sales Receipt", "Invoice": "Invoice", "RefundReceipt": "Refund",
                   "CreditMemo": "Credit Memo"}
DOC_NUMBER_MAX = 21
_BUSINESS = "A business validation error has occurred while processing your request"


def dec(value: Any, element: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise fault(400, "2010", "Request has invalid or unsupported property",
                    f"Property {element} is not a number: {value!r}", element=element) from None
    if not result.is_finite():
        raise fault(400, "2010", "Request has invalid or unsupported property", element=element)
    return result


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def ref_id(obj: dict[str, Any], key: str) -> str | None:
    ref = obj.get(key)
    if isinstance(ref, dict) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


class Sales:
    """The sales-document rules over one company's ``Books``."""

    def __init__(self, books: Books) -> None:
        self.books = books

    # -- currency ---------------------------------------------------------------
    def currency(self, body: dict[str, Any], customer: dict[str, Any]) -> tuple[str, Decimal]:
        """(currency, ExchangeRate) of a transaction for ``customer``."""
        books = self.books
        home = books.home_currency
        held = str((customer.get("CurrencyRef") or {}).get("value") or home)
        currency = ref_id(body, "CurrencyRef") or held
        if currency != home and not books.multicurrency:
            raise fault(400, "6000", _BUSINESS,
                        f"Business Validation Error: multicurrency is off; {currency} is not the home currency "
                        f"{home}", element="CurrencyRef")
        if currency != held:
            raise fault(400, "6000", _BUSINESS,
                        f"Business Validation Error: the transaction currency {currency} must be the "
                        f"customer's currency {held}", element="CurrencyRef")
        if currency == home:
            return currency, Decimal("1")
        if body.get("ExchangeRate") not in (None, "", 0):
            rate = dec(body["ExchangeRate"], "ExchangeRate")
            if rate <= 0:
                raise fault(400, "2010", "Request has invalid or unsupported property",
                            "ExchangeRate must be positive", element="ExchangeRate")
            return currency, rate
        if currency not in EXCHANGE_RATES:
            raise fault(400, "6000", _BUSINESS, f"Business Validation Error: no exchange rate for {currency}",
                        element="ExchangeRate")
        return currency, EXCHANGE_RATES[currency]

    def _account(self, body: dict[str, Any], key: str, currency: str) -> None:
        account = self.books.require("Account", ref_id(body, key), key)
        held = str((account.get("CurrencyRef") or {}).get("value") or self.books.home_currency)
        if held not in (self.books.home_currency, currency):
            raise fault(400, "6000", _BUSINESS, f"Business Validation Error: account {account['Name']} is in "
                        f"{held}, the transaction in {currency}", element=key)

    # -- sales documents ----------------------------------------------------------
    def create(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /salesreceipt, /invoice, /refundreceipt or /creditmemo."""
        books = self.books
        doc = str(body.get("DocNumber") or "")
        if len(doc) > DOC_NUMBER_MAX:
            raise fault(400, "2050", "String length is either shorter or longer than supported by specification",
                        f"String length specification exceeded. Min:0 Max:{DOC_NUMBER_MAX} supported. "
                        f"Supplied length:{len(doc)}", element="DocNumber")
        if doc and books.warn_duplicate_doc_number:
            for row in books.entities[name].values():
                if row.get("DocNumber", "").lower() == doc.lower():
                    raise fault(400, "6140", "Duplicate Document Number Error",
                                f"Duplicate Document Number Error : You must specify a different number. "
                                f"This number has already been used. DocNumber={doc} is assigned to "
                                f"TxnType={_TXN_TYPE_LABEL[name]} with TxnId={row['Id']}")
        customer = books.require("Customer", ref_id(body, "CustomerRef"), "CustomerRef")
        currency, rate = self.currency(body, customer)
        if name == "RefundReceipt" and not ref_id(body, "DepositToAccountRef"):
            raise fault(400, "2020", "Required param missing, need to supply the required value for the API",
                        "Required parameter DepositToAccountRef is missing in the request",
                        element="DepositToAccountRef")
        if ref_id(body, "DepositToAccountRef"):
            self._account(body, "DepositToAccountRef", currency)
        if body.get("PaymentMethodRef"):
            books.require("PaymentMethod", ref_id(body, "PaymentMethodRef"), "PaymentMethodRef")
        lines, buckets = self._lines(body.get("Line") or [])
        tax_lines, total_tax = self._tax(buckets, (body.get("TxnTaxDetail") or {}).get("TaxLine") or [])
        subtotal = sum((line["Amount"] for line in lines), Decimal("0"))
        lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        total = subtotal + total_tax
        row = {k: v for k, v in body.items()
               if v not in (None, "", [], {}) and k not in ("Line", "TotalAmt", "Balance", "TxnTaxDetail")}
        # QBO answers a reference with the referenced object's name beside its Id (ReferenceType.name)
        row["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
        txn_date = body.get("TxnDate") or datetime.now(UTC).date().isoformat()
        row.update({
            "DocNumber": doc, "Line": lines, "TotalAmt": total, "TxnDate": txn_date,
            "TxnTaxDetail": {"TotalTax": total_tax, "TaxLine": tax_lines},
            "CurrencyRef": {"value": currency}, "ExchangeRate": rate, "GlobalTaxCalculation": "TaxExcluded",
            "Balance": total if name in ("Invoice", "CreditMemo") else Decimal("0"),
        })
        if currency != books.home_currency:
            row["HomeTotalAmt"] = cents(total * rate)
        if name == "Invoice":
            # "If the date is not supplied, the current date on the server is used" (Finance.xsd DueDate)
            row.setdefault("DueDate", datetime.now(UTC).date().isoformat())
            row["LinkedTxn"] = []
        if name == "CreditMemo":
            row["RemainingCredit"] = total
        return books.store(name, row)

    def _lines(
        self, raw_lines: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[tuple[str, Decimal], Decimal]]:
        lines: list[dict[str, Any]] = []
        buckets: dict[tuple[str, Decimal], Decimal] = {}
        for raw in raw_lines:
            if raw.get("DetailType") != "SalesItemLineDetail":
                continue  # QBO recomputes subtotal lines; other kinds are not emulated
            detail = dict(raw.get("SalesItemLineDetail") or {})
            amount = cents(dec(raw.get("Amount", 0), "Line.Amount"))
            self.books.require("Item", ref_id(detail, "ItemRef"), "Line.SalesItemLineDetail.ItemRef")
            qty, price = detail.get("Qty"), detail.get("UnitPrice")
            if qty not in (None, "", 0) and price not in (None, ""):
                if cents(dec(qty, "Qty") * dec(price, "UnitPrice")) != amount:
                    raise fault(400, "6070", "Amount calculation incorrect",
                                f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                                element="Line.Amount")
            for rate_id, rate in self.books.tax_rates(ref_id(detail, "TaxCodeRef"), "Line.TaxCodeRef"):
                buckets[(rate_id, rate)] = buckets.get((rate_id, rate), Decimal("0")) + amount
            detail = {k: v for k, v in detail.items() if v not in (None, "", [], {})}
            lines.append({"Id": str(len(lines) + 1), "LineNum": len(lines) + 1, "Amount": amount,
                          "Description": raw.get("Description") or "", "DetailType": "SalesItemLineDetail",
                          "SalesItemLineDetail": detail})
        if not lines:
            raise fault(400, "6000", _BUSINESS,
                        "Business Validation Error: a transaction needs at least one line", element="Line")
        return lines, buckets

    @staticmethod
    def _tax(buckets: dict[tuple[str, Decimal], Decimal],
             supplied: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Decimal]:
        overrides: dict[str, Decimal] = {}
        for line in supplied:
            rate_id = ref_id(line.get("TaxLineDetail") or {}, "TaxRateRef")
            if rate_id is None or rate_id not in {r for r, _ in buckets}:
                raise fault(400, "6000", _BUSINESS, f"Business Validation Error: TaxLine TaxRateRef {rate_id} "
                            f"is not the rate of any line", element="TxnTaxDetail.TaxLine")
            overrides[rate_id] = cents(dec(line.get("Amount", 0), "TxnTaxDetail.TaxLine.Amount"))
        tax_lines, total = [], Decimal("0")
        for (rate_id, rate), base in sorted(buckets.items()):
            computed = cents(base * rate / 100)
            amount = overrides.get(rate_id, computed)
            detail = {"TaxRateRef": {"value": rate_id}, "PercentBased": True, "TaxPercent": rate,
                      "NetAmountTaxable": base}
            if amount != computed:
                detail["OverrideDeltaAmount"] = amount - computed
            tax_lines.append({"Amount": amount, "DetailType": "TaxLineDetail", "TaxLineDetail": detail})
            total += amount
        return tax_lines, total

    # -- what a native sync pushed ------------------------------------------------------
    def push(self, record: dict[str, Any]) -> dict[str, Any]:
        """An Invoice as a CRM's own QuickBooks sync creates it (``sandbox.native_sync``):
        the CRM's number, its customer (found by DisplayName in the invoice's currency,
        else created), one line per CRM line at its net amount with the TaxCode of its rate."""
        currency = str(record["currency"])
        lines = [{"Amount": line["net"], "Description": line["description"], "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": "1"},
                                          "TaxCodeRef": {"value": self._code_for(dec(line["vat_rate"], "rate"))}}}
                 for line in record["lines"]]
        customer = self._pushed_customer(record["customer"], currency)
        return self.create("Invoice", {
            "DocNumber": record["number"], "CustomerRef": {"value": customer}, "CurrencyRef": {"value": currency},
            "TxnDate": record["issue_date"], "DueDate": record["due_date"], "Line": lines,
        })

    def _code_for(self, rate: Decimal) -> str:
        for code in self.books.entities["TaxCode"].values():
            if [r for _, r in self.books.tax_rates(code["Id"], "TaxCodeRef")] == [rate]:
                return str(code["Id"])
        raise fault(400, "6000", _BUSINESS, f"Business Validation Error: no TaxCode charges {rate} %")

    def _pushed_customer(self, party: dict[str, Any], currency: str) -> str:
        name = str(party["name"]).strip()
        names = {name.lower(), f"{name} ({currency})".lower()}
        for row in self.books.entities["Customer"].values():
            held = str((row.get("CurrencyRef") or {}).get("value") or self.books.home_currency)
            if row["DisplayName"].lower() in names and held == currency:
                return str(row["Id"])
        taken = any(r["DisplayName"].lower() == name.lower() for r in self.books.entities["Customer"].values())
        body = {"DisplayName": f"{name} ({currency})" if taken else name, "CurrencyRef": {"value": currency},
                "PrimaryEmailAddr": {"Address": party.get("email") or ""}}
        return str(self.books.create_customer(body)["Id"])

    # -- payments -------------------------------------------------------------------
    def create_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /payment: money received from a customer, applied to its invoices."""
        books = self.books
        customer = books.require("Customer", ref_id(body, "CustomerRef"), "CustomerRef")
        if body.get("TotalAmt") in (None, ""):
            raise fault(400, "2020", "Required param missing, need to supply the required value for the API",
                        "Required parameter TotalAmt is missing in the request", element="TotalAmt")
        total = cents(dec(body["TotalAmt"], "TotalAmt"))
        currency, rate = self.currency(body, customer)
        if ref_id(body, "DepositToAccountRef"):
            self._account(body, "DepositToAccountRef", currency)
        if body.get("PaymentMethodRef"):
            books.require("PaymentMethod", ref_id(body, "PaymentMethodRef"), "PaymentMethodRef")
        applied: list[tuple[dict[str, Any], Decimal]] = []
        lines = []
        for raw in body.get("Line") or []:
            amount = cents(dec(raw.get("Amount", 0), "Line.Amount"))
            links = raw.get("LinkedTxn") or []
            for link in links:
                if link.get("TxnType") != "Invoice":
                    raise fault(400, "6000", _BUSINESS, f"Business Validation Error: this sandbox applies "
                                f"payments to invoices only, not {link.get('TxnType')}", element="LinkedTxn")
                invoice = books.require("Invoice", str(link.get("TxnId") or ""), "Line.LinkedTxn.TxnId")
                if ref_id(invoice, "CustomerRef") != customer["Id"]:
                    raise fault(400, "6000", _BUSINESS, f"Business Validation Error: invoice {invoice['Id']} "
                                f"belongs to another customer", element="Line.LinkedTxn")
                if amount > invoice["Balance"]:
                    raise fault(400, "6000", _BUSINESS, f"Business Validation Error: the payment of {amount} "
                                f"exceeds the balance {invoice['Balance']} of invoice {invoice['Id']}",
                                element="Line.Amount")
                applied.append((invoice, amount))
            lines.append({"Amount": amount, "LinkedTxn": [
                {"TxnId": str(link["TxnId"]), "TxnType": "Invoice"} for link in links]})
        spent = sum((amount for _, amount in applied), Decimal("0"))
        if spent > total:
            raise fault(400, "6000", _BUSINESS, f"Business Validation Error: lines apply {spent}, more than "
                        f"the payment's TotalAmt {total}", element="TotalAmt")
        row = {k: v for k, v in body.items() if v not in (None, "", [], {}) and k not in ("Line", "TotalAmt")}
        row.update({"TotalAmt": total, "UnappliedAmt": total - spent, "Line": lines,
                    "TxnDate": body.get("TxnDate") or datetime.now(UTC).date().isoformat(),
                    "CurrencyRef": {"value": currency}, "ExchangeRate": rate, "ProcessPayment": False})
        stored = books.store("Payment", row)
        for invoice, amount in applied:
            live = books.entities["Invoice"][invoice["Id"]]
            live["Balance"] = live["Balance"] - amount
            live["LinkedTxn"] = [*live.get("LinkedTxn", []), {"TxnId": stored["Id"], "TxnType": "Payment"}]
            books.touch(live)
        return copy.deepcopy(stored)
