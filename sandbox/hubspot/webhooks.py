"""The HubSpot sandbox's outgoing webhooks: like a HubSpot app subscribed to
invoice property changes, it POSTs v3-signed event batches to a target URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.request
from typing import Any
from urllib.error import URLError
from urllib.parse import unquote


class WebhookSender:
    """Delivers invoice change events to ``url`` on a background thread."""

    def __init__(self, secret: str, portal_id: int, app_id: int) -> None:
        self.secret, self.portal_id, self.app_id = secret, portal_id, app_id
        self.url: str | None = None
        self.delivered: list[dict[str, Any]] = []
        self._next_id = 1
        self._lock = threading.Lock()

    def signed_request(self, url: str, body: bytes, timestamp_ms: int) -> urllib.request.Request:
        message = b"POST" + unquote(url).encode() + body + str(timestamp_ms).encode()
        signature = base64.b64encode(hmac.new(self.secret.encode(), message, hashlib.sha256).digest()).decode()
        return urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310 - user-set target
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Signature-Version": "v3",
            "X-HubSpot-Request-Timestamp": str(timestamp_ms),
        })

    def invoice_changed(self, invoice_id: str, changes: dict[str, Any]) -> None:
        if not self.url or not changes:
            return
        now = int(time.time() * 1000)
        with self._lock:
            events = []
            for name, value in changes.items():
                events.append({
                    "eventId": self._next_id, "subscriptionId": 1, "portalId": self.portal_id,
                    "appId": self.app_id, "occurredAt": now, "subscriptionType": "object.propertyChange",
                    "attemptNumber": 0, "objectId": int(invoice_id), "objectTypeId": "0-53",
                    "propertyName": name, "propertyValue": str(value), "changeSource": "CRM",
                })
                self._next_id += 1
        body = json.dumps(events).encode()
        request = self.signed_request(self.url, body, now)
        threading.Thread(target=self._deliver, args=(request, events), daemon=True).start()

    def _deliver(self, request: urllib.request.Request, events: list[dict[str, Any]]) -> None:
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback target set by the user
                ok = 200 <= resp.status < 300
        except (URLError, OSError):
            ok = False
        with self._lock:
            self.delivered.append({"events": len(events), "ok": ok})
