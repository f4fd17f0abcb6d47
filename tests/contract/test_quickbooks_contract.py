"""QuickBooks Online passes the ledger contract."""

from contract_suite import LedgerContract

from pouracquit.sandbox.quickbooks import QuickBooksSandbox


class QuickBooksHarness:
    vendor = "quickbooks"
    record_write = r"/salesreceipt$"
    attach_write = r"/upload$"
    write_method = "POST"

    def receipts(self, box: QuickBooksSandbox, number: str) -> list[str]:
        return [r["Id"] for r in box.dump_state().get("SalesReceipts", []) if r.get("DocNumber") == number]

    def attachments(self, box: QuickBooksSandbox, ref: str) -> list[str]:
        return [
            att["FileName"]
            for att in box.dump_state().get("Attachables", [])
            for link in att.get("AttachableRef", [])
            if link.get("EntityRef", {}).get("value") == ref
        ]


class TestQuickBooksLedger(LedgerContract):
    harness = QuickBooksHarness()
