"""Ledger webhooks (QuickBooks intuit-signature, Xero x-xero-signature with its
intent-to-receive check): a change made in the ledger to a booked receipt goes
into the audit trail, a deleted booking is raised in /status, and a missing or
wrong signature gets 401 and records nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request

import pytest

from pouracquit.app.admin import AdminServer
from pouracquit.app.status import connection_status
from pouracquit.core.webhooks import WebhookIntake
from pouracquit.sandbox.xero.emulator import DEMO_TENANT_ID

KEY = "ledger-webhook-signing-key"


def signed(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def quickbooks_body(rig, ledger_id: str, operation: str) -> bytes:  # type: ignore[no-untyped-def]
    realm = rig.config["connections"][0]["ledger"]["realm_id"]
    return json.dumps({"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [
        {"name": "SalesReceipt", "id": ledger_id, "operation": operation, "lastUpdated": "2026-11-29T10:00:00Z"},
        {"name": "Customer", "id": "1", "operation": "Update"}]}}]}).encode()


def xero_body(ledger_id: str) -> bytes:
    return json.dumps({"events": [{"resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{ledger_id}",
                                   "resourceId": ledger_id, "tenantId": DEMO_TENANT_ID, "eventCategory": "INVOICE",
                                   "eventType": "UPDATE", "eventDateUtc": "2026-11-29T10:00:00.000"}],
                       "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "XYZ"}).encode()


@pytest.mark.parametrize(("ledger", "header", "setting"), [
    ("quickbooks", "intuit-signature", "webhook_verifier_token"),
    ("xero", "x-xero-signature", "webhook_key"),
])
def test_ledger_webhooks(make_rig, monkeypatch, ledger: str, header: str, setting: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LEDGER_WEBHOOK_KEY", KEY)
    rig = make_rig(count=6, ledger=ledger)
    rig.launched.connection["ledger"][setting] = {"env": "LEDGER_WEBHOOK_KEY"}
    service = rig.service()
    rig.sync_until_settled(service)
    booked = service.store.receipts("demo", "done")[0]
    assert booked.ledger_id
    admin = AdminServer(service, WebhookIntake(service, {})).start()
    url = f"{admin.url}/webhooks/{ledger}"
    try:
        if ledger == "xero":  # intent to receive: an empty, signed batch is 200, a wrongly signed one 401
            empty = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                                "entropy": "S0"}).encode()
            assert post(url, empty, {header: signed(empty)}) == 200
            assert post(url, empty, {header: signed(empty, "not-the-key")}) == 401
        body = quickbooks_body(rig, booked.ledger_id, "Delete") if ledger == "quickbooks" else xero_body(
            booked.ledger_id)
        assert post(url, body, {}) == 401
        assert post(url, body, {header: signed(body, "not-the-key")}) == 401
        assert post(url, body + b" ", {header: signed(body)}) == 401
        assert service.store.events(kind="ledger_changed") == []
        assert post(url, body, {header: signed(body)}) == 200
    finally:
        admin.stop()
    (event,) = service.store.events(kind="ledger_changed")
    assert event.receipt_id == booked.id and json.loads(event.data)["ledger_id"] == booked.ledger_id
    alerts = connection_status(service)["demo"]["ledger_alerts"]
    assert [a["receipt_id"] for a in alerts] == ([booked.id] if ledger == "quickbooks" else [])
