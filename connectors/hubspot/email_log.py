"""The sent e-mail logged on the HubSpot invoice as a note (``EmailLog``).

A note rather than an e-mail engagement: the source already holds the note
scopes (crm.objects.contacts.write) and the note -> invoice association type,
while an e-mail engagement would need ``sales-email-read`` and one more
unpublished association id (email -> invoice). The note is created with its
associations in one call (``POST /crm/v3/objects/notes``; hubspot-api-client 12
``crm.objects.basic_api.create``): invoice, and deal as for the PDF's note.

``log_emails`` creates the notes 100 per call (``POST /crm/v3/objects/notes/batch/create``,
``crm.objects.notes.batch_api.create``), as the PDFs' notes are; HubSpot answers a
batch in no set order (HubSpot/hubspot-api-nodejs#190), so results are matched by
the marker in their body.

Exactly once: the note body ends with ``[pouracquit:<key>]``. With ``may_exist``
the notes associated with the invoice are read (``POST
/crm/v4/associations/invoices/notes/batch/read``, then ``POST
/crm/v3/objects/notes/batch/read`` for their bodies) and a note carrying the key
is returned instead of writing a second one. Search is not used for this: CRM
search matches words (``CONTAINS_TOKEN``), not an exact substring.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, SimplePublicObjectInputForCreate
from hubspot.crm.objects.notes import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputForCreate,
)

from pouracquit.common.errors import PermanentError
from pouracquit.connectors.base import SentEmail

from .attach import NOTES_BATCH_MAX

if TYPE_CHECKING:
    from .source import HubSpotSource

email_log_batch_size = NOTES_BATCH_MAX  # connectors.base.BatchEmailLog
# hs_note_body holds at most 65,536 characters (https://developers.hubspot.com/docs/api-reference/crm-notes-v3/guide)
NOTE_BODY_MAX = 65_536


def marker(key: str) -> str:
    return f"[pouracquit:{key}]"


def note_body(email: SentEmail) -> str:
    head = (f"E-mail envoyé à {email.to} le {email.sent_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC\n"
            f"Objet : {email.subject}\nPièce jointe : {email.attachment}\nMessage-ID : {email.message_id}\n\n")
    tail = f"\n\n{marker(email.key)}"
    return head + email.text[:NOTE_BODY_MAX - len(head) - len(tail)] + tail


def _find(source: HubSpotSource, ref: str, key: str) -> str | None:
    objects, timeout = source._objects, source.settings.timeout
    links = BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": ref}])
    answer = source._call("associations.note", lambda c: c.crm.associations.v4.batch_api.get_page(
        objects["invoice"], objects["note"], links, _request_timeout=timeout))
    ids = [str(t.to_object_id) for result in answer.results or [] for t in result.to]
    for start in range(0, len(ids), 100):  # batch read takes at most 100 inputs
        body = BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids[start:start + 100]],
                                                  properties=["hs_note_body"], properties_with_history=[])
        notes = source._call("note.batch_read", lambda c, b=body: c.crm.objects.batch_api.read(
            objects["note"], b, _request_timeout=timeout))
        for note in notes.results or []:
            if marker(key) in str((note.properties or {}).get("hs_note_body") or ""):
                return str(note.id)
    return None


def _note(source: HubSpotSource, ref: str, email: SentEmail) -> dict[str, Any]:
    """The note's properties and associations: the invoice, and its deal as for the PDF's note."""
    targets = [{"to": {"id": ref}, "types": [source._writer._note_to_invoice_type()]}]
    deal = source._deal_of(ref) if source.settings.attach_to_deal else ""
    if deal:  # NOTE_TO_DEAL (214 by default, from the mapping)
        note_to_deal = int(source._mapper.m["associations"]["note_to_deal"])
        targets.append({"to": {"id": deal}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                       "associationTypeId": note_to_deal}]})
    return {"properties": {"hs_timestamp": email.sent_at.astimezone(UTC).isoformat(timespec="milliseconds"),
                           "hs_note_body": note_body(email)},
            "associations": targets}


def log_email(self: HubSpotSource, ref: str, email: SentEmail, *, may_exist: bool) -> str:
    """Log ``email`` as a note on invoice ``ref`` (and its deal); with ``may_exist``
    return the note an earlier attempt wrote, if any."""
    if may_exist and (found := _find(self, ref, email.key)) is not None:
        return found
    body = SimplePublicObjectInputForCreate(**_note(self, ref, email))
    answer = self._call("notes.create", lambda c: c.crm.objects.basic_api.create(
        self._objects["note"], body, _request_timeout=self.settings.timeout), replay_safe=False)
    return str(answer.id)


def log_emails(self: HubSpotSource, entries: Sequence[tuple[str, SentEmail]]) -> dict[str, str | PermanentError]:
    """Notes for e-mails no attempt logged yet, 100 per call; keyed by each e-mail's key.
    A 207 answer lists the notes it did not create in ``errors``: they are missing
    from the answer, and logged later one by one (with a lookup first)."""
    logged: dict[str, str | PermanentError] = {}
    for start in range(0, len(entries), NOTES_BATCH_MAX):
        chunk = entries[start:start + NOTES_BATCH_MAX]
        inputs = [SimplePublicObjectBatchInputForCreate(**_note(self, ref, email), object_write_trace_id=email.key)
                  for ref, email in chunk]
        body = BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
        answer = self._call("notes.batch_create", lambda c, b=body: c.crm.objects.notes.batch_api.create(
            b, _request_timeout=self.settings.timeout), replay_safe=False)
        for result in answer.results or []:
            text = str((result.properties or {}).get("hs_note_body") or "")
            key = next((email.key for _, email in chunk if marker(email.key) in text), None)
            if key is not None:
                logged[key] = str(result.id)
    return logged
