"""QuickBooks webhooks: Intuit's CloudEvents array and the legacy eventNotifications
envelope give the same LedgerChanges, both behind the same intuit-signature check."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pouracquit.common.errors import WebhookRejected
from pouracquit.common.secrets import SecretRef
from pouracquit.connectors.base import LedgerChange, WebhookRequest
from pouracquit.connectors.quickbooks.webhook import ledger_changes
from pouracquit.connectors.signatures import body_signature

REALM = "9130350000000001"
VERIFIER = "verifier-token-for-tests"
KINDS = ("SalesReceipt", "RefundReceipt")


def changes(request: WebhookRequest, token: SecretRef | None) -> list[LedgerChange]:
    """As the QuickBooks ledger calls it: a SalesReceipt's plain Id, ``Kind:Id`` otherwise."""
    return ledger_changes(request, token, REALM, KINDS, lambda kind, i: i if kind == "SalesReceipt" else f"{kind}:{i}")


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> SecretRef:
    monkeypatch.setenv("QBO_VERIFIER", VERIFIER)
    return SecretRef(env="QBO_VERIFIER")


def signed(body: Any, key: str = VERIFIER) -> WebhookRequest:
    raw = json.dumps(body).encode()
    return WebhookRequest(method="POST", url="https://example.test/webhooks/quickbooks",
                          headers={"intuit-signature": body_signature(key, raw)}, body=raw)


def event(entity_id: str, kind: str, realm: str = REALM) -> dict[str, Any]:
    """One event as Intuit sends it (field names: Intuit's WebhooksCloudEvent)."""
    return {"specversion": "1.0", "id": f"evt-{entity_id}-{kind}", "source": "intuit.qbo", "type": kind,
            "datacontenttype": "application/json", "time": "2026-11-30T04:00:00Z",
            "intuitentityid": entity_id, "intuitaccountid": realm, "data": {}}


def test_cloud_events_name_the_sales_receipts_of_this_company(token: SecretRef) -> None:
    body = [event("41", "qbo.salesreceipt.updated.v1"), event("42", "qbo.salesreceipt.deleted.v1"),
            event("43", "qbo.salesreceipt.voided.v1"), event("44", "qbo.salesreceipt.created.v1"),
            event("45", "qbo.invoice.updated.v1"), event("46", "qbo.salesreceipt.updated.v1", realm="1"),
            event("47", "qbo.refundreceipt.created.v1")]
    assert changes(signed(body), token) == [
        LedgerChange("41", "Update", False), LedgerChange("42", "Delete", True),
        LedgerChange("43", "Void", True), LedgerChange("44", "Create", False),
        LedgerChange("RefundReceipt:47", "Create", False)]


def test_the_legacy_envelope_gives_the_same_changes(token: SecretRef) -> None:
    body = {"eventNotifications": [{"realmId": REALM, "dataChangeEvent": {"entities": [
        {"name": "SalesReceipt", "id": "41", "operation": "Update", "lastUpdated": "2026-11-30T04:00:00Z"},
        {"name": "SalesReceipt", "id": "42", "operation": "Delete", "lastUpdated": "2026-11-30T04:00:00Z"},
        {"name": "Invoice", "id": "45", "operation": "Update", "lastUpdated": "2026-11-30T04:00:00Z"}]}}]}
    assert changes(signed(body), token) == [
        LedgerChange("41", "Update", False), LedgerChange("42", "Delete", True)]


@pytest.mark.parametrize("body", [[{"type": "qbo.salesreceipt.updated.v1"}], {"eventNotifications": []}])
def test_a_wrong_signature_is_refused_in_both_formats(token: SecretRef, body: Any) -> None:
    with pytest.raises(WebhookRejected, match="intuit-signature"):
        changes(signed(body, key="another-app"), token)


@pytest.mark.parametrize("body", [{"events": []}, "text", 42])
def test_other_documents_are_refused(token: SecretRef, body: Any) -> None:
    with pytest.raises(WebhookRejected):
        changes(signed(body), token)


def test_malformed_events_are_skipped_not_fatal(token: SecretRef) -> None:
    body = ["x", {"type": "salesreceipt.updated", "intuitaccountid": REALM, "intuitentityid": "1"},
            {"type": "qbo.salesreceipt.updated.v1", "intuitaccountid": REALM},
            event("7", "qbo.salesreceipt.merged.v1")]
    assert changes(signed(body), token) == [LedgerChange("7", "Merge", False)]


def test_no_verifier_token_refuses_everything() -> None:
    with pytest.raises(WebhookRejected, match="webhook_verifier_token"):
        changes(signed([event("1", "qbo.salesreceipt.updated.v1")]), None)
