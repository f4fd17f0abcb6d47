"""Body signatures of ledger webhooks: base64(HMAC-SHA256(key, raw body)),
as QuickBooks (``intuit-signature``) and Xero (``x-xero-signature``) send them."""

from __future__ import annotations

import base64
import hashlib
import hmac

from pouracquit.common.errors import ConfigError, WebhookRejected
from pouracquit.common.secrets import SecretRef

from .base import WebhookRequest


def body_signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def verify_body(request: WebhookRequest, header: str, key: SecretRef | None, setting: str) -> None:
    """Raise WebhookRejected unless ``header`` carries the body's signature under ``key``."""
    if key is None:
        raise WebhookRejected(f"set {setting} to accept these webhooks")
    try:  # a blank key is refused here: an HMAC under it is a signature anyone can make
        secret = key.value().get_secret_value()
    except ConfigError as exc:
        raise WebhookRejected(f"{setting}: {exc}") from None
    given = request.headers.get(header, "")
    expected = body_signature(secret, request.body)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRejected(f"missing or wrong {header}")
