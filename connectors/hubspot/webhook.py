"""HubSpot webhook verification (signature v3) and the invoice ids an event names.

v3 signature: base64(HMAC-SHA256(app client secret, method + URI + body +
timestamp)), with ``X-HubSpot-Request-Timestamp`` in epoch milliseconds;
requests older than five minutes are refused, and so is a signature seen
before (a replay) within that window. In the service the signatures seen are
kept in the state store, so a restart does not forget them.
Source: https://developers.hubspot.com/docs/api/webhooks/validating-requests
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import unquote

from pouracquit.common.errors import WebhookRejected
from pouracquit.connectors.base import ReplayGuard, WebhookRequest

WINDOW_MS = 5 * 60 * 1000
INVOICE_TYPE_ID = "0-53"  # HubSpot's objectTypeId for invoices


def sign(secret: str, method: str, url: str, body: bytes, timestamp_ms: int) -> str:
    """The v3 signature HubSpot sends for this request."""
    message = method.upper().encode() + unquote(url).encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


class MemoryReplays:
    """A ReplayGuard in memory, for a verifier used outside the service."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def first_sight(self, connection: str, signature: str, now: datetime, expires_at: datetime) -> bool:
        with self._lock:
            self._seen = {k: t for k, t in self._seen.items() if t >= now}
            if (connection, signature) in self._seen:
                return False
            self._seen[(connection, signature)] = expires_at
            return True


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class WebhookVerifier:
    """Checks signatures and has ``replays`` remember the ones it accepted, for replay refusal."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time,
                 replays: ReplayGuard | None = None, connection: str = "") -> None:
        if not secret.strip():  # an HMAC under an empty key is a signature anyone can compute
            raise WebhookRejected("the HubSpot webhook secret is empty: no signature can be trusted")
        self._secret = secret
        self._clock = clock
        self._replays = replays or MemoryReplays()
        self._connection = connection

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
        # past stamp + window the timestamp check refuses it anyway: the record can go then
        if not self._replays.first_sight(self._connection, signature, _utc(now_ms), _utc(int(stamp) + WINDOW_MS)):
            raise WebhookRejected("replayed webhook")


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
