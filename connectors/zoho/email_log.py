"""The sent e-mail logged on the Zoho invoice as a Note (``EmailLog``).

``POST /crm/v8/{module}/{record_id}/Notes`` with ``{"data": [{"Note_Title",
"Note_Content"}]}`` (https://www.zoho.com/crm/developer/docs/api/v7/create-notes.html;
scope ZohoCRM.modules.notes.CREATE or ALL); each note answers on its own with
``status`` "success" and ``details.id``.

Exactly once: the note's content ends with ``[pouracquit:<key>]``; with
``may_exist`` the record's notes are listed (``GET .../Notes``) and one carrying
the key is returned instead of writing a second one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import TYPE_CHECKING, Any

from pouracquit.common.errors import PermanentError
from pouracquit.connectors.base import SentEmail

if TYPE_CHECKING:
    from .source import ZohoSource


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


def log_email(self: ZohoSource, ref: str, email: SentEmail, *, may_exist: bool) -> str:
    """Add a note on invoice ``ref``; with ``may_exist`` return the one an earlier attempt added."""
    if may_exist:
        found = next((n for n in _notes(self, ref) if marker(email.key) in str(n.get("Note_Content") or "")), None)
        if found is not None:
            return str(found["id"])
    content = (f"E-mail envoyé à {email.to} le {email.sent_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC\n"
               f"Pièce jointe : {email.attachment}\nMessage-ID : {email.message_id}\n\n{email.text}\n\n"
               f"{marker(email.key)}")
    answer = self._send("notes.create", "POST", f"/crm/v8/{self.settings.module}/{ref}/Notes",
                        json={"data": [{"Note_Title": email.subject, "Note_Content": content}]},
                        replay_safe=False)  # no idempotency key: a lost answer is found by its marker on replay
    item = (answer or {}).get("data", [{}])[0]
    if item.get("status") != "success":
        raise PermanentError(f"Zoho refused the note: {item.get('code')}: {item.get('message')}")
    return str(item["details"]["id"])
