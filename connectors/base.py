"""The two adapter contracts. Keep them small: every vendor implements one.

A connector never writes pouracquit state. It receives a cursor and returns
the next one; it receives an idempotency key and must make a replayed write
find the earlier result instead of writing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pouracquit.common.errors import PermanentError
from pouracquit.common.model import CreditReference, Invoice

if TYPE_CHECKING:  # the registry and the OAuth facts import this module
    from .oauth import OAuthApp
    from .registry import ConnectorContext


@dataclass(frozen=True)
class Page:
    """Invoices changed since a cursor; ``cursor`` is safe to store once they are.

    ``rejected`` holds (source id, reason) for records the mapping refused:
    the core quarantines them and the rest of the page goes on.
    """

    invoices: list[Invoice]
    cursor: str | None
    rejected: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    """A rendered receipt. ``name`` is deterministic per receipt: the marker
    an idempotent ``attach`` searches for before uploading."""

    name: str
    content: bytes
    media_type: str = "application/pdf"
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.content).hexdigest())


@dataclass(frozen=True)
class ReceiptOrder:
    """What a ledger records: the paid invoice under its final number.

    ``key`` is derived from the receipt id and identical on every replay; the
    ledger sends it as the vendor idempotency key and stores ``number`` where
    a later lookup can find it (DocNumber, Reference).

    With ``credits`` set the order is a credit note (facture d'avoir):
    ``invoice`` then holds what is credited (its lines and total, positive
    amounts; its one payment is the money returned, dated the refund) and
    ``number`` is the credit note's own number. The ledger books it as its
    refund or credit document (QuickBooks RefundReceipt, Xero credit note).
    """

    key: str
    number: str
    invoice: Invoice
    credits: CreditReference | None = None

    @property
    def is_credit_note(self) -> bool:
        return self.credits is not None


@runtime_checkable
class CrmSource(Protocol):
    """Where invoices and their payment state come from."""

    vendor: str

    def changes(self, cursor: str | None) -> Iterator[Page]:
        """Pages of invoices modified since ``cursor`` (all of them when None)."""
        ...

    def get(self, ref: str) -> Invoice:
        """The current state of one invoice by its CRM id."""
        ...

    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        """Attach ``document`` to the invoice record; returns the attachment id.

        With ``may_exist`` (an earlier attempt may have written), first look
        for an attachment named ``document.name`` and return it if found.
        """
        ...


@dataclass(frozen=True)
class SentEmail:
    """An e-mail sent to the buyer, as the CRM record logs it. ``key`` (from the
    Message-ID) goes into what is written: a replay finds its record instead of
    logging twice."""

    key: str
    message_id: str
    sender: str
    to: str
    subject: str
    text: str
    sent_at: datetime
    attachment: str = ""  # the attached document's file name


@runtime_checkable
class EmailLog(Protocol):
    """Optional source capability: log a sent e-mail on the invoice's CRM record."""

    def log_email(self, ref: str, email: SentEmail, *, may_exist: bool) -> str:
        """Log ``email`` on record ``ref``; returns the logged record's id. With
        ``may_exist``, first look for a record carrying ``email.key`` and return it."""
        ...


@runtime_checkable
class BatchEmailLog(Protocol):
    """Optional source capability: log many sent e-mails per API call.

    Offered only e-mails no earlier attempt may have logged (claimed in the
    store just before). The answer maps an e-mail's key to the logged record's
    id, or to a PermanentError for that e-mail alone; one missing from the
    answer is logged later one by one with ``may_exist``, which finds it if the
    batch did write it."""

    email_log_batch_size: int

    def log_emails(self, entries: Sequence[tuple[str, SentEmail]]) -> dict[str, str | PermanentError]: ...


@runtime_checkable
class Ledger(Protocol):
    """Where the paid receipt is booked."""

    vendor: str

    def find_receipt(self, order: ReceiptOrder) -> str | None:
        """The id of a receipt already booked for ``order``, if any."""
        ...

    def record_receipt(self, order: ReceiptOrder, *, may_exist: bool) -> str:
        """Book the receipt once; with ``may_exist`` look it up before creating."""
        ...

    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        """Attach ``document`` to the booked receipt ``ref``; idempotent by name."""
        ...


@runtime_checkable
class BatchBooking(Protocol):
    """Optional ledger capability: book many fresh receipts per API call.

    The pipeline offers it only orders no earlier attempt touched (their
    intent committed just before the call). The answer maps an order's key
    to its ledger id, or to a PermanentError for that order alone; an order
    missing from the answer goes through ``record_receipt`` one by one,
    which finds it if the batch did book it after all.
    """

    batch_size: int

    def record_receipts(self, orders: Sequence[ReceiptOrder]) -> dict[str, str | PermanentError]: ...


@dataclass(frozen=True)
class AttachOrder:
    """A document for the CRM record ``ref``. ``key`` (the receipt's idempotency key)
    goes into what is written, so a batch answer in any order is matched to its
    order; ``invoice`` is the invoice as stored, so what the record links to (its
    deal) is not read again; ``may_exist``: an earlier attempt may have written."""

    key: str
    ref: str
    document: Document
    invoice: Invoice
    may_exist: bool = False


@runtime_checkable
class BatchAttach(Protocol):
    """Optional source capability: attach many documents with fewer calls.

    The pipeline offers it orders whose intent it committed just before the
    call. The answer maps an order's key to its attachment id, or to a
    PermanentError for that order alone; an order missing from the answer goes
    on one by one with ``may_exist``, which finds what the batch did write.
    """

    attach_batch_size: int

    def attach_documents(self, orders: Sequence[AttachOrder]) -> dict[str, str | PermanentError]: ...


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as received: ``url`` is the public URL the vendor called
    (what it signed), ``headers`` have lower-case names."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@runtime_checkable
class WebhookSource(Protocol):
    """Optional source capability: verified push notifications of changes."""

    def parse_webhook(self, request: WebhookRequest) -> list[str]:
        """Verify the signature (WebhookRejected when missing, wrong, stale or
        replayed) and return the ids of the records the event names."""
        ...


@dataclass(frozen=True)
class LedgerChange:
    """A ledger record a webhook says changed; ``operation`` as the vendor names
    it (Create, Update, Delete, Void...), ``destructive`` when the booking is gone."""

    ref: str
    operation: str
    destructive: bool


@runtime_checkable
class WebhookLedger(Protocol):
    """Optional ledger capability: verified notifications of changes made in the ledger."""

    def parse_ledger_webhook(self, request: WebhookRequest) -> list[LedgerChange]:
        """Verify the signature (WebhookRejected otherwise) and list the records it names."""
        ...


@dataclass(frozen=True)
class LedgerBooking:
    """One sales document as the ledger holds it now, for reconciliation.

    ``ref`` is encoded as ``record_receipt`` returns it; ``key`` is the order key our
    marker carries ("" for a document pouracquit did not book); ``paid`` is what the
    ledger counts as received on it; ``state`` is "booked", "voided" or "deleted" (a
    vendor that drops deleted documents from its reads leaves them absent instead).
    """

    ref: str
    number: str
    key: str
    kind: str  # "receipt" or "credit_note"
    amount: Decimal
    paid: Decimal
    currency: str
    state: str = "booked"  # "booked" | "voided" | "deleted"


@runtime_checkable
class LedgerReadBack(Protocol):
    """Optional ledger capability: read the booked documents back, page by page."""

    def paid_state(self, since: date | None) -> Iterator[LedgerBooking]:
        """Every sales document dated ``since`` or later (all when None), read in the
        vendor's largest pages."""
        ...


class TokenStore(Protocol):
    """Where a connector keeps credentials that rotate (OAuth refresh tokens).

    ``put`` must be durable before it returns: a rotated refresh token that is
    lost disconnects the customer.
    """

    def get(self, name: str) -> str | None: ...

    def put(self, name: str, value: str) -> None: ...

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """Held around read-refresh-put of a rotating token: one process at a time."""
        ...


class ReplayGuard(Protocol):
    """Remembers the webhook signatures a connection accepted until they expire.

    ``first_sight`` is True exactly once per (connection, signature) while the
    record lives, and must be durable before it returns: a replay cache that a
    restart empties lets a captured webhook through again.
    """

    def first_sight(self, connection: str, signature: str, now: datetime, expires_at: datetime) -> bool: ...


@dataclass(frozen=True)
class Check:
    """One line of ``pouracquit doctor``: ``ok`` True (passed), False (failed: ``fix``
    says what a person does about it) or None (a fact shown, nothing to judge, e.g. a
    setting no vendor API can read)."""

    name: str
    ok: bool | None
    detail: str = ""
    fix: str = ""


@runtime_checkable
class Diagnosable(Protocol):
    """Optional capability of a source or ledger: check its setup against the live vendor.

    Read-only apart from the token refresh (a rotated refresh token is stored as
    in a sync); every vendor error becomes a failed Check, never an exception.
    ``public_url`` is the config's ``admin.public_url``, for the webhook check.
    """

    def diagnose(self, public_url: str | None) -> list[Check]: ...


@runtime_checkable
class OAuthConnector(Protocol):
    """Optional capability of a connector class: the OAuth app that ``pouracquit connect``
    authorises (``connectors/oauth.py``). A classmethod: the app is described from the
    settings alone, before any connector is built (and before there is a token)."""

    @classmethod
    def oauth_app(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> OAuthApp: ...
