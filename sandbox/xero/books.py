"""The Xero sandbox's organisation: "Demo Company (FR)" and Xero's rules for
writing to it. No HTTP here: the server module routes requests to these
methods, which raise ``validation(...)`` as Xero answers a refused write.

Rules kept from the real service: ACCREC invoice numbers are unique, contact
names are unique among ACTIVE contacts, every line needs a known revenue
account and an ACTIVE TaxType that applies to revenue, approved invoices
need a due date, tax is computed per line (a client may override a line's
TaxAmount by at most one cent, to make per-rate totals come out right),
a document in a currency the organisation has not added is refused, a
payment goes to a BANK account (or one with EnablePaymentsToAccount) and
cannot exceed the amount due; an invoice paid in full becomes PAID. Credit
notes and their refunds are in ``credit.py``.
"""

from __future__ import annotations

import copy
import mimetypes
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pouracquit.sandbox.native_sync import SEED_KEY

from .credit import credit_note_for_payment
from .native import push
from .rules import (
    ACCOUNTS,
    ATTACHMENTS_PER_DOCUMENT,
    BASE_CURRENCY,
    CENT,
    CONTACTS,
    CURRENCY_NAMES,
    DAY_RATES,
    DEMO_CURRENCIES,
    PAGE_SIZE,
    RATE_STEP,
    TAX_RATES,
    cents,
    day,
    msdate,
    not_found,
    number,
    query_error,
    stamp,
    validation,
)
from .where import WhereError, compile_where

# Documents that take attachments, by their path segment, and the table that holds them.
ATTACHABLE = ("Invoices", "CreditNotes", "BankTransactions")
# spec#/components/schemas/Payment/properties/PaymentType: a cash refund of a sales credit
# note is an ARCREDITPAYMENT.
PAYMENT_TYPES = {("PAYMENT", True): "ACCRECPAYMENT", ("PAYMENT", False): "ACCPAYPAYMENT",
                 ("CREDIT", True): "ARCREDITPAYMENT", ("CREDIT", False): "APCREDITPAYMENT"}


