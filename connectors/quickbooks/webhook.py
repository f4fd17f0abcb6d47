"""QuickBooks Online webhooks: the changes to one company's documents of the
kinds pouracquit books.

Intuit moved its webhooks to CloudEvents (https://blogs.intuit.com/2025/11/12/upcoming-change-to-webhooks-payload-structure/):
the body is a JSON array of events, each with ``specversion``, ``id``, ``source``,
``type`` (``qbo.<entity>.<operation>.v1``, e.g. ``qbo.salesreceipt.updated.v1``),
``time``, ``intuitentityid`` (the record's Id), ``intuitaccountid`` (the realmId)
and ``data`` (field names as in Intuit's SDKs: intuit/QuickBooks-V3-DotNET-SDK
``Intuit.Ipp.WebhooksService.WebhooksCloudEvent``, whose release V14.7.0.4 reads
both formats). The older ``{"eventNotifications": [{"realmId", "dataChangeEvent":
{"entities": [{"name", "id", "operation"}]}}]}`` envelope is still read, for
replays of deliveries stored before the switch. Either way the raw body is
signed in ``intuit-signature`` (base64 HMAC-SHA256 with the app's verifier token):
Intuit's CloudEvents sample (IntuitDeveloper/SampleApp-Webhooks-Java-Cloudevents,
``WebhooksController.java`` and ``CloudEventsWebhookParser.java``) checks that header
with the SDK's ``WebhooksService.verifyPayload`` over the raw array.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from pouracquit.common.errors import WebhookRejected
from pouracquit.common.secrets import SecretRef
from pouracquit.connectors.base import LedgerChange, WebhookRequest
from pouracquit.connectors.signatures import verify_body

# CloudEvents operation words -> the legacy operation names LedgerChange carries
# (Intuit's entity table: Create, Update, Delete, Merge, Void, Emailed).
_OPERATIONS = {"created": "Create", "updated": "Update", "deleted": "Delete", "merged": "Merge",
               "voided": "Void", "emailed": "Emailed"}
_DESTRUCTIVE = frozenset({"Delete", "Void"})
_TYPE = re.compile(r"^qbo\.(?P<entity>[a-z]+)\.(?P<operation>[a-z]+)\.v\d+$")


def ledger_changes(request: WebhookRequest, verifier_token: SecretRef | None, realm_id: str,
                   kinds: Iterable[str], ref: Callable[[Any, str], str]) -> list[LedgerChange]:
    """Verify ``intuit-signature`` (WebhookRejected otherwise) and list the
    documents of ``realm_id`` whose entity is one of ``kinds`` (Intuit's names:
    ``SalesReceipt``...) the body names, CloudEvents or legacy; ``ref(kind, id)``
    is the ledger id the pipeline stored for the document."""
    verify_body(request, "intuit-signature", verifier_token, "webhook_verifier_token")
    try:
        body = json.loads(request.body)
    except ValueError:
        raise WebhookRejected("webhook body is not JSON") from None
    wanted = {kind.lower(): kind for kind in kinds}  # CloudEvents spell the entity in lower case
    if isinstance(body, list):
        found = _cloud_events(body, realm_id, wanted)
    elif isinstance(body, dict) and "eventNotifications" in body:
        found = _legacy(body, realm_id, wanted)
    else:
        raise WebhookRejected("webhook body is neither a CloudEvents array nor an eventNotifications document")
    return [LedgerChange(ref=ref(kind, entity_id), operation=operation, destructive=operation in _DESTRUCTIVE)
            for kind, entity_id, operation in found]


def _cloud_events(events: list[Any], realm_id: str, wanted: dict[str, str]) -> list[tuple[str, str, str]]:
    found = []
    for event in events:
        if not isinstance(event, dict) or str(event.get("intuitaccountid")) != realm_id:
            continue
        kind = _TYPE.match(str(event.get("type", "")))
        if kind is None or kind["entity"] not in wanted or not event.get("intuitentityid"):
            continue
        operation = _OPERATIONS.get(kind["operation"], kind["operation"].capitalize())
        found.append((wanted[kind["entity"]], str(event["intuitentityid"]), operation))
    return found


def _legacy(body: dict[str, Any], realm_id: str, wanted: dict[str, str]) -> list[tuple[str, str, str]]:
    notes = body.get("eventNotifications") or []
    return [
        (str(entity["name"]), str(entity["id"]), str(entity.get("operation", "")))
        for note in notes if isinstance(note, dict) and str(note.get("realmId")) == realm_id
        for entity in (note.get("dataChangeEvent") or {}).get("entities") or []
        if isinstance(entity, dict) and entity.get("name") in wanted.values() and entity.get("id")
    ]
