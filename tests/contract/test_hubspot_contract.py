"""HubSpot passes the CRM source contract."""

from contract_suite import SourceContract

from pouracquit.sandbox.hubspot.emulator import HubSpotSandbox


class HubSpotHarness:
    vendor = "hubspot"
    attach_write = r"^/files/v3/files$"

    def invoice_ids(self, box: HubSpotSandbox) -> list[str]:
        return [inv["id"] for inv in box.dump_state()["invoices"]]

    def touch(self, box: HubSpotSandbox, ref: str) -> None:
        box.touch(ref)

    def attachments(self, box: HubSpotSandbox, ref: str) -> list[str]:
        state = box.dump_state()
        # HubSpot keeps the extension apart from the name; the path has both
        names = {f["id"]: f["path"].rsplit("/", 1)[-1] for f in state["files"]}
        return [
            names.get(file_id, f"missing file {file_id}")
            for note in state["notes"]
            if ref in note.get("associations", {}).get("invoices", [])
            for file_id in filter(None, (note["properties"].get("hs_attachment_ids") or "").split(";"))
        ]


class TestHubSpotSource(SourceContract):
    harness = HubSpotHarness()
