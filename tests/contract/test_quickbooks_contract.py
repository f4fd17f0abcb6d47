"""QuickBooks Online passes the ledger contract."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from contract_match import LedgerMatchContract
from contract_suite import LedgerContract

from pouracquit.connectors.quickbooks.docs import decode, encode
from pouracquit.sandbox.quickbooks.emulator import QuickBooksSandbox


def _rows(box: QuickBooksSandbox, entity: str) -> list[dict[str, Any]]:
    return list(box.dump_state().get(f"{entity}s", []))


class QuickBooksHarness:
    vendor = "quickbooks"
    record_write = r"/salesreceipt$"
    attach_write = r"/upload$"
    write_method = "POST"
    credit_write = r"/refundreceipt$"
    payment_mode: ClassVar[dict[str, str]] = {"mode": "invoice_payment"}
    payment_write = r"/payment$"

    def receipts(self, box: QuickBooksSandbox, number: str) -> list[str]:
        return [encode(kind, r["Id"]) for kind in ("SalesReceipt", "Invoice")
                for r in _rows(box, kind) if r.get("DocNumber") == number]

    def credit_notes(self, box: QuickBooksSandbox, number: str) -> list[str]:
        return [encode(kind, r["Id"]) for kind in ("RefundReceipt", "CreditMemo")
                for r in _rows(box, kind) if r.get("DocNumber") == number]

    def attachments(self, box: QuickBooksSandbox, ref: str) -> list[str]:
        kind, entity_id = decode(ref)
        return [
            att["FileName"]
            for att in _rows(box, "Attachable")
            for link in att.get("AttachableRef", [])
            if link.get("EntityRef", {}).get("value") == entity_id and link["EntityRef"].get("type") == kind
        ]

    def booked(self, box: QuickBooksSandbox, ref: str) -> dict[str, Any]:
        kind, entity_id = decode(ref)
        row = next(r for r in _rows(box, kind) if r["Id"] == entity_id)
        # QuickBooks' ExchangeRate is already home currency (EUR) per unit of the document's.
        return {"currency": row["CurrencyRef"]["value"], "rate": Decimal(str(row["ExchangeRate"])),
                "total": Decimal(str(row["TotalAmt"])).quantize(Decimal("0.01"))}

    def payments(self, box: QuickBooksSandbox, ref: str) -> list[tuple[date, Decimal]]:
        _, invoice_id = decode(ref)
        applied = [
            (date.fromisoformat(p["TxnDate"]), Decimal(str(line["Amount"])).quantize(Decimal("0.01")))
            for p in _rows(box, "Payment") for line in p["Line"]
            if any(link["TxnId"] == invoice_id and link["TxnType"] == "Invoice" for link in line["LinkedTxn"])
        ]
        return sorted(applied)


class TestQuickBooksLedger(LedgerContract, LedgerMatchContract):
    harness = QuickBooksHarness()
