"""Xero plumbing for the ledger: settings, the one Xero error table, and an
HTTP session that carries the bearer token and ``xero-tenant-id`` on every call.

Xero rotates refresh tokens on every refresh. The new one is written to the
``TokenStore`` before the new access token is used: a crash may lose an
access token (cheap), never the only valid refresh token (a customer to
reconnect by hand). Every request, token refresh included, goes through the
ledger's ``VendorClient``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

import requests
import structlog
from pydantic import BaseModel, ConfigDict, Field

from pouracquit.common.calls import DEFAULT_STATUS_TABLE, error_for_status, parse_retry_after
from pouracquit.common.errors import (
    BadRecord,
    ConfigError,
    PermanentError,
    PouracquitError,
    RateLimited,
    RetryableError,
)
from pouracquit.common.secrets import SecretRef
from pouracquit.connectors.ledger_base import CallBudget
from pouracquit.connectors.ledger_match import MATCH_HELP, UNMATCHED_HELP, MatchExisting, Unmatched
from pouracquit.connectors.oauth import OAuthApp, stored_refresh_token
from pouracquit.connectors.registry import parse_settings

VENDOR = "xero"
TOKEN_NAME = "xero.refresh_token"  # noqa: S105 - a TokenStore key, not a secret
PRODUCTION_API = "https://api.xero.com/api.xro/2.0"
PRODUCTION_IDENTITY = "https://identity.xero.com"
PRODUCTION_AUTHORIZE = "https://login.xero.com/identity/connect/authorize"
# Granular scopes: apps created from 2026-03-02 can no longer ask for accounting.transactions, which
# they replace (Xero, "Upcoming changes to Xero accounting API scopes"; scope table at
# developer.xero.com/documentation/guides/oauth2/scopes; see docs/vendors.md, Xero). Invoices and credit
# notes need accounting.invoices, payments and refunds accounting.payments, bank transactions
# accounting.banktransactions; tax rates, accounts and currencies accounting.settings. An app created
# before then may keep the broad scope until Xero retires it: setting ``scopes``.
OAUTH_SCOPES = ("offline_access", "accounting.invoices", "accounting.payments", "accounting.banktransactions",
                "accounting.contacts", "accounting.settings", "accounting.attachments")
# Xero allows 60 calls a minute and 5 in flight per organisation ("API rate limits",
# developer.xero.com/documentation/guides/oauth2/limits); pacing at exactly 60 draws 429s when
# clocks and retries line up, so keep a margin, as the HubSpot client does.
CALL_BUDGET = CallBudget(limit=55, window=60.0, concurrency=5)
# Where Xero keeps the currencies an organisation may use (the refusal names the setting).
CURRENCY_FIX = ("in Xero add it under Settings > Currencies (Add Currency; multi-currency needs a Xero plan "
                "that includes it), then retry the receipt")
REFRESH_MARGIN = 60.0  # refresh this many (vendor) seconds before the access token expires
log = structlog.get_logger("pouracquit.xero")


class XeroSettings(BaseModel):
    """The ``[connections.<name>.ledger]`` table of a Xero connection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1)
    client_secret: SecretRef
    refresh_token: SecretRef | None = Field(default=None, description="the first refresh token (or run "
                                            "`pouracquit connect xero`); later ones live in the TokenStore")
    base_url: str = Field(default=PRODUCTION_API, pattern=r"^https?://")
    identity_url: str = Field(default=PRODUCTION_IDENTITY, pattern=r"^https?://",
                              description="base of the token endpoint (<identity_url>/connect/token)")
    tenant_id: str | None = Field(default=None, description="organisation; discovered via /connections when unset")
    mode: Literal["invoice_payment", "bank_transaction"] = "invoice_payment"
    match_existing: MatchExisting = Field(default="off", description=MATCH_HELP)
    unmatched: Unmatched = Field(default="book", description=UNMATCHED_HELP)
    sales_account: str | None = Field(default=None, description="revenue account Code (overrides the mapping)")
    bank_account: str | None = Field(default=None, description="bank account Code (overrides the mapping)")
    timeout: float = Field(default=30.0, gt=0)
    webhook_key: SecretRef | None = Field(default=None, description="the app's webhooks signing key")
    scopes: tuple[str, ...] = Field(default=OAUTH_SCOPES, min_length=1,
                              description="OAuth scopes `connect` asks for; an app created before 2026-03-02 may "
                              "list the broad accounting.transactions instead of the granular ones")

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> XeroSettings:
        """Validate, turning pydantic's complaint into a ConfigError naming the key."""
        return parse_settings(cls, raw, "xero")

    @property
    def connections_url(self) -> str:
        """``/connections`` lives at the API host's root, beside ``/api.xro/2.0``."""
        root = self.base_url.rstrip("/")
        return (root[: -len("/api.xro/2.0")] if root.endswith("/api.xro/2.0") else root) + "/connections"


