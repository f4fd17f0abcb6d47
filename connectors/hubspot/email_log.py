"""The sent e-mail logged on the HubSpot invoice as a note (``EmailLog``).

A note rather than an e-mail engagement: the source already holds the note
scopes (crm.objects.contacts.write) and the note -> invoice association type,
while an e-mail engagement would need ``sales-email-read`` and one more
unpublished association id (email -> invoice). The note is created with its
associations in one call (``POST /crm/v3/objects/notes``; hubspot-api-client 12
``crm.objects.basic_api.create``): invoice, and deal as for the PDF's note.

Exactly once: the note body ends with ``[pouracquit:<key>]``. With ``may_exist``
the notes associated with the invoice are read (``POST
/crm/v4/associations/invoices/notes/batch/read``, then ``POST
/crm/v3/objects/notes/batch/read`` for their bodies) and a note carrying the key
is returned instead of writing a second one. Search is not used for this: CRM
search matches words (``CONTAINS_TOKEN``), not an exact substring.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, SimplePublicObjectInputForCreate

from pouracquit.connectors.base import SentEmail

if TYPE_CHECKING:
    from .source import HubSpotSource

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


def log_email(self: HubSpotSource, ref: str, email: SentEmail, *, may_exist: bool) -> str:
    """Log ``email`` as a note on invoice ``ref`` (and its deal); with ``may_exist``
    return the note an earlier attempt wrote, if any."""
    if may_exist and (found := _find(self, ref, email.key)) is not None:
        return found
    targets = [{"to": {"id": ref}, "types": [self._writer._note_to_invoice_type()]}]
    deal = self._deal_of(ref) if self.settings.attach_to_deal else ""
    if deal:  # NOTE_TO_DEAL (214 by default, from the mapping) as for the PDF's note
        note_to_deal = int(self._mapper.m["associations"]["note_to_deal"])
        targets.append({"to": {"id": deal}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                       "associationTypeId": note_to_deal}]})
    body = SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": email.sent_at.astimezone(UTC).isoformat(timespec="milliseconds"),
                    "hs_note_body": note_body(email)},
        associations=targets)
    answer = self._call("notes.create", lambda c: c.crm.objects.basic_api.create(
        self._objects["note"], body, _request_timeout=self.settings.timeout), replay_safe=False)
    return str(answer.id)
