"""The durable state: typed rows, never dicts with magic keys.

``receipt`` is the outbox: one row per (connection, source invoice, payment
version), created in the same transaction as the snapshot that revealed the
payment and the cursor that moved past it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import ExactDecimal, UTCDateTime, utcnow

# the one company of a single-company deployment; a fleet names each client company
DEFAULT_TENANT = "default"
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def _time(nullable: bool = True) -> object:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class Tenanted(SQLModel):
    """A row of one tenant. Sessions of a tenant's store see and write only its rows
    (state/tenancy.py); the column leads every key, so two companies may both call a
    connection "main" or share a CRM record id."""

    tenant: str = Field(default=DEFAULT_TENANT, primary_key=True, max_length=63)


class TenantOwned(Tenanted):
    """A tenant's row keyed by a random id of its own: the tenant is indexed, not keyed."""

    tenant: str = Field(default=DEFAULT_TENANT, index=True, max_length=63)


class ConnectionState(Tenanted, table=True):
    __tablename__ = "connection_state"

    name: str = Field(primary_key=True, max_length=100)
    cursor: str | None = Field(default=None, sa_column=Column(Text))
    last_run_at: datetime | None = _time()
    last_success_at: datetime | None = _time()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_duration_s: float | None = None
    runs: int = 0
    # invoices paid before this day get no receipt unless backfilled; set on the first sync
    # when the config names none, so a first run never books a company's whole history
    start_date: date | None = None


class Snapshot(Tenanted, table=True):
    """What the last sync saw of one CRM invoice; the diff's left-hand side."""

    __tablename__ = "invoice_snapshot"

    connection: str = Field(primary_key=True, max_length=100)
    source_id: str = Field(primary_key=True, max_length=200)
    status: str = Field(max_length=20)
    amount_paid: Decimal = Field(sa_type=ExactDecimal)
    gross_total: Decimal = Field(sa_type=ExactDecimal)
    currency: str = Field(max_length=3)
    fingerprint: str = Field(max_length=64)
    paid_version: int = 0
    # credit notes issued against the current receipt: their count and total (TTC)
    credit_version: int = 0
    credited: Decimal = Field(default=Decimal("0"), sa_type=ExactDecimal)
    modified_at: datetime = Field(sa_type=UTCDateTime)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Receipt(TenantOwned, table=True):
    """One facture acquittée (or facture d'avoir) to produce, and how far it got.

    ``kind`` is "receipt" or "credit_note"; each has its own version sequence
    per invoice. A credit note names the receipt it credits
    (``original_receipt_id``); ``credits_json`` is the CreditReference it
    prints, fixed when it is numbered.
    """

    __tablename__ = "receipt"
    __table_args__ = (UniqueConstraint("tenant", "connection", "source_id", "kind", "payment_version",
                                       name="receipt_tenant_source_kind_version_key"),)

    id: str = Field(primary_key=True, max_length=32)
    connection: str = Field(index=True, max_length=100)
    source_id: str = Field(max_length=200)
    kind: str = Field(default="receipt", max_length=20)
    payment_version: int
    original_receipt_id: str | None = Field(default=None, max_length=32)
    # False for a backfilled document the user asked not to book (`backfill --no-ledger`)
    book: bool = True
    credits_json: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(default="pending", index=True, max_length=20)
    step: str = Field(default="number", max_length=20)
    intent: str | None = Field(default=None, max_length=20)
    invoice_json: str = Field(sa_column=Column(Text, nullable=False))
    amount: Decimal = Field(sa_type=ExactDecimal)
    currency: str = Field(max_length=3)
    customer: str = Field(sa_column=Column(Text, nullable=False))
    number: str | None = Field(default=None, max_length=60)
    staged_path: str | None = Field(default=None, sa_column=Column(Text))
    document_sha256: str | None = Field(default=None, max_length=64)
    document_name: str | None = Field(default=None, sa_column=Column(Text))
    ledger_id: str | None = Field(default=None, max_length=100)
    ledger_attachment_id: str | None = Field(default=None, max_length=100)
    crm_attachment_id: str | None = Field(default=None, max_length=100)
    attempts: int = 0
    next_attempt_at: datetime | None = _time()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    lease_owner: str | None = Field(default=None, max_length=100)  # host (up to 64) : pid : random
    lease_until: datetime | None = _time()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: datetime | None = _time()
    # the e-mail to the buyer (core/delivery): sent, rejected (server's answer in email_error)
    # or skipped (the reason in email_error); None while the receipt has not reached that step
    email_status: str | None = Field(default=None, index=True, max_length=20)
    email_to: str | None = Field(default=None, sa_column=Column(Text))
    email_message_id: str | None = Field(default=None, max_length=255)
    email_sent_at: datetime | None = _time()
    email_error: str | None = Field(default=None, sa_column=Column(Text))
    email_log_id: str | None = Field(default=None, max_length=100)  # the e-mail's record on the CRM


