"""Xero passes the ledger contract."""

from contract_suite import LedgerContract

from pouracquit.sandbox.xero import XeroSandbox


class XeroHarness:
    vendor = "xero"
    record_write = r"/api\.xro/2\.0/Invoices$"
    attach_write = r"/Invoices/[^/]+/Attachments/[^/]+$"
    write_method = "PUT"

    def receipts(self, box: XeroSandbox, number: str) -> list[str]:
        return [i["InvoiceID"] for i in box.dump_state()["Invoices"]
                if i["InvoiceNumber"] == number]

    def attachments(self, box: XeroSandbox, ref: str) -> list[str]:
        return [a["FileName"] for i in box.dump_state()["Invoices"] if i["InvoiceID"] == ref
                for a in i["Attachments"]]


class TestXeroLedger(LedgerContract):
    harness = XeroHarness()
