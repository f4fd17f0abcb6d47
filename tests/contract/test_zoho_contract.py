"""Zoho CRM passes the CRM source contract."""

from contract_suite import SourceContract

from pouracquit.sandbox.zoho.emulator import ZohoSandbox


class ZohoHarness:
    vendor = "zoho"
    attach_write = r"^/crm/v8/Invoices/\d+/Attachments$"

    def invoice_ids(self, box: ZohoSandbox) -> list[str]:
        return [inv["id"] for inv in box.dump_state()["Invoices"]]

    def touch(self, box: ZohoSandbox, ref: str) -> None:
        box.touch(ref)

    def attachments(self, box: ZohoSandbox, ref: str) -> list[str]:
        return [a["File_Name"] for a in box.dump_state()["attachments"].get(ref, [])]


class TestZohoSource(SourceContract):
    harness = ZohoHarness()