class Quarantine(Tenanted, table=True):
    """A CRM record the mapping refused, with the reason; cleared when it maps."""

    __tablename__ = "quarantine"

    connection: str = Field(primary_key=True, max_length=100)
    source_id: str = Field(primary_key=True, max_length=200)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Event(Tenanted, table=True):
    """Append-only audit trail; each row carries the previous row's hash."""

    __tablename__ = "event_log"
    # each tenant's trail is its own chain, verified on its own
    __table_args__ = (UniqueConstraint("tenant", "prev_hash", name="event_log_tenant_prev_hash_key"),
                      UniqueConstraint("tenant", "hash", name="event_log_tenant_hash_key"))

    seq: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    connection: str = Field(index=True, max_length=100)
    receipt_id: str | None = Field(default=None, index=True, max_length=32)
    source_id: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=40)
    data: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Document(Tenanted, table=True):
    """An archived PDF, stored once under its SHA-256."""

    __tablename__ = "document"

    sha256: str = Field(primary_key=True, max_length=64)
    receipt_id: str = Field(index=True, max_length=32)
    path: str = Field(sa_column=Column(Text, nullable=False))
    size: int
    archived_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NumberSeries(Tenanted, table=True):
    """Gapless invoice numbering: the last number handed out per series."""

    __tablename__ = "number_series"

    series: str = Field(primary_key=True, max_length=60)
    last: int = 0


class Credential(Tenanted, table=True):
    """Rotating OAuth secrets, written before the new token is used."""

    __tablename__ = "credential"

    connection: str = Field(primary_key=True, max_length=100)
    # token names carry the connection's name (up to 100) and the vendor's
    name: str = Field(primary_key=True, max_length=200)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookSeen(Tenanted, table=True):
    """A webhook signature a connection accepted, kept until its timestamp is
    too old to pass anyway, so a replay is refused even after a restart."""

    __tablename__ = "webhook_seen"

    connection: str = Field(primary_key=True, max_length=100)
    digest: str = Field(primary_key=True, max_length=64)  # SHA-256 of the signature: fixed width
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class DunningCase(Tenanted, table=True):
    """What dunning last read of an open invoice: its due date, so a daily run asks the
    CRM again only for invoices a sync saw change since (``invoice_snapshot.seen_at``)."""

    __tablename__ = "dunning_case"

    connection: str = Field(primary_key=True, max_length=100)
    source_id: str = Field(primary_key=True, max_length=200)
    due_date: date | None = None
    checked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DunningReminder(TenantOwned, table=True):
    """One step of the dunning ladder for one invoice. The row (its intent) is committed
    before the e-mail goes out and the key is unique: a step is never sent twice."""

    __tablename__ = "dunning_reminder"
    __table_args__ = (UniqueConstraint("tenant", "connection", "source_id", "step",
                                       name="dunning_reminder_tenant_source_step_key"),)

    id: str = Field(primary_key=True, max_length=32)
    connection: str = Field(index=True, max_length=100)
    source_id: str = Field(max_length=200)
    step: int
    template: str = Field(max_length=40)
    # sending | sent | retry (a transient SMTP error: sent again) | failed (5xx) | unknown (a kill mid-send)
    status: str = Field(index=True, max_length=20)
    recipient: str | None = Field(default=None, sa_column=Column(Text))
    amount_due: Decimal = Field(sa_type=ExactDecimal)
    currency: str = Field(max_length=3)
    due_date: date
    message_id: str | None = Field(default=None, max_length=255)
    crm_log_id: str | None = Field(default=None, max_length=100)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = _time()


class SurveyAnswer(TenantOwned, table=True):
    """The customer's answer to the one-question survey of one receipt (one at most)."""

    __tablename__ = "survey_answer"

    receipt_id: str = Field(primary_key=True, max_length=32)
    connection: str = Field(index=True, max_length=100)
    customer: str = Field(sa_column=Column(Text, nullable=False))
    score: int
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    answered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TenantRecord(SQLModel, table=True):
    """A client company of a fleet deployment and whether it is worked. Its configuration
    is its file in the tenants directory; this row outlives the file, so a disabled
    company stays disabled, and its history readable, until someone enables it again."""

    __tablename__ = "tenant_registry"

    name: str = Field(primary_key=True, max_length=63)
    enabled: bool = True
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
