"""The Xero sandbox's organisation: "Demo Company (FR)" and Xero's rules for
writing to it. No HTTP here: the server module routes requests to these
methods, which raise ``validation(...)`` as Xero answers a refused write.

Rules kept from the real service: ACCREC invoice numbers are unique, contact
names are unique among ACTIVE contacts, every line needs a known revenue
account and an ACTIVE TaxType that applies to revenue, approved invoices
need a due date, tax is computed per line (a client may override a line's
TaxAmount by at most one cent, to make per-rate totals come out right),
a payment goes to a BANK account (or one with EnablePaymentsToAccount) and
cannot exceed the amount due; an invoice paid in full becomes PAID.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .server import HttpError
from .xero_where import WhereError, compile_where

TENANT_ID = "5b1a6cb2-7a0e-4c53-9d84-3f1e2b7f0a11"
TENANT_NAME = "Demo Company (FR)"
BASE_CURRENCY = "EUR"
PAGE_SIZE = 100
ATTACHMENTS_PER_DOCUMENT = 10
CENT = Decimal("0.01")

# (Name, TaxType, rate %, applies to revenue): collected VAT, deductible VAT, exemptions.
TAX_RATES: tuple[tuple[str, str, str, bool], ...] = (
    ("TVA collectée 20 %", "OUTPUT", "20", True),
    ("TVA collectée 10 %", "TAX001", "10", True),
    ("TVA collectée 5,5 %", "TAX002", "5.5", True),
    ("TVA collectée 2,1 %", "TAX003", "2.1", True),
    ("TVA déductible 20 %", "INPUT", "20", False),
    ("TVA déductible 10 %", "TAX004", "10", False),
    ("Exonéré de TVA", "EXEMPTOUTPUT", "0", True),
    ("Autoliquidation", "TAX005", "0", True),
    ("Hors champ de la TVA", "NONE", "0", True),
)
# (Code, Name, Type, Class)
ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    ("512000", "Banque", "BANK", "ASSET"),
    ("411000", "Clients", "CURRENT", "ASSET"),
    ("706000", "Prestations de services", "REVENUE", "REVENUE"),
    ("707000", "Ventes de marchandises", "SALES", "REVENUE"),
    ("606000", "Achats non stockés", "EXPENSE", "EXPENSE"),
)
CONTACTS: tuple[tuple[str, str], ...] = (
    ("Boulangerie Martin", "compta@boulangerie-martin.fr"),
    ("Dupont & Fils SA", "factures@dupont-fils.fr"),
    ("Marie Curie", "marie.curie@example.fr"),
)


def msdate(moment: datetime | date) -> str:
    """Xero's JSON date: ``/Date(1700000000000+0000)/`` (milliseconds since the epoch, UTC)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def validation(message: str, element: dict[str, Any] | None = None, *messages: str) -> HttpError:
    """Xero's 400 ValidationException, the refused element echoed with its ValidationErrors."""
    elem = dict(element or {})
    elem["ValidationErrors"] = [{"Message": m} for m in (message, *messages)]
    return HttpError(400, {"ErrorNumber": 10, "Type": "ValidationException",
                           "Message": "A validation exception occurred", "Elements": [elem]})


def query_error(message: str) -> HttpError:
    return HttpError(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})


def not_found(message: str = "The resource you're looking for cannot be found") -> HttpError:
    return HttpError(404, {"Title": "Not Found", "Status": 404, "Detail": message})


def _dec(value: Any, name: str, element: dict[str, Any]) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise validation(f"{name} must be a number", element) from None
    if not result.is_finite():
        raise validation(f"{name} must be a number", element)
    return result