class Books:
    """One organisation. Not thread-safe: the server holds its lock around calls."""

    def __init__(self, currencies: Iterable[str] = DEMO_CURRENCIES) -> None:
        created = msdate(datetime(2026, 1, 2, 8, 0, tzinfo=UTC))
        self.tax_rates = [{
            "Name": name, "TaxType": tax_type, "Status": "ACTIVE", "ReportTaxType": "OUTPUT" if revenue else "INPUT",
            "CanApplyToAssets": not revenue, "CanApplyToEquity": False, "CanApplyToExpenses": not revenue,
            "CanApplyToLiabilities": False, "CanApplyToRevenue": revenue,
            "DisplayTaxRate": Decimal(rate), "EffectiveRate": Decimal(rate),
            "TaxComponents": [{"Name": "TVA", "Rate": Decimal(rate), "IsCompound": False, "IsNonRecoverable": False}],
        } for name, tax_type, rate, revenue in TAX_RATES]
        self.accounts = [{
            "AccountID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-account-{code}")), "Code": code, "Name": name,
            "Type": kind, "Class": klass, "Status": "ACTIVE", "TaxType": "NONE" if kind == "BANK" else "OUTPUT",
            "EnablePaymentsToAccount": False, "ShowInExpenseClaims": False, "ReportingCode": "",
            "HasAttachments": False, "UpdatedDateUTC": created, "AddToWatchlist": False,
            **({"BankAccountNumber": "FR7630006000011234567890189", "BankAccountType": "BANK",
                "CurrencyCode": BASE_CURRENCY} if kind == "BANK" else {}),
        } for code, name, kind, klass in ACCOUNTS]
        codes = [BASE_CURRENCY, *(c for c in currencies if c != BASE_CURRENCY)]
        self.currencies = [{"Code": c, "Description": CURRENCY_NAMES.get(c, c)} for c in codes]
        self.contacts: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.credit_notes: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.bank_transactions: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        for name, email in CONTACTS:
            self.create_contact({"Name": name, "EmailAddress": email})

    # -- reading ------------------------------------------------------------------------
    @staticmethod
    def select(rows: list[dict[str, Any]], where: str | None) -> list[dict[str, Any]]:
        if not where:
            return rows
        try:
            predicate = compile_where(where)
        except WhereError as exc:
            raise query_error(str(exc)) from None
        return [r for r in rows if predicate(r)]

    @staticmethod
    def page(rows: list[dict[str, Any]], page: int | None, size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]],
                                                                                        dict[str, int] | None]:
        """One page (1-based) and Xero's ``pagination`` object; everything when no page is asked."""
        if page is None:
            return rows, None
        start = (max(page, 1) - 1) * size
        count = len(rows)
        return rows[start:start + size], {"page": max(page, 1), "pageSize": size,
                                          "pageCount": (count + size - 1) // size, "itemCount": count}

    def contact(self, element: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
        """The contact a document names, by ContactID or (as Xero does) by Name, created if new."""
        cid = element.get("ContactID")
        if cid:
            if cid not in self.contacts:
                raise validation("Contact cannot be found", owner)
            return self.contacts[cid]
        name = str(element.get("Name") or "").strip()
        if not name:
            raise validation("A Contact must be specified for this type of transaction", owner)
        for row in self.contacts.values():
            if row["ContactStatus"] == "ACTIVE" and row["Name"].lower() == name.lower():
                return row
        return self.create_contact({"Name": name})

    @staticmethod
    def contact_ref(row: dict[str, Any]) -> dict[str, Any]:
        return {"ContactID": row["ContactID"], "Name": row["Name"], "EmailAddress": row.get("EmailAddress", "")}

    def account(self, ref: dict[str, Any] | None, owner: dict[str, Any], what: str) -> dict[str, Any]:
        ref = ref or {}
        for row in self.accounts:
            if ref.get("AccountID") == row["AccountID"] or (ref.get("Code") and ref.get("Code") == row["Code"]):
                return row
        raise validation(f"{what} could not be found", owner)

    def currency(self, body: dict[str, Any]) -> tuple[str, Decimal]:
        """A document's currency and its CurrencyRate (units of it for one unit of the base
        currency); a currency the organisation has not added is refused as Xero does."""
        code = str(body.get("CurrencyCode") or BASE_CURRENCY)
        if code not in {c["Code"] for c in self.currencies}:
            # Xero's wording, as integrators quote it (docs/vendors.md, Xero).
            raise validation(f"Organisation is not subscribed to currency {code}", body)
        if code == BASE_CURRENCY:
            return code, Decimal("1")
        given = body.get("CurrencyRate")
        if given is None:
            return code, DAY_RATES.get(code, Decimal("1"))
        rate = number(given, "CurrencyRate", body).quantize(RATE_STEP, rounding=ROUND_HALF_UP)
        if rate <= 0:
            raise validation("CurrencyRate must be greater than zero", body)
        return code, rate

    # -- writing ------------------------------------------------------------------------
    def create_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("Name") or "").strip()
        if not name:
            raise validation("The contact name must be specified", body)
        status = body.get("ContactStatus") or "ACTIVE"
        if status == "ACTIVE" and any(
            c["ContactStatus"] == "ACTIVE" and c["Name"].lower() == name.lower() for c in self.contacts.values()
        ):
            raise validation(f"The contact name {name} is already assigned to another contact. The contact name "
                             "must be unique across all active contacts.", body)
        row = copy.deepcopy(body)
        row.update({"ContactID": str(uuid.uuid4()), "Name": name, "ContactStatus": status,
                    "EmailAddress": str(body.get("EmailAddress") or ""), "IsSupplier": False, "IsCustomer": False,
                    "Addresses": body.get("Addresses") or [], "Phones": body.get("Phones") or [],
                    "UpdatedDateUTC": stamp(), "ContactGroups": [], "HasAttachments": False,
                    "HasValidationErrors": False})
        self.contacts[row["ContactID"]] = row
        return row

    def lines(self, body: dict[str, Any], unitdp: int) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
        """Priced line items and the document's net and tax, Xero's way (tax per line)."""
        kind = body.get("LineAmountTypes") or "Exclusive"
        if kind not in ("Exclusive", "Inclusive", "NoTax"):
            raise validation(f"LineAmountTypes {kind} is not valid", body)
        raw = body.get("LineItems") or []
        if not raw:
            raise validation("At least one line item must be specified", body)
        lines, net, tax = [], Decimal("0"), Decimal("0")
        for item in raw:
            qty = number(item.get("Quantity", 1), "Quantity", body)
            unit = number(item.get("UnitAmount", 0), "UnitAmount", body).quantize(Decimal(1).scaleb(-unitdp),
                                                                                   rounding=ROUND_HALF_UP)
            discount = number(item.get("DiscountAmount", 0), "DiscountAmount", body)
            amount = cents(qty * unit - discount)
            self.account({"Code": item.get("AccountCode")}, body, f"Account code '{item.get('AccountCode')}'")
            rate = Decimal("0")
            if kind != "NoTax":
                found = next((t for t in self.tax_rates if t["TaxType"] == item.get("TaxType")), None)
                if found is None or found["Status"] != "ACTIVE" or not found["CanApplyToRevenue"]:
                    raise validation(f"The TaxType code {item.get('TaxType')} does not exist or cannot be used "
                                     "with this type of transaction", body)
                rate = found["EffectiveRate"]
            computed = cents(amount * rate / (100 + rate) if kind == "Inclusive" else amount * rate / 100)
            given = item.get("TaxAmount")
            line_tax = computed
            if given is not None:
                line_tax = number(given, "TaxAmount", body)
                if abs(line_tax - computed) > CENT:
                    raise validation(f"The TaxAmount {line_tax} differs from the calculated tax {computed} by more "
                                     "than the rounding tolerance", body)
            line_net = amount - line_tax if kind == "Inclusive" else amount
            net, tax = net + line_net, tax + line_tax
            lines.append({**item, "LineItemID": str(uuid.uuid4()), "Quantity": qty, "UnitAmount": unit,
                          "LineAmount": amount, "TaxAmount": line_tax, "Tracking": item.get("Tracking") or []})
        return lines, net, tax

    def create_invoice(self, body: dict[str, Any], unitdp: int = 2) -> dict[str, Any]:
        kind, status = body.get("Type"), body.get("Status") or "DRAFT"
        if kind not in ("ACCREC", "ACCPAY"):
            raise validation("Invoice Type must be specified", body)
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            raise validation(f"Invoice Status {status} cannot be set on a new invoice", body)
        currency, rate = self.currency(body)
        invoice_number = str(body.get("InvoiceNumber") or f"INV-{len(self.invoices) + 1:04d}")
        if kind == "ACCREC" and any(i["Type"] == "ACCREC" and i["InvoiceNumber"] == invoice_number
                                    and i["Status"] not in ("DELETED", "VOIDED") for i in self.invoices.values()):
            raise validation("Invoice # must be unique.", body)
        if status == "AUTHORISED" and not body.get("DueDate"):
            raise validation("Due Date is mandatory for approved invoices", body)
        contact = self.contact(body.get("Contact") or {}, body)
        lines, net, tax = self.lines(body, unitdp)
        issued = day(body.get("Date") or date.today().isoformat(), "Date", body)
        due = day(body["DueDate"], "DueDate", body) if body.get("DueDate") else None
        row = {
            "Type": kind, "InvoiceID": str(uuid.uuid4()), "InvoiceNumber": invoice_number,
            "Reference": str(body.get("Reference") or ""), "Contact": self.contact_ref(contact),
            "Date": msdate(issued), "DateString": f"{issued.isoformat()}T00:00:00",
            "DueDate": msdate(due) if due else None, "DueDateString": f"{due.isoformat()}T00:00:00" if due else None,
            "Status": status, "LineAmountTypes": body.get("LineAmountTypes") or "Exclusive", "LineItems": lines,
            "SubTotal": net, "TotalTax": tax, "Total": net + tax, "TotalDiscount": Decimal("0"),
            "AmountDue": net + tax, "AmountPaid": Decimal("0"), "AmountCredited": Decimal("0"),
            "CurrencyCode": currency, "CurrencyRate": rate, "Payments": [], "Prepayments": [],
            "Overpayments": [], "CreditNotes": [], "HasAttachments": False, "IsDiscounted": False,
            "HasErrors": False, "SentToContact": False, "UpdatedDateUTC": stamp(), "Attachments": [],
        }
        if due is None:
            del row["DueDate"], row["DueDateString"]
        self.invoices[row["InvoiceID"]] = row
        return row

    def create_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        """A payment of an invoice (``Invoice``) or a cash refund of a credit note (``CreditNote``),
        spec#/components/schemas/Payment; the document's balance goes down by the amount."""
        if body.get("CreditNote") or body.get("CreditNoteNumber"):
            doc, due_key, kind = credit_note_for_payment(self, body), "RemainingCredit", "CREDIT"
        else:
            ref = body.get("Invoice") or {}
            wanted = ref.get("InvoiceNumber") or body.get("InvoiceNumber")
            doc = self.invoices.get(str(ref.get("InvoiceID") or "")) or next(
                (i for i in self.invoices.values() if wanted and i["InvoiceNumber"] == wanted), None)
            if doc is None:
                raise validation("Invoice could not be found", body)
            due_key, kind = "AmountDue", "PAYMENT"
        if doc["Status"] != "AUTHORISED":
            raise validation("Payment can only be applied to an approved (AUTHORISED) document", body)
        account = self.account(body.get("Account") or ({"Code": body["Code"]} if body.get("Code") else None),
                               body, "Account")
        if account["Type"] != "BANK" and not account["EnablePaymentsToAccount"]:
            raise validation("Payments can only be made to BANK accounts or accounts with payments enabled", body)
        amount = cents(number(body.get("Amount"), "Amount", body))
        if amount <= 0:
            raise validation("Payment amount must be greater than zero", body)
        if amount > doc[due_key]:
            raise validation("Payment amount exceeds the amount outstanding on this document", body)
        _, rate = self.currency({"CurrencyCode": doc["CurrencyCode"], "CurrencyRate": body.get("CurrencyRate")})
        paid_on = day(body.get("Date") or date.today().isoformat(), "Date", body)
        receivable = doc["Type"] in ("ACCREC", "ACCRECCREDIT")
        payment = {
            "PaymentID": str(uuid.uuid4()), "Date": msdate(paid_on), "Amount": amount,
            # the bank account is in the base currency: the foreign amount converted at the payment's rate
            "BankAmount": cents(amount / rate), "CurrencyRate": rate, "Reference": str(body.get("Reference") or ""),
            "IsReconciled": False, "Status": "AUTHORISED",
            "PaymentType": PAYMENT_TYPES[(kind, receivable)],
            "UpdatedDateUTC": stamp(), "HasAccount": True, "HasValidationErrors": False,
            "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
        }
        doc[due_key] -= amount
        if kind == "PAYMENT":
            doc["AmountPaid"] += amount
        if doc[due_key] == 0:
            doc["Status"] = "PAID"
            doc["FullyPaidOnDate"] = payment["Date"]
        doc["Payments"].append({k: payment[k] for k in ("PaymentID", "Date", "Amount", "Reference",
                                                           "CurrencyRate", "HasAccount", "HasValidationErrors")})
        doc["UpdatedDateUTC"] = payment["UpdatedDateUTC"]
        if kind == "PAYMENT":
            payment["Invoice"] = {k: doc[k] for k in ("InvoiceID", "InvoiceNumber", "Type", "Status", "Total",
                                                      "AmountDue", "AmountPaid", "CurrencyCode")}
            payment["Invoice"]["Contact"] = doc["Contact"]
        else:
            payment["CreditNote"] = {k: doc[k] for k in ("CreditNoteID", "CreditNoteNumber", "Type", "Status",
                                                         "Total", "RemainingCredit", "CurrencyCode", "Contact")}
        self.payments[payment["PaymentID"]] = payment
        return payment

    def create_bank_transaction(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("Type") not in ("RECEIVE", "SPEND"):
            raise validation("Type must be RECEIVE or SPEND", body)
        bank = self.account(body.get("BankAccount"), body, "Bank account")
        if bank["Type"] != "BANK":
            raise validation("BankAccount must be a bank account", body)
        currency, rate = self.currency(body)
        if currency != bank.get("CurrencyCode", BASE_CURRENCY):
            # spec#/components/schemas/BankTransaction/properties/CurrencyRate: "Setting currency is only
            # supported on overpayments" - a bank transaction is in its account's currency.
            raise validation(f"The currency {currency} does not match the currency of the bank account", body)
        contact = self.contact(body.get("Contact") or {}, body)
        lines, net, tax = self.lines(body, 2)
        when = day(body.get("Date") or date.today().isoformat(), "Date", body)
        row = {
            "BankTransactionID": str(uuid.uuid4()), "Type": body["Type"], "Contact": self.contact_ref(contact),
            "BankAccount": {"AccountID": bank["AccountID"], "Code": bank["Code"], "Name": bank["Name"]},
            "Date": msdate(when), "Reference": str(body.get("Reference") or ""), "Status": "AUTHORISED",
            "IsReconciled": False, "LineAmountTypes": body.get("LineAmountTypes") or "Exclusive",
            "LineItems": lines, "SubTotal": net, "TotalTax": tax, "Total": net + tax,
            "CurrencyCode": currency, "CurrencyRate": rate, "HasAttachments": False,
            "UpdatedDateUTC": stamp(), "Attachments": [],
        }
        self.bank_transactions[row["BankTransactionID"]] = row
        return row

    def document(self, kind: str, doc_id: str) -> dict[str, Any]:
        """An attachable document by its path segment and id (404 as Xero answers an unknown id)."""
        table = {"Invoices": self.invoices, "CreditNotes": self.credit_notes,
                 "BankTransactions": self.bank_transactions}[kind]
        if doc_id not in table:
            raise not_found()
        return table[doc_id]

    def add_attachment(self, kind: str, doc_id: str, name: str, content: bytes, mime: str,
                       include_online: bool) -> dict[str, Any]:
        """A new attachment every time, even under a name already used: a client that
        retries blindly gets duplicates, as it would from an unkeyed upload. A body sent
        as ``application/octet-stream`` (the spec's request type) is typed by its name."""
        doc = self.document(kind, doc_id)
        if not content:
            raise validation("The attachment is empty")
        if len(doc["Attachments"]) >= ATTACHMENTS_PER_DOCUMENT:
            raise validation(f"A document can have at most {ATTACHMENTS_PER_DOCUMENT} attachments")
        if mime == "application/octet-stream":
            mime = mimetypes.guess_type(name)[0] or mime
        attachment_id = str(uuid.uuid4())
        self.files[attachment_id] = content
        row = {"AttachmentID": attachment_id, "FileName": name,
               "Url": f"https://api.xero.com/api.xro/2.0/{kind}/{doc_id}/Attachments/{name}",
               "MimeType": mime, "ContentLength": len(content), "IncludeOnline": include_online}
        doc["Attachments"].append(row)
        doc["HasAttachments"] = True
        return row

    # -- sandbox control -------------------------------------------------------------------
    def seed(self, spec: dict[str, Any]) -> dict[str, int]:
        """``{"Contacts": [...], "Invoices": [...]}`` written through the same rules as the API;
        ``"Currencies": ["EUR", ...]`` sets the currencies the organisation has added;
        ``native_sync``: invoices a CRM's own sync pushed (``native.py``)."""
        if "Currencies" in spec:
            codes = [BASE_CURRENCY, *(str(c) for c in spec["Currencies"] if c != BASE_CURRENCY)]
            self.currencies = [{"Code": c, "Description": CURRENCY_NAMES.get(c, c)} for c in codes]
        for contact in spec.get("Contacts", []):
            self.create_contact(contact)
        for invoice in spec.get("Invoices", []):
            self.create_invoice(invoice)
        for record in spec.get(SEED_KEY, []):
            push(self, record)
        return {"Contacts": len(self.contacts), "Invoices": len(self.invoices)}

    def dump(self) -> dict[str, Any]:
        return copy.deepcopy({
            "Invoices": list(self.invoices.values()), "CreditNotes": list(self.credit_notes.values()),
            "Contacts": list(self.contacts.values()), "Payments": list(self.payments.values()),
            "BankTransactions": list(self.bank_transactions.values()), "Currencies": self.currencies,
        })
