"""The Xero sandbox's Accounting API endpoints: what each route reads or
writes in the organisation (``books.py``). The server class mixes these in
and wraps each one with Xero's bearer, tenant, idempotency and envelope
handling (``XeroSandbox._api``).

Paths and answer shapes follow ``sandbox/xero/spec/xero_accounting.yaml``
(``spec#/paths/...``).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from pouracquit.sandbox.server import HttpError, Request

from .books import Books
from .credit import create_credit_note
from .rules import PAGE_SIZE, not_found, validation

# Schemas without an ``Attachments`` property (spec#/components/schemas/CreditNote,
# .../BankTransaction): their answers leave the sandbox's own list of them out.
_NO_ATTACHMENTS_FIELD = ("CreditNotes", "BankTransactions")


def public(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    if kind in _NO_ATTACHMENTS_FIELD:
        return {k: v for k, v in row.items() if k != "Attachments"}
    return row


class Endpoints:
    """Route handlers; ``books`` and ``operations`` belong to the sandbox."""

    books: Books
    operations: Counter[str]

    @staticmethod
    def _items(request: Request, key: str) -> list[dict[str, Any]]:
        """A create body: ``{"Invoices": [...]}`` or a single object, as Xero accepts both."""
        body = request.json()
        items = body.get(key) if isinstance(body, dict) and key in body else [body]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items) or not items:
            raise validation(f"The request body must hold {key}")
        return items

    @staticmethod
    def _page_arg(request: Request) -> int | None:
        text = request.arg("page")
        return int(text) if text and text.isdigit() else None

    def _create(self, key: str) -> Callable[[Request], dict[str, Any]]:
        def write(body: dict[str, Any], request: Request) -> dict[str, Any]:
            unitdp = 4 if request.arg("unitdp") == "4" else 2
            if key == "Invoices":
                return self.books.create_invoice(body, unitdp)
            if key == "CreditNotes":
                return create_credit_note(self.books, body, unitdp)
            writer = {"Contacts": self.books.create_contact, "Payments": self.books.create_payment,
                      "BankTransactions": self.books.create_bank_transaction}[key]
            return writer(body)

        def handler(request: Request) -> dict[str, Any]:
            items = self._items(request, key)
            if request.arg("summarizeErrors") == "false":
                # each element stands alone: the valid ones are saved, the others come back with their errors
                answers = []
                for item in items:
                    try:
                        answers.append({**public(key, write(item, request)), "StatusAttributeString": "OK"})
                    except HttpError as exc:
                        element = (exc.response.body.get("Elements") or [{}])[0]
                        answers.append({**item, "HasErrors": True, "StatusAttributeString": "ERROR",
                                        "ValidationErrors": element.get("ValidationErrors", [])})
                self.operations[f"create {key}"] += sum(a["StatusAttributeString"] == "OK" for a in answers)
                return {key: answers}
            # summarised: one invalid element refuses the whole request and nothing is saved
            saved = copy.deepcopy(self.books) if len(items) > 1 else None
            try:
                created = [public(key, write(item, request)) for item in items]
            except HttpError:
                if saved is not None:
                    self.books = saved
                raise
            self.operations[f"create {key}"] += len(created)
            return {key: created}

        return handler

    def _contacts(self, request: Request) -> dict[str, Any]:
        rows = list(self.books.contacts.values())
        if request.arg("includeArchived") != "true":
            rows = [r for r in rows if r["ContactStatus"] != "ARCHIVED"]
        rows = self.books.select(rows, request.arg("where"))
        if request.arg("summaryOnly") == "true":
            rows = [{k: r[k] for k in ("ContactID", "Name", "EmailAddress", "ContactStatus", "UpdatedDateUTC")}
                    for r in rows]
        page, pagination = self.books.page(rows, self._page_arg(request))
        self.operations["list Contacts"] += 1
        return {"Contacts": page, **({"pagination": pagination} if pagination else {})}

    def _invoices(self, request: Request) -> dict[str, Any]:
        rows = list(self.books.invoices.values())
        numbers = request.arg("InvoiceNumbers")
        if numbers:
            wanted = set(numbers.split(","))
            rows = [r for r in rows if r["InvoiceNumber"] in wanted]
        ids = request.arg("IDs")
        if ids:
            rows = [r for r in rows if r["InvoiceID"] in set(ids.split(","))]
        statuses = request.arg("Statuses")
        if statuses:
            rows = [r for r in rows if r["Status"] in set(statuses.split(","))]
        rows = self.books.select(rows, request.arg("where"))
        page_no = self._page_arg(request)
        if page_no is not None:  # paged lists leave the line items out, as Xero's do
            rows = [{k: v for k, v in r.items() if k not in ("LineItems", "Attachments")} for r in rows]
        page, pagination = self.books.page(rows, page_no, PAGE_SIZE)
        self.operations["list Invoices"] += 1
        return {"Invoices": page, **({"pagination": pagination} if pagination else {})}

    def _invoice(self, request: Request) -> dict[str, Any]:
        ident = request.params["id"]
        row = self.books.invoices.get(ident) or next(
            (r for r in self.books.invoices.values() if r["InvoiceNumber"] == ident), None)
        if row is None:
            raise not_found()
        self.operations["get Invoice"] += 1
        return {"Invoices": [row]}

    def _credit_notes(self, request: Request) -> dict[str, Any]:
        """spec#/paths/~1CreditNotes/get: ``page`` gives 100 a page "with line items shown"."""
        rows = self.books.select(list(self.books.credit_notes.values()), request.arg("where"))
        page, pagination = self.books.page([public("CreditNotes", r) for r in rows], self._page_arg(request))
        self.operations["list CreditNotes"] += 1
        return {"CreditNotes": page, **({"pagination": pagination} if pagination else {})}

    def _credit_note(self, request: Request) -> dict[str, Any]:
        row = self.books.credit_notes.get(request.params["id"])
        if row is None:
            raise not_found()
        self.operations["get CreditNote"] += 1
        return {"CreditNotes": [public("CreditNotes", row)]}

    def _bank_transactions(self, request: Request) -> dict[str, Any]:
        rows = self.books.select(list(self.books.bank_transactions.values()), request.arg("where"))
        page, pagination = self.books.page([public("BankTransactions", r) for r in rows], self._page_arg(request))
        self.operations["list BankTransactions"] += 1
        return {"BankTransactions": page, **({"pagination": pagination} if pagination else {})}

    def _currencies(self, request: Request) -> dict[str, Any]:
        """spec#/paths/~1Currencies/get: the organisation's currencies, its base one included.
        The API cannot add one (spec#/paths/~1Currencies/put answers "Unsupported")."""
        self.operations["list Currencies"] += 1
        return {"Currencies": self.books.select(self.books.currencies, request.arg("where"))}

    def _tax_rates(self, request: Request) -> dict[str, Any]:
        self.operations["list TaxRates"] += 1
        return {"TaxRates": self.books.select(self.books.tax_rates, request.arg("where"))}

    def _accounts(self, request: Request) -> dict[str, Any]:
        self.operations["list Accounts"] += 1
        return {"Accounts": self.books.select(self.books.accounts, request.arg("where"))}

    def _attachments(self, kind: str) -> Callable[[Request], dict[str, Any]]:
        def handler(request: Request) -> dict[str, Any]:
            doc = self.books.document(kind, request.params["id"])
            self.operations["list Attachments"] += 1
            return {"Attachments": doc["Attachments"]}

        return handler

    def _upload(self, kind: str) -> Callable[[Request], dict[str, Any]]:
        """spec#/paths/~1Invoices~1{InvoiceID}~1Attachments~1{FileName}/put (and the same for
        CreditNotes and BankTransactions): the raw bytes as ``application/octet-stream``."""

        def handler(request: Request) -> dict[str, Any]:
            name = unquote(request.params["name"])
            mime = (request.header("content-type") or "application/octet-stream").split(";")[0].strip()
            row = self.books.add_attachment(kind, request.params["id"], name, request.body, mime,
                                            request.arg("IncludeOnline") == "true")
            self.operations["upload Attachment"] += 1
            return {"Attachments": [row]}

        return handler