class DuplicateNumber(BadRecord):
    """Xero's "Invoice # must be unique." (or the credit note's): a document already carries this number."""


# HTTP status -> what the pipeline does; a 400 is read further by ``error_from_response``.
STATUS_TABLE: Mapping[int, type[PouracquitError]] = {**DEFAULT_STATUS_TABLE, 403: ConfigError, 404: PermanentError}


def _json(response: requests.Response) -> Any:
    try:
        return response.json(parse_float=Decimal)
    except ValueError:
        return None


def error_from_response(response: requests.Response) -> PouracquitError:
    """The single translation of a Xero error answer into the pipeline's classes."""
    status, body = response.status_code, _json(response)
    if status == 400 and isinstance(body, dict) and body.get("Type") == "ValidationException":
        messages = [str(v.get("Message")) for elem in body.get("Elements") or []
                    for v in elem.get("ValidationErrors") or []] or [str(body.get("Message"))]
        text = f"xero refused the record: {'; '.join(dict.fromkeys(messages))}"[:500]
        if any("not subscribed to currency" in m for m in messages):
            return PermanentError(f"{text}: {CURRENCY_FIX}")
        numbered = any("must be unique" in m and ("Invoice" in m or "Credit Note" in m) for m in messages)
        return DuplicateNumber(text) if numbered else BadRecord(text)
    if status == 400 and isinstance(body, dict) and body.get("Type") == "QueryParseException":
        return PermanentError(f"xero could not parse a filter: {body.get('Message')}")
    if status == 401 and isinstance(body, dict) and body.get("Detail") == "AuthorizationUnsuccessful":
        # A grant without the endpoint's scope (an expired token says TokenExpired): refreshing cannot help.
        return ConfigError("xero refused the call for lack of a scope (AuthorizationUnsuccessful): run "
                           "`pouracquit connect xero` again so the organisation grants the scopes of setting scopes "
                           f"({' '.join(OAUTH_SCOPES)} by default)")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        problem = response.headers.get("X-Rate-Limit-Problem", "unknown")
        return RateLimited(f"xero rate limit reached ({problem} limit)", retry_after=retry_after)
    detail = body.get("Detail") or body.get("Message") if isinstance(body, dict) else response.text[:200]
    return error_for_status(VENDOR, status, str(detail), retry_after, STATUS_TABLE)


