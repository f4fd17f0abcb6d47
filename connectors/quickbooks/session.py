"""QuickBooks Online plumbing for the ledger: settings, the one QBO error
table, and the OAuth session with rotating refresh tokens.

Intuit rotates refresh tokens: a refresh answers with a new one and the old
one may stop working. The new token is written to the ``TokenStore`` before
the new access token is used, so a crash can lose an access token (cheap)
but never the only valid refresh token (a disconnected customer).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Literal

import requests
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from pydantic import BaseModel, ConfigDict, Field
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException

from pouracquit.common.calls import DEFAULT_STATUS_TABLE, error_for_status, parse_retry_after
from pouracquit.common.errors import (
    AuthExpired,
    BadRecord,
    ConfigError,
    PermanentError,
    PouracquitError,
    RateLimited,
    RetryableError,
)
from pouracquit.common.secrets import SecretRef
from pouracquit.connectors.ledger_match import MATCH_HELP, UNMATCHED_HELP, MatchExisting, Unmatched
from pouracquit.connectors.oauth import OAuthApp, stored_refresh_token
from pouracquit.connectors.registry import parse_settings

VENDOR = "quickbooks"
TOKEN_NAME = "quickbooks.refresh_token"  # noqa: S105 - a TokenStore key, not a secret
PRODUCTION_API = "https://quickbooks.api.intuit.com"
PRODUCTION_DISCOVERY = "https://developer.intuit.com/.well-known/openid_configuration/"
OAUTH_PLAYGROUND_REDIRECT = "https://developer.intuit.com/v2/OAuth2Playground/RedirectUrl"
OAUTH_SCOPES = ("com.intuit.quickbooks.accounting",)


class QuickBooksSettings(BaseModel):
    """The ``[connections.<name>.ledger]`` table of a QuickBooks connection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    realm_id: str = Field(min_length=1, description="QBO company id (realmId)")
    client_id: str = Field(min_length=1)
    client_secret: SecretRef
    refresh_token: SecretRef | None = Field(default=None, description="the first refresh token (or run "
                                            "`pouracquit connect quickbooks`); later ones live in the TokenStore")
    base_url: str = Field(default=PRODUCTION_API, pattern=r"^https?://")
    discovery_url: str = Field(default=PRODUCTION_DISCOVERY, pattern=r"^https?://")
    redirect_uri: str = OAUTH_PLAYGROUND_REDIRECT
    minor_version: int = Field(default=75, ge=75)
    timeout: float = Field(default=30.0, gt=0)
    deposit_account: str | None = None
    item: str | None = None
    tax_codes: dict[str, str] = Field(default_factory=dict, description="VAT rate -> TaxCode name")
    payment_methods: dict[str, str] = Field(default_factory=dict)
    mode: Literal["sales_receipt", "invoice_payment"] = Field(
        default="sales_receipt", description="sales_receipt: one SalesReceipt per paid invoice; invoice_payment: "
        "an Invoice plus one Payment per invoice payment, each matching its bank line")
    match_existing: MatchExisting = Field(default="off", description=MATCH_HELP)
    unmatched: Unmatched = Field(default="book", description=UNMATCHED_HELP)
    webhook_verifier_token: SecretRef | None = Field(default=None, description="the app's webhook verifier token")

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> QuickBooksSettings:
        """Validate, turning pydantic's complaint into a ConfigError naming the key."""
        return parse_settings(cls, raw, "quickbooks")


class DuplicateDocNumber(PermanentError):
    """QBO fault 6140: a transaction of this type already has this DocNumber."""


class DuplicateName(PermanentError):
    """QBO fault 6240: a customer, vendor or employee already has this name."""


# QBO Fault codes (Fault.Error[].code) -> what the pipeline does. Ranges below
# cover the rest; HTTP statuses that arrive before any Fault go through STATUS_TABLE.
FAULT_CODES: Mapping[int, type[PouracquitError]] = {
    100: AuthExpired,  # General Authentication Error
    3001: RateLimited,  # ThrottleExceeded (errorCode=003001, HTTP 429)
    3100: ConfigError,  # ApplicationAuthorizationFailed: app not authorised for this realm
    3200: AuthExpired,  # AuthenticationFailed: token expired or revoked
    5010: RetryableError,  # Stale Object Error: re-read and retry
    610: PermanentError,  # Object Not Found
    6140: DuplicateDocNumber,
    6240: DuplicateName,
}
STATUS_TABLE: Mapping[int, type[PouracquitError]] = {**DEFAULT_STATUS_TABLE, 403: ConfigError}


def _fault_class(code: int) -> type[PouracquitError]:
    if code in FAULT_CODES:
        return FAULT_CODES[code]
    if 2000 <= code < 5000 or 6000 <= code < 7000:
        return BadRecord  # validation and business rules: the record as sent is refused
    if code >= 10000:
        return RetryableError  # QBO's own internal errors (and python-quickbooks' unreadable response)
    return PermanentError


