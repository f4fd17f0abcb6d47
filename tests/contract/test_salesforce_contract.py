"""Salesforce passes the CRM source contract."""

from contract_suite import SourceContract

from pouracquit.sandbox.salesforce.emulator import SalesforceSandbox


class SalesforceHarness:
    vendor = "salesforce"
    attach_write = r"^/services/data/v\d+\.\d/sobjects/ContentVersion/?$"

    def invoice_ids(self, box: SalesforceSandbox) -> list[str]:
        return [inv["Id"] for inv in box.dump_state()["Invoice__c"]]

    def touch(self, box: SalesforceSandbox, ref: str) -> None:
        box.touch(ref)

    def attachments(self, box: SalesforceSandbox, ref: str) -> list[str]:
        # what a user sees on the record: the files linked to it, by their client path
        state = box.dump_state()
        linked = {link["ContentDocumentId"] for link in state["ContentDocumentLink"] if link["LinkedEntityId"] == ref}
        return [v["PathOnClient"] for v in state["ContentVersion"] if v["ContentDocumentId"] in linked]


class TestSalesforceSource(SourceContract):
    harness = SalesforceHarness()