def classify(exc: Exception) -> PouracquitError:
    """What ``requests`` raises, as the pipeline's classes (answers are mapped before)."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return RetryableError(f"xero unreachable or no answer: {type(exc).__name__}")
    if isinstance(exc, requests.RequestException):
        return ConfigError(f"xero request impossible: {exc}")
    return PermanentError(f"xero call failed unexpectedly: {type(exc).__name__}: {exc}"[:500])


Call = Callable[..., Any]


class XeroApi:
    """Authorised JSON calls to one tenant; ``call`` is the ledger's ``VendorClient.call``."""

    def __init__(self, settings: XeroSettings, tokens: Any, call: Call, window_scale: float) -> None:
        self._settings = settings
        self._tokens = tokens
        self._call = call
        self._scale = window_scale
        self._lock = threading.RLock()
        self._access = ""
        self._expires_at = 0.0
        self._tenant = settings.tenant_id
        self.remaining: dict[str, int] = {}
        self.session = requests.Session()

    # -- OAuth ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Swap the current refresh token for a new pair; persist the rotated one first."""
        with self._lock, self._tokens.exclusive(TOKEN_NAME):  # another worker's rotation is read, not spent again
            s = self._settings
            current = stored_refresh_token(self._tokens, TOKEN_NAME, s.refresh_token, VENDOR)
            secret = s.client_secret.value().get_secret_value()
            url = s.identity_url.rstrip("/") + "/connect/token"

            def post() -> dict[str, Any]:
                response = self.session.post(url, data={"grant_type": "refresh_token", "refresh_token": current},
                                             auth=(s.client_id, secret), timeout=s.timeout)
                if response.status_code == 200:
                    return dict(response.json())
                body = _json(response)
                error = body.get("error") if isinstance(body, dict) else None
                if error == "invalid_grant":
                    raise ConfigError("xero refused the refresh token (invalid_grant): reconnect the app to the "
                                      "organisation and store the new refresh token")
                if error == "invalid_client":
                    raise ConfigError("xero refused the client credentials (invalid_client): check client_id and "
                                      "client_secret")
                raise error_from_response(response)

            pair = self._call("oauth.refresh", post)
            access, rotated = pair.get("access_token"), pair.get("refresh_token")
            if not access or not rotated:
                raise PermanentError("xero token endpoint answered without tokens")
            if rotated != current:
                self._tokens.put(TOKEN_NAME, rotated)  # durable before the new access token is used
            self._access = access
            lifetime = float(pair.get("expires_in") or 1800)
            self._expires_at = time.monotonic() + max(lifetime - REFRESH_MARGIN, lifetime / 2) * self._scale

    def _token(self) -> str:
        with self._lock:
            if not self._access or time.monotonic() >= self._expires_at:
                self.refresh()
            return self._access

    def tenant(self) -> str:
        """The configured tenant, or the only organisation the grant reaches."""
        with self._lock:
            if self._tenant is None:
                rows = self._call("connections", lambda: self._send("GET", self._settings.connections_url,
                                                                    tenant=False))
                orgs = [r for r in rows or [] if r.get("tenantType") == "ORGANISATION"]
                if len(orgs) != 1:
                    names = ", ".join(f"{r.get('tenantName')} ({r.get('tenantId')})" for r in orgs) or "none"
                    raise ConfigError(f"xero settings: tenant_id: set it, this grant reaches {len(orgs)} "
                                      f"organisations: {names}")
                self._tenant = str(orgs[0]["tenantId"])
            return self._tenant

    # -- requests ----------------------------------------------------------------------
    def _observe(self, response: requests.Response) -> None:
        for header, name in (("X-MinLimit-Remaining", "minute"), ("X-DayLimit-Remaining", "day"),
                             ("X-AppMinLimit-Remaining", "app_minute")):
            value = response.headers.get(header)
            if value is not None and value.isdigit():
                self.remaining[name] = int(value)
        if self.remaining.get("day") == 0:
            log.warning("xero daily call limit exhausted for the tenant", vendor=VENDOR)

    def _send(self, method: str, url: str, *, tenant: bool = True, **kwargs: Any) -> Any:
        if tenant and self.remaining.get("day") == 0:
            # Xero's 5,000 calls a day are gone: answering here spares a call that can only be refused.
            self.remaining.pop("day")
            raise RateLimited("xero daily call limit exhausted for this tenant (X-DayLimit-Remaining: 0)")
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json",
                   **kwargs.pop("headers", {})}
        if tenant:
            headers["xero-tenant-id"] = self.tenant()
        response = self.session.request(method, url, headers=headers, timeout=self._settings.timeout, **kwargs)
        self._observe(response)
        if response.status_code >= 400:
            raise error_from_response(response)
        return _json(response)

    def request(self, op: str, method: str, path: str, *, idempotency_key: str | None = None,
                replay_safe: bool = True, **kwargs: Any) -> Any:
        """One Accounting API call; writes carry ``idempotency_key`` (Xero replays the first answer)."""
        url = self._settings.base_url.rstrip("/") + path
        headers = dict(kwargs.pop("headers", {}))
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key[:128]
        return self._call(op, lambda: self._send(method, url, headers=headers, **kwargs), replay_safe=replay_safe)


def oauth_app(settings: XeroSettings) -> OAuthApp:
    """The app ``pouracquit connect xero`` authorises: login.xero.com's authorize page
    in production (``<identity_url>/connect/authorize`` elsewhere), the token at
    ``<identity_url>/connect/token`` with HTTP Basic; after the exchange the
    organisations the grant reaches are listed from ``/connections``."""
    identity = settings.identity_url.rstrip("/")

    def notes(params: Mapping[str, str], answer: Mapping[str, Any]) -> list[str]:
        response = requests.get(settings.connections_url, timeout=settings.timeout,
                                headers={"Authorization": f"Bearer {answer['access_token']}",
                                         "Accept": "application/json"})
        response.raise_for_status()
        orgs = [r for r in response.json() or [] if r.get("tenantType") == "ORGANISATION"]
        lines = [f"Xero organisation {r.get('tenantName')}: tenant_id {r.get('tenantId')}" for r in orgs]
        ids = {str(r.get("tenantId")) for r in orgs}
        if settings.tenant_id and settings.tenant_id not in ids:
            lines.append(f"The configured tenant_id {settings.tenant_id} is not among them: set tenant_id to one "
                         f"of the ids above.")
        elif not settings.tenant_id and len(orgs) > 1:
            lines.append("This grant reaches several organisations: set tenant_id to the one to book into.")
        return lines

    return OAuthApp(vendor=VENDOR, authorize_url=PRODUCTION_AUTHORIZE if identity == PRODUCTION_IDENTITY
                    else f"{identity}/connect/authorize", token_url=f"{identity}/connect/token",
                    client_id=settings.client_id, client_secret=settings.client_secret.value().get_secret_value(),
                    scopes=settings.scopes, token_name=TOKEN_NAME, client_auth="basic", timeout=settings.timeout,
                    notes=notes)
