"""HubSpot webhook signatures (v3): the sandbox signs what the connector verifies;
missing, wrong, stale and replayed signatures are refused."""

from __future__ import annotations

import json

import pytest

from pouracquit.common.errors import WebhookRejected
from pouracquit.connectors.base import WebhookRequest
from pouracquit.connectors.hubspot.webhook import WebhookVerifier, invoice_ids, sign
from pouracquit.sandbox.hubspot.webhooks import WebhookSender

URL = "https://pouracquit.example.com/webhooks/hubspot"
BODY = json.dumps([{"objectId": 42, "objectTypeId": "0-53", "subscriptionType": "object.propertyChange"}]).encode()
NOW = 1_780_000_000.0


def request(signature: str | None, stamp: int, body: bytes = BODY) -> WebhookRequest:
    headers = {"x-hubspot-request-timestamp": str(stamp)}
    if signature is not None:
        headers["x-hubspot-signature-v3"] = signature
    return WebhookRequest(method="POST", url=URL, headers=headers, body=body)


def verifier() -> WebhookVerifier:
    return WebhookVerifier("app-secret", clock=lambda: NOW)


def test_a_valid_signature_passes_once() -> None:
    stamp = int(NOW * 1000)
    v = verifier()
    v.verify(request(sign("app-secret", "POST", URL, BODY, stamp), stamp))
    with pytest.raises(WebhookRejected, match="replayed"):
        v.verify(request(sign("app-secret", "POST", URL, BODY, stamp), stamp))


@pytest.mark.parametrize(
    ("signature", "offset_ms", "body", "reason"),
    [
        (None, 0, BODY, "missing"),
        ("bm9wZQ==", 0, BODY, "wrong signature"),
        ("other-secret", 0, BODY, "wrong signature"),
        ("app-secret", -301_000, BODY, "stale"),
        ("app-secret", 0, BODY + b" ", "wrong signature"),
    ],
)
def test_bad_signatures_are_refused(signature, offset_ms, body, reason) -> None:  # type: ignore[no-untyped-def]
    stamp = int(NOW * 1000) + offset_ms
    if signature in ("app-secret", "other-secret"):
        signature = sign(signature, "POST", URL, BODY, stamp)
    with pytest.raises(WebhookRejected, match=reason):
        verifier().verify(request(signature, stamp, body))


def test_the_sandbox_signs_what_the_connector_checks() -> None:
    stamp = int(NOW * 1000)
    sent = WebhookSender("app-secret", portal_id=1, app_id=2).signed_request(URL, BODY, stamp)
    headers = {k.lower(): v for k, v in sent.header_items()}
    verifier().verify(WebhookRequest(method="POST", url=URL, headers=headers, body=BODY))


def test_invoice_ids_are_read_from_the_events() -> None:
    events = [
        {"objectId": 7, "objectTypeId": "0-53", "subscriptionType": "object.propertyChange"},
        {"objectId": 7, "objectTypeId": "0-53", "subscriptionType": "object.propertyChange"},
        {"objectId": 9, "subscriptionType": "invoice.propertyChange"},
        {"objectId": 5, "objectTypeId": "0-1", "subscriptionType": "object.propertyChange"},
        "junk",
    ]
    assert invoice_ids(json.dumps(events).encode()) == ["7", "9"]
    with pytest.raises(WebhookRejected):
        invoice_ids(b"not json")
