"""The sent e-mail logged on the Salesforce invoice as an EmailMessage (``EmailLog``).

Fields (object reference, EmailMessage:
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_emailmessage.htm):
``RelatedToId`` the invoice record (a non-human object; people are linked through
EmailMessageRelation, which we leave alone), ``Subject``, ``TextBody`` (32,000
characters), ``FromAddress``, ``ToAddress``, ``Incoming`` false, ``MessageDate``,
and ``Status = '3'``, which files it as Sent in the activity history
(trailheadapps/apex-recipes#267 and PR #265). EmailMessage needs Enhanced Email,
"automatically enabled for most customers" (same page).

``log_emails`` inserts up to 200 per call as an sObject Collection (``POST
/services/data/vXX.X/composite/sobjects``, ``allOrNone`` false; simple-salesforce has
no helper: ``sf.restful``); its SaveResults come back in the order of the records
(https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-create.html).

Exactly once: the body ends with ``[pouracquit:<key>]``. TextBody is a text area,
which SOQL cannot filter on, so with ``may_exist`` the EmailMessages related to
the invoice are read and the marker looked for in their bodies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from simple_salesforce import format_soql

from pouracquit.common.errors import PermanentError
from pouracquit.connectors.base import SentEmail

if TYPE_CHECKING:
    from .source import SalesforceSource

TEXT_BODY_MAX = 32_000  # EmailMessage.TextBody: textarea(32000), object reference above
SUBJECT_MAX = 3_000  # EmailMessage.Subject: string(3000)
email_log_batch_size = 200  # connectors.base.BatchEmailLog: "up to 200 records" per sObject Collection
STATUS_SENT = "3"  # apex-recipes#267: inserted with '3' the e-mail shows in Activity History as sent


def marker(key: str) -> str:
    return f"[pouracquit:{key}]"


def _message(ref: str, email: SentEmail) -> dict[str, Any]:
    tail = f"\n\n{marker(email.key)}"
    return {"RelatedToId": ref, "Subject": email.subject[:SUBJECT_MAX],
            "TextBody": email.text[:TEXT_BODY_MAX - len(tail)] + tail,
            "FromAddress": email.sender, "ToAddress": email.to, "Incoming": False, "Status": STATUS_SENT,
            "MessageDate": email.sent_at.astimezone(UTC).isoformat(timespec="seconds")}


def log_email(self: SalesforceSource, ref: str, email: SentEmail, *, may_exist: bool) -> str:
    """Insert an EmailMessage related to invoice ``ref``; with ``may_exist`` return the one
    an earlier attempt inserted, if any."""
    if may_exist:
        soql = format_soql("SELECT Id, TextBody FROM EmailMessage WHERE RelatedToId = {} "
                           "ORDER BY CreatedDate ASC, Id ASC", ref)
        for batch in self._query(soql, "emails.find"):
            for row in batch:
                if marker(email.key) in str(row.get("TextBody") or ""):
                    return str(row["Id"])
    body = _message(ref, email)
    answer = self._call("emails.create", lambda sf: sf.EmailMessage.create(body), replay_safe=False)
    return str(answer["id"])


def log_emails(self: SalesforceSource, entries: Sequence[tuple[str, SentEmail]]
               ) -> dict[str, str | PermanentError]:
    """EmailMessages for e-mails no attempt logged yet, 200 per call, keyed by each e-mail's
    key; a record Salesforce refused is a PermanentError for that e-mail alone."""
    logged: dict[str, str | PermanentError] = {}
    for start in range(0, len(entries), email_log_batch_size):
        chunk = entries[start:start + email_log_batch_size]
        body = {"allOrNone": False,
                "records": [{"attributes": {"type": "EmailMessage"}, **_message(ref, email)} for ref, email in chunk]}
        answer = self._call("emails.create_many", lambda sf, b=body: sf.restful(
            "composite/sobjects", method="POST", json=b), replay_safe=False)
        for (_, email), result in zip(chunk, answer or [], strict=False):
            if result.get("success"):
                logged[email.key] = str(result["id"])
            else:
                reasons = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in result.get("errors", []))
                logged[email.key] = PermanentError(f"Salesforce refused the EmailMessage: {reasons}")
    return logged