def classify(exc: Exception) -> PouracquitError:
    """The single translation of what python-quickbooks, intuitlib and requests raise."""
    if isinstance(exc, AuthorizationException) and exc.error_code == 401:
        return AuthExpired(f"quickbooks answered HTTP 401: {exc.message}")
    if isinstance(exc, QuickbooksException):
        code = int(exc.error_code or 0)
        text = f"quickbooks fault {code}: {exc.message} {exc.detail}".strip()[:500]
        cls = _fault_class(code)
        return cls(text) if not issubclass(cls, RetryableError) else cls(text, retry_after=None)
    if isinstance(exc, AuthClientError):
        body = exc.content.decode("utf-8", "replace")[:200] if exc.content else ""
        if exc.status_code == 400 and "invalid_grant" in body:
            return ConfigError(
                "quickbooks refused the refresh token (invalid_grant): reconnect the app to the company "
                "and store the new refresh token"
            )
        if exc.status_code == 401:
            return ConfigError("quickbooks refused the client credentials (invalid_client): check client_id "
                               "and client_secret")
        return error_for_status(VENDOR, exc.status_code, f"OAuth endpoint: {body}", table=STATUS_TABLE)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return RetryableError(f"quickbooks unreachable or no answer: {type(exc).__name__}")
    if isinstance(exc, requests.RequestException):
        return ConfigError(f"quickbooks request impossible: {exc}")
    return PermanentError(f"quickbooks call failed unexpectedly: {type(exc).__name__}: {exc}"[:500])


class ApiSession(requests.Session):
    """The session python-quickbooks sends through (it needs ``access_token``
    and ``request``). Plain requests rather than OAuth2Session, whose https-only
    guard would refuse a local sandbox; adds a timeout, and turns 401, 429 and
    5xx into our errors before the SDK parses a body that may not be JSON."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.access_token = ""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        response = super().request(method, url, *args, **kwargs)
        status = response.status_code
        if status in (401, 429) or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise error_for_status(VENDOR, status, response.text[:200], retry_after, STATUS_TABLE)
        return response


class _AuthClient(AuthClient):
    """intuitlib's client with a timeout on its requests (discovery, token)."""

    def __init__(self, *args: Any, timeout: float, **kwargs: Any) -> None:
        self._timeout = timeout
        super().__init__(*args, **kwargs)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class Connection:
    """One authorised python-quickbooks client for the realm, built on first use."""

    def __init__(self, settings: QuickBooksSettings, tokens: Any, call: Any) -> None:
        self._settings = settings
        self._tokens = tokens
        self._call = call  # VendorClient.call, set by the ledger
        self._lock = threading.RLock()
        self._auth: _AuthClient | None = None
        self._qb: QuickBooks | None = None
        self.session = ApiSession(settings.timeout)

    def client(self) -> QuickBooks:
        """The QuickBooks client, after discovery and a first token refresh."""
        with self._lock:
            if self._qb is None:
                self.refresh()
                qb = QuickBooks(company_id=self._settings.realm_id, minorversion=self._settings.minor_version,
                                use_decimal=True)
                # The supported redirection: the instance attribute the api_url property reads.
                qb.api_url_v3 = self._settings.base_url.rstrip("/") + "/v3"
                qb.session = self.session
                self._qb = qb
            return self._qb

    def refresh(self) -> None:
        """Swap the current refresh token for a new pair; persist the rotated one first."""
        with self._lock:
            s = self._settings
            if self._auth is None:
                self._auth = self._call("oauth.discovery", lambda: _AuthClient(
                    s.client_id, s.client_secret.value().get_secret_value(), s.redirect_uri, s.discovery_url,
                    timeout=s.timeout))
            auth = self._auth
            with self._tokens.exclusive(TOKEN_NAME):  # another worker's rotation is read, not spent again
                current = stored_refresh_token(self._tokens, TOKEN_NAME, s.refresh_token, VENDOR)
                self._call("oauth.refresh", lambda: auth.refresh(refresh_token=current))
                if not auth.access_token or not auth.refresh_token:
                    raise PermanentError("quickbooks token endpoint answered without tokens")
                if auth.refresh_token != current:
                    self._tokens.put(TOKEN_NAME, auth.refresh_token)
            self.session.access_token = auth.access_token


def oauth_app(settings: QuickBooksSettings) -> OAuthApp:
    """The app ``pouracquit connect quickbooks`` authorises, with its endpoints read
    from the discovery document (production: appcenter.intuit.com/connect/oauth2 and
    oauth.platform.intuit.com/oauth2/v1/tokens/bearer); Intuit authenticates the app
    with HTTP Basic and names the company (``realmId``) on the redirect."""
    try:
        response = requests.get(settings.discovery_url, timeout=settings.timeout,
                                headers={"Accept": "application/json"})
        if response.status_code >= 500 or response.status_code == 429:  # Intuit's hiccup: `connect` tries again
            raise RetryableError(f"quickbooks discovery document at {settings.discovery_url} answered HTTP "
                                 f"{response.status_code}")
        response.raise_for_status()
        doc = response.json()
        authorize, token = str(doc["authorization_endpoint"]), str(doc["token_endpoint"])
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise RetryableError(f"quickbooks discovery document at {settings.discovery_url} unreachable "
                             f"({type(exc).__name__})") from None
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"quickbooks settings: discovery_url: no usable discovery document at "
                          f"{settings.discovery_url} ({type(exc).__name__})") from None

    def notes(params: Mapping[str, str], answer: Mapping[str, Any]) -> list[str]:
        realm = params.get("realmId")
        if not realm:
            return []
        if realm == settings.realm_id:
            return [f"QuickBooks company (realmId) {realm}: the configured realm_id."]
        return [f"QuickBooks company (realmId) {realm} differs from the configured realm_id {settings.realm_id}: "
                f'set realm_id = "{realm}" in this connection\'s ledger settings.']

    return OAuthApp(vendor=VENDOR, authorize_url=authorize, token_url=token, client_id=settings.client_id,
                    client_secret=settings.client_secret.value().get_secret_value(), scopes=OAUTH_SCOPES,
                    token_name=TOKEN_NAME, client_auth="basic", timeout=settings.timeout, notes=notes)
