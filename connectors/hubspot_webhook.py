"""HubSpot webhook verification (signature v3) and the invoice ids an event names.

v3 signature: base64(HMAC-SHA256(app client secret, method + URI + body +
timestamp)), with ``X-HubSpot-Request-Timestamp`` in epoch milliseconds;
requests older than five minutes are refused, and so is a signature seen
before (a replay) within that window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from urllib.parse import unquote

from pouracquit.core.errors import WebhookRejected

from .base import WebhookRequest

WINDOW_MS = 5 * 60 * 1000
INVOICE_TYPE_ID = "0-53"  # HubSpot's objectTypeId for invoices


def sign(secret: str, method: str, url: str, body: bytes, timestamp_ms: int) -> str:
    """The v3 signature HubSpot sends for this request."""
    message = method.upper().encode() + unquote(url).encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


class WebhookVerifier:
    """Checks signatures and remembers the ones it accepted, for replay refusal."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get("x-hubspot-signature-v3")
        stamp = request.headers.get("x-hubspot-request-timestamp", "")
        if not signature or not stamp.isdigit():
            raise WebhookRejected("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
        now_ms = int(self._clock() * 1000)
        if abs(now_ms - int(stamp)) > WINDOW_MS:
            raise WebhookRejected("stale webhook: its timestamp is more than 5 minutes away")
        expected = sign(self._secret, request.method, request.url, request.body, int(stamp))
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise WebhookRejected("wrong signature")
        with self._lock:
            self._seen = {s: t for s, t in self._seen.items() if now_ms - t <= WINDOW_MS}
            if signature in self._seen:
                raise WebhookRejected("replayed webhook")
            self._seen[signature] = now_ms


def invoice_ids(body: bytes) -> list[str]:
    """The invoice ids named by a batch of HubSpot webhook events."""
    try:
        events = json.loads(body)
    except ValueError:
        raise WebhookRejected("webhook body is not JSON") from None
    if isinstance(events, dict):
        events = [events]
    ids: list[str] = []
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict):
            continue
        kind = str(event.get("subscriptionType", ""))
        if (kind.startswith("invoice.") or event.get("objectTypeId") == INVOICE_TYPE_ID) and event.get("objectId"):
            ref = str(event["objectId"])
            if ref not in ids:
                ids.append(ref)
    return ids