def _date(value: Any, name: str, element: dict[str, Any]) -> date:
    text = str(value or "")
    if text.startswith("/Date("):
        return datetime.fromtimestamp(int(text[6:19]) / 1000, UTC).date()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise validation(f"{name} is not a valid date", element) from None


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class Books:
    """One organisation. Not thread-safe: the server holds its lock around calls."""

    def __init__(self) -> None:
        stamp = msdate(datetime(2026, 1, 2, 8, 0, tzinfo=UTC))
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
            "HasAttachments": False, "UpdatedDateUTC": stamp, "AddToWatchlist": False,
            **({"BankAccountNumber": "FR7630006000011234567890189", "BankAccountType": "BANK",
                "CurrencyCode": BASE_CURRENCY} if kind == "BANK" else {}),
        } for code, name, kind, klass in ACCOUNTS]
        self.contacts: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
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
                    "UpdatedDateUTC": msdate(datetime.now(UTC)), "ContactGroups": [], "HasAttachments": False,
                    "HasValidationErrors": False})
        self.contacts[row["ContactID"]] = row
        return row

    def _lines(self, body: dict[str, Any], unitdp: int) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
        kind = body.get("LineAmountTypes") or "Exclusive"
        if kind not in ("Exclusive", "Inclusive", "NoTax"):
            raise validation(f"LineAmountTypes {kind} is not valid", body)
        raw = body.get("LineItems") or []
        if not raw:
            raise validation("At least one line item must be specified", body)
        lines, net, tax = [], Decimal("0"), Decimal("0")
        for item in raw:
            qty = _dec(item.get("Quantity", 1), "Quantity", body)
            unit = _dec(item.get("UnitAmount", 0), "UnitAmount", body).quantize(Decimal(1).scaleb(-unitdp),
                                                                                 rounding=ROUND_HALF_UP)
            discount = _dec(item.get("DiscountAmount", 0), "DiscountAmount", body)
            amount = _cents(qty * unit - discount)
            self.account({"Code": item.get("AccountCode")}, body, f"Account code '{item.get('AccountCode')}'")
            rate = Decimal("0")
            if kind != "NoTax":
                found = next((t for t in self.tax_rates if t["TaxType"] == item.get("TaxType")), None)
                if found is None or found["Status"] != "ACTIVE" or not found["CanApplyToRevenue"]:
                    raise validation(f"The TaxType code {item.get('TaxType')} does not exist or cannot be used "
                                     "with this type of transaction", body)
                rate = found["EffectiveRate"]
            computed = _cents(amount * rate / (100 + rate) if kind == "Inclusive" else amount * rate / 100)
            given = item.get("TaxAmount")
            line_tax = computed
            if given is not None:
                line_tax = _dec(given, "TaxAmount", body)
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
        currency = body.get("CurrencyCode") or BASE_CURRENCY
        if currency != BASE_CURRENCY:
            raise validation(f"The currency code {currency} is not enabled for this organisation", body)
        number = str(body.get("InvoiceNumber") or f"INV-{len(self.invoices) + 1:04d}")
        if kind == "ACCREC" and any(i["Type"] == "ACCREC" and i["InvoiceNumber"] == number
                                    and i["Status"] not in ("DELETED", "VOIDED") for i in self.invoices.values()):
            raise validation("Invoice # must be unique.", body)
        if status == "AUTHORISED" and not body.get("DueDate"):
            raise validation("Due Date is mandatory for approved invoices", body)
        contact = self.contact(body.get("Contact") or {}, body)
        lines, net, tax = self._lines(body, unitdp)
        issued = _date(body.get("Date") or date.today().isoformat(), "Date", body)
        due = _date(body["DueDate"], "DueDate", body) if body.get("DueDate") else None
        now = datetime.now(UTC)
        row = {
            "Type": kind, "InvoiceID": str(uuid.uuid4()), "InvoiceNumber": number,
            "Reference": str(body.get("Reference") or ""), "Contact": self.contact_ref(contact),
            "Date": msdate(issued), "DateString": f"{issued.isoformat()}T00:00:00",
            "DueDate": msdate(due) if due else None, "DueDateString": f"{due.isoformat()}T00:00:00" if due else None,
            "Status": status, "LineAmountTypes": body.get("LineAmountTypes") or "Exclusive", "LineItems": lines,
            "SubTotal": net, "TotalTax": tax, "Total": net + tax, "TotalDiscount": Decimal("0"),
            "AmountDue": net + tax, "AmountPaid": Decimal("0"), "AmountCredited": Decimal("0"),
            "CurrencyCode": currency, "CurrencyRate": Decimal("1"), "Payments": [], "Prepayments": [],
            "Overpayments": [], "CreditNotes": [], "HasAttachments": False, "IsDiscounted": False,
            "HasErrors": False, "SentToContact": False, "UpdatedDateUTC": msdate(now), "Attachments": [],
        }
        if due is None:
            del row["DueDate"], row["DueDateString"]
        self.invoices[row["InvoiceID"]] = row
        return row

    def create_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        ref = body.get("Invoice") or {}
        invoice = self.invoices.get(str(ref.get("InvoiceID") or "")) or next(
            (i for i in self.invoices.values() if ref.get("InvoiceNumber") and i["InvoiceNumber"] == ref.get(
                "InvoiceNumber")), None)
        if invoice is None:
            raise validation("Invoice could not be found", body)
        if invoice["Status"] != "AUTHORISED":
            raise validation("Payment can only be applied to an approved (AUTHORISED) invoice", body)
        account = self.account(body.get("Account"), body, "Account")
        if account["Type"] != "BANK" and not account["EnablePaymentsToAccount"]:
            raise validation("Payments can only be made to BANK accounts or accounts with payments enabled", body)
        amount = _cents(_dec(body.get("Amount"), "Amount", body))
        if amount <= 0:
            raise validation("Payment amount must be greater than zero", body)
        if amount > invoice["AmountDue"]:
            raise validation("Payment amount exceeds the amount outstanding on this document", body)
        paid_on = _date(body.get("Date") or date.today().isoformat(), "Date", body)
        payment = {
            "PaymentID": str(uuid.uuid4()), "Date": msdate(paid_on), "Amount": amount, "BankAmount": amount,
            "CurrencyRate": Decimal("1"), "Reference": str(body.get("Reference") or ""), "IsReconciled": False,
            "Status": "AUTHORISED", "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
            "UpdatedDateUTC": msdate(datetime.now(UTC)), "HasAccount": True, "HasValidationErrors": False,
            "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
        }
        invoice["AmountPaid"] += amount
        invoice["AmountDue"] -= amount
        if invoice["AmountDue"] == 0:
            invoice["Status"] = "PAID"
            invoice["FullyPaidOnDate"] = payment["Date"]
        invoice["Payments"].append({k: payment[k] for k in ("PaymentID", "Date", "Amount", "Reference",
                                                               "CurrencyRate", "HasAccount", "HasValidationErrors")})
        invoice["UpdatedDateUTC"] = payment["UpdatedDateUTC"]
        payment["Invoice"] = {k: invoice[k] for k in ("InvoiceID", "InvoiceNumber", "Type", "Status", "Total",
                                                      "AmountDue", "AmountPaid", "CurrencyCode")}
        payment["Invoice"]["Contact"] = invoice["Contact"]
        self.payments[payment["PaymentID"]] = payment
        return payment

    def create_bank_transaction(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("Type") not in ("RECEIVE", "SPEND"):
            raise validation("Type must be RECEIVE or SPEND", body)
        bank = self.account(body.get("BankAccount"), body, "Bank account")
        if bank["Type"] != "BANK":
            raise validation("BankAccount must be a bank account", body)
        contact = self.contact(body.get("Contact") or {}, body)
        lines, net, tax = self._lines(body, 2)
        when = _date(body.get("Date") or date.today().isoformat(), "Date", body)
        row = {
            "BankTransactionID": str(uuid.uuid4()), "Type": body["Type"], "Contact": self.contact_ref(contact),
            "BankAccount": {"AccountID": bank["AccountID"], "Code": bank["Code"], "Name": bank["Name"]},
            "Date": msdate(when), "Reference": str(body.get("Reference") or ""), "Status": "AUTHORISED",
            "IsReconciled": False, "LineAmountTypes": body.get("LineAmountTypes") or "Exclusive",
            "LineItems": lines, "SubTotal": net, "TotalTax": tax, "Total": net + tax,
            "CurrencyCode": body.get("CurrencyCode") or BASE_CURRENCY, "HasAttachments": False,
            "UpdatedDateUTC": msdate(datetime.now(UTC)), "Attachments": [],
        }
        self.bank_transactions[row["BankTransactionID"]] = row
        return row

    def document(self, kind: str, doc_id: str) -> dict[str, Any]:
        table = self.invoices if kind == "Invoices" else self.bank_transactions
        if doc_id not in table:
            raise not_found()
        return table[doc_id]

    def add_attachment(self, kind: str, doc_id: str, name: str, content: bytes, mime: str,
                       include_online: bool) -> dict[str, Any]:
        """A new attachment every time, even under a name already used: a client that
        retries blindly gets duplicates, as it would from an unkeyed upload."""
        doc = self.document(kind, doc_id)
        if not content:
            raise validation("The attachment is empty")
        if len(doc["Attachments"]) >= ATTACHMENTS_PER_DOCUMENT:
            raise validation(f"A document can have at most {ATTACHMENTS_PER_DOCUMENT} attachments")
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
        """``{"Contacts": [...], "Invoices": [...]}`` written through the same rules as the API."""
        for contact in spec.get("Contacts", []):
            self.create_contact(contact)
        for invoice in spec.get("Invoices", []):
            self.create_invoice(invoice)
        return {"Contacts": len(self.contacts), "Invoices": len(self.invoices)}

    def dump(self) -> dict[str, Any]:
        return copy.deepcopy({
            "Invoices": list(self.invoices.values()), "Contacts": list(self.contacts.values()),
            "Payments": list(self.payments.values()), "BankTransactions": list(self.bank_transactions.values()),
        })
