"""The sent e-mail logged on the Zoho invoice as a Note (``EmailLog``).

``POST /crm/v8/{module}/{record_id}/Notes`` with ``{"data": [{"Note_Title",
"Note_Content"}]}`` (https://www.zoho.com/crm/developer/docs/api/v7/create-notes.html;
scope ZohoCRM.modules.notes.CREATE or ALL); each note answers on its own with
``status`` "success" and ``details.id``.

``log_emails`` writes up to 100 notes per call (``POST /crm/v8/Notes``, each naming its
record with ``Parent_Id = {"module": {"api_name": ...}, "id": ...}`` as v6+ take it; 100
per call: the v4 create-notes page). The answers carry no parent, so they are matched
to the notes by position (the SDKs read them so; not stated by Zoho: docs/vendors.md).

Exactly once: the note's content ends with ``[pouracquit:<key>]``; with
``may_exist`` the record's notes are listed (``GET .../Notes``) and one carrying
the key is returned instead of writing a second one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from pouracquit.common.errors import PermanentError
from pouracquit.connectors.base import SentEmail

if TYPE_CHECKING:
    from .source import ZohoSource


email_log_batch_size = 100  # connectors.base.BatchEmailLog: "a maximum of 100 notes per API call" (v4 page)


def marker(key: str) -> str:
    return f"[pouracquit:{key}]"


def _notes(source: ZohoSource, ref: str) -> Iterator[dict[str, Any]]:
    page = 1
    while True:
        answer = source._send("notes.list", "GET", f"/crm/v8/{source.settings.module}/{ref}/Notes",
                              params={"fields": "Note_Title,Note_Content", "page": page, "per_page": 200})
        if not answer:  # 204: no notes
            return
        yield from answer.get("data", [])
        if not answer.get("info", {}).get("more_records"):
            return
        page += 1


def _note(email: SentEmail) -> dict[str, str]:
    content = (f"E-mail envoyé à {email.to} le {email.sent_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC\n"
               f"Pièce jointe : {email.attachment}\nMessage-ID : {email.message_id}\n\n{email.text}\n\n"
               f"{marker(email.key)}")
    return {"Note_Title": email.subject, "Note_Content": content}


def log_email(self: ZohoSource, ref: str, email: SentEmail, *, may_exist: bool) -> str:
    """Add a note on invoice ``ref``; with ``may_exist`` return the one an earlier attempt added."""
    if may_exist:
        found = next((n for n in _notes(self, ref) if marker(email.key) in str(n.get("Note_Content") or "")), None)
        if found is not None:
            return str(found["id"])
    answer = self._send("notes.create", "POST", f"/crm/v8/{self.settings.module}/{ref}/Notes",
                        json={"data": [_note(email)]},
                        replay_safe=False)  # no idempotency key: a lost answer is found by its marker on replay
    item = (answer or {}).get("data", [{}])[0]
    if item.get("status") != "success":
        raise PermanentError(f"Zoho refused the note: {item.get('code')}: {item.get('message')}")
    return str(item["details"]["id"])


def log_emails(self: ZohoSource, entries: Sequence[tuple[str, SentEmail]]) -> dict[str, str | PermanentError]:
    """Notes for e-mails no attempt logged yet, 100 per call, keyed by each e-mail's key;
    a note Zoho refused is a PermanentError for that e-mail alone."""
    logged: dict[str, str | PermanentError] = {}
    for start in range(0, len(entries), email_log_batch_size):
        chunk = entries[start:start + email_log_batch_size]
        data = [{**_note(email), "Parent_Id": {"module": {"api_name": self.settings.module}, "id": ref}}
                for ref, email in chunk]
        answer = self._send("notes.create_many", "POST", "/crm/v8/Notes", json={"data": data}, replay_safe=False)
        for (_, email), item in zip(chunk, (answer or {}).get("data", []), strict=False):
            if item.get("status") == "success":
                logged[email.key] = str(item["details"]["id"])
            else:
                logged[email.key] = PermanentError(f"Zoho refused the note: {item.get('code')}: {item.get('message')}")
    return logged
