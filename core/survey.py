"""The one-question satisfaction survey sent after a receipt: signed links, answers, scores.

A link carries ``<receipt id>.<expiry>.<HMAC-SHA256>``: the admin server can check
it without storing anything when it is sent. It is single use because the
answer's row is keyed by the receipt (the second answer finds it taken), and it
expires with the expiry it signs. Knowing a link is the proof of having got the
e-mail, as the verify page's receipt id is for the document.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from pouracquit.common.errors import ConfigError
from pouracquit.common.secrets import SecretRef
from pouracquit.state.store import Store
from pouracquit.state.tables import SurveyAnswer

_TOKEN = re.compile(r"^(?P<rid>[0-9a-f]{20})\.(?P<exp>[0-9a-f]{1,12})\.(?P<mac>[A-Za-z0-9_-]{43})$")
MIN_SECRET = 32
MAX_COMMENT = 2000


class SurveySettings(BaseModel):
    """``[survey]``: one question after the receipt e-mail, answered on the admin server."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    # HMAC key signing the links, at least 32 characters (`pouracquit keygen` makes one)
    secret: SecretRef = SecretRef(env="POURACQUIT_SURVEY_KEY")
    valid_days: int = Field(default=30, ge=1, le=365)
    # the base URL customers reach the admin server at; admin.public_url when unset
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # an outside form instead: the signed token goes as its ``token`` parameter
    external_url: str | None = Field(default=None, pattern=r"^https://[^\s]+$")


class SurveyRefused(Exception):
    """A link that cannot be answered: ``kind`` is "invalid" (forged, altered, malformed),
    "expired" or "unknown" (no such receipt); the page words it in the customer's language."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"survey link {kind}")
        self.kind = kind


def secret_of(settings: SurveySettings) -> bytes:
    try:
        raw = settings.secret.value().get_secret_value()
    except ConfigError as exc:
        raise ConfigError(f"survey.secret: {exc}") from None
    if len(raw) < MIN_SECRET:
        raise ConfigError(f"survey.secret: the key in {settings.secret.describe()} is shorter than {MIN_SECRET} "
                          "characters (`pouracquit keygen` makes one)")
    return raw.encode()


def _mac(secret: bytes, receipt_id: str, expires: int) -> str:
    digest = hmac.new(secret, f"survey:v1:{receipt_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: bytes, receipt_id: str, expires: datetime) -> str:
    stamp = int(expires.timestamp())
    return f"{receipt_id}.{stamp:x}.{_mac(secret, receipt_id, stamp)}"


def verify(secret: bytes, token: str, now: datetime) -> str:
    """The receipt id a token was signed for; SurveyRefused when forged, altered or expired."""
    found = _TOKEN.match(token)
    if not found:
        raise SurveyRefused("invalid")
    rid, stamp = found.group("rid"), int(found.group("exp"), 16)
    if not hmac.compare_digest(found.group("mac"), _mac(secret, rid, stamp)):
        raise SurveyRefused("invalid")
    if now.timestamp() > stamp:
        raise SurveyRefused("expired")
    return rid


def survey_link(settings: SurveySettings, base_url: str | None, receipt_id: str, now: datetime) -> str | None:
    """The link for the receipt e-mail; None when the survey is off. ``base_url`` is the
    admin server's public address (admin.public_url) when survey.public_url is unset."""
    if not settings.enabled:
        return None
    token = sign(secret_of(settings), receipt_id, now + timedelta(days=settings.valid_days))
    if settings.external_url:
        joiner = "&" if "?" in settings.external_url else "?"
        return f"{settings.external_url}{joiner}{urlencode({'token': token})}"
    base = settings.public_url or base_url
    if not base:
        raise ConfigError("survey.public_url: set it (or admin.public_url) to the address customers reach "
                          "the admin server at")
    return f"{base.rstrip('/')}/survey/{token}"


def survey_links(settings: SurveySettings, base_url: str | None) -> Callable[[str], str] | None:
    """What the receipt e-mail calls for its survey link (None when the survey is off);
    a bad secret or a missing public URL is a ConfigError now, not at the first e-mail."""
    if not settings.enabled:
        return None
    survey_link(settings, base_url, "0" * 20, datetime.now(UTC))

    def link(receipt_id: str) -> str:
        return survey_link(settings, base_url, receipt_id, datetime.now(UTC)) or ""

    return link


def answered(store: Store, receipt_id: str) -> bool:
    with store.session() as session:
        return session.get(SurveyAnswer, receipt_id) is not None


def record_answer(store: Store, receipt_id: str, score: int, comment: str, now: datetime) -> bool:
    """Store the answer; False when this receipt's survey was answered already (single use)."""
    if not 1 <= score <= 5:
        raise ValueError(f"score must be 1 to 5, got {score}")
    receipt = store.receipt(receipt_id)
    if receipt is None or receipt.id != receipt_id:
        raise SurveyRefused("unknown")
    try:
        with store.unit() as u:
            if u.session.get(SurveyAnswer, receipt_id) is not None:
                return False
            u.session.add(SurveyAnswer(receipt_id=receipt_id, connection=receipt.connection,
                                       customer=receipt.customer, score=score,
                                       comment=comment.strip()[:MAX_COMMENT], answered_at=now))
            u.log(receipt.connection, "survey_answered", receipt_id=receipt_id, score=score)
    except IntegrityError:  # a second submit racing the first
        return False
    return True


@dataclass(frozen=True)
class Score:
    """A customer's answers: how many, and their average (two decimals)."""

    customer: str
    answers: int
    average: Decimal


def _average(total: int, count: int) -> Decimal:
    return (Decimal(total) / Decimal(count)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def survey_scores(store: Store, connection: str | None = None, since: datetime | None = None) -> list[Score]:
    """Per customer (as the receipts name them): answers and average score, best first."""
    with store.session() as session:
        query = select(SurveyAnswer.customer, func.count(), func.sum(SurveyAnswer.score)).group_by(  # type: ignore[call-overload]
            SurveyAnswer.customer)
        if connection:
            query = query.where(SurveyAnswer.connection == connection)
        if since:
            query = query.where(col(SurveyAnswer.answered_at) >= since)
        rows = [Score(customer, int(n), _average(int(total), int(n))) for customer, n, total in session.exec(query)]
    return sorted(rows, key=lambda s: (-s.average, s.customer))


def survey_counts(store: Store) -> dict[str, dict[str, object]]:
    """Per connection, for /status: answers received and their average score."""
    with store.session() as session:
        rows = session.exec(select(SurveyAnswer.connection, func.count(), func.sum(SurveyAnswer.score))  # type: ignore[call-overload]
                            .group_by(SurveyAnswer.connection))
        return {c: {"answers": int(n), "average": str(_average(int(t), int(n)))} for c, n, t in rows}
