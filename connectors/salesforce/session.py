"""Salesforce plumbing for the source: settings, the one Salesforce error table,
the HTTP session (timeout, CA bundle) and the OAuth refresh that opens an API
session, persisting a rotated refresh token before the new session is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from pouracquit.common.errors import (
    AuthExpired,
    ConfigError,
    PermanentError,
    PouracquitError,
    RateLimited,
    RetryableError,
)
from pouracquit.common.secrets import SecretRef
from pouracquit.connectors.base import TokenStore
from pouracquit.connectors.oauth import OAuthApp, stored_refresh_token

log = structlog.get_logger("pouracquit.connectors.salesforce.session")

TOKEN_NAME = "salesforce.{connection}.refresh_token"  # noqa: S105 - a TokenStore key (per connection), not a secret
OAUTH_SCOPES = ("api", "refresh_token")  # REST API access, and a refresh token for unattended syncs

ErrorClass = type[PouracquitError]


class LocatorExpired(PermanentError):
    """The server forgot a query's nextRecordsUrl (idle too long): re-run the query from the cursor."""


# One table: Salesforce errorCode -> what the pipeline does. The code wins over the HTTP status.
ERROR_CODES: Mapping[str, ErrorClass] = {
    "INVALID_SESSION_ID": AuthExpired,
    "REQUEST_LIMIT_EXCEEDED": RateLimited,
    "MALFORMED_QUERY": ConfigError,  # the mapping produced a query Salesforce cannot parse
    "INVALID_FIELD": ConfigError,  # a mapped field does not exist in this org
    "INVALID_TYPE": ConfigError,  # a mapped object does not exist in this org
    "INVALID_QUERY_FILTER_OPERATOR": PermanentError,  # e.g. a malformed record id
    "MALFORMED_ID": PermanentError,
    "NOT_FOUND": PermanentError,
    "ENTITY_IS_DELETED": PermanentError,
    "INSUFFICIENT_ACCESS": ConfigError,
    "INSUFFICIENT_ACCESS_OR_READONLY": ConfigError,
    "API_DISABLED_FOR_ORG": ConfigError,
    "API_CURRENTLY_DISABLED": ConfigError,
    "FIELD_INTEGRITY_EXCEPTION": PermanentError,
    "REQUIRED_FIELD_MISSING": PermanentError,
    "STORAGE_LIMIT_EXCEEDED": PermanentError,
    "UNABLE_TO_LOCK_ROW": RetryableError,
    "SERVER_UNAVAILABLE": RetryableError,
    "UNKNOWN_EXCEPTION": RetryableError,
    "INVALID_QUERY_LOCATOR": LocatorExpired,
}
# simple-salesforce's exception (chosen from the HTTP status) when the body names no known code.
EXCEPTIONS: Mapping[type[SalesforceError], ErrorClass] = {
    SalesforceExpiredSession: AuthExpired,
    SalesforceRefusedRequest: ConfigError,  # 403: the user or the org lacks a permission
    SalesforceMalformedRequest: PermanentError,
    SalesforceResourceNotFound: PermanentError,
    SalesforceMoreThanOneRecord: PermanentError,
}


class SalesforceSettings(BaseModel):
    """``[connections.<name>.source]`` for vendor = "salesforce"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    login_url: str | None = None  # token endpoint host; default https://login.salesforce.com
    instance_url: str | None = None  # My Domain URL, used as token host when login_url is not set
    client_id: str  # the connected app's consumer key
    client_secret: SecretRef
    refresh_token: SecretRef | None = None  # the initial one (or `pouracquit connect salesforce`); then the store
    api_version: str = "62.0"
    ca_bundle: Path | None = None  # PEM file of CAs to trust instead of the system store
    page_size: int = Field(default=2000, ge=200, le=2000)  # Salesforce's batchSize range
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("api_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"\d{2}\.0", v):
            raise ValueError(f"expected a version like \"62.0\", got {v!r}")
        return v

    @field_validator("ca_bundle")
    @classmethod
    def _bundle(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no CA bundle at {v}")
        return v

    @property
    def token_url(self) -> str:
        return f"{self.oauth_host}/services/oauth2/token"

    @property
    def oauth_host(self) -> str:
        return (self.login_url or self.instance_url or "https://login.salesforce.com").rstrip("/")


class HttpSession(requests.Session):
    """A requests session with a default timeout and a CA bundle that the
    environment cannot override (requests lets REQUESTS_CA_BUNDLE win over
    ``session.verify``)."""

    def __init__(self, bundle: Path | None, timeout: float) -> None:
        super().__init__()
        self._bundle, self._timeout = bundle, timeout
        if bundle is not None:
            self.verify = str(bundle)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        merged = super().merge_environment_settings(*args, **kwargs)
        if self._bundle is not None:
            merged["verify"] = str(self._bundle)
        return merged


@dataclass
class TokenExchange:
    """Opens Salesforce API sessions for one connection from its refresh token."""

    settings: SalesforceSettings
    tokens: TokenStore
    connection: str
    http: HttpSession
    call: Callable[..., Any]  # the source's VendorClient.call

    @property
    def token_name(self) -> str:
        return TOKEN_NAME.format(connection=self.connection)

    def open(self) -> Salesforce:
        """Exchange the refresh token for a session; persist a rotated refresh token first."""
        settings = self.settings
        current = stored_refresh_token(self.tokens, self.token_name, settings.refresh_token, "salesforce")
        form = {"grant_type": "refresh_token", "client_id": settings.client_id,
                "client_secret": settings.client_secret.value().get_secret_value(), "refresh_token": current}

        def exchange() -> dict[str, Any]:
            answer = self.http.post(settings.token_url, data=form, headers={"Accept": "application/json"})
            if answer.status_code == 200:
                return _json(answer)
            code = _list_code(answer)
            if code in ERROR_CODES:  # a REST-style error list (e.g. REQUEST_LIMIT_EXCEEDED)
                raise ERROR_CODES[code](f"Salesforce token endpoint answered HTTP {answer.status_code} {code}")
            if answer.status_code == 429:
                raise RateLimited("Salesforce token endpoint answered HTTP 429")
            if answer.status_code in (400, 401):
                body = _json(answer)
                raise ConfigError(f"Salesforce refused the refresh token ({body.get('error', answer.status_code)}: "
                                  f"{body.get('error_description', '')}); reconnect this Salesforce connection")
            if answer.status_code >= 500:
                raise RetryableError(f"Salesforce token endpoint answered HTTP {answer.status_code}")
            raise PermanentError(f"Salesforce token endpoint answered HTTP {answer.status_code}")

        answer = self.call("oauth.refresh", exchange)
        if not answer.get("access_token") or not answer.get("instance_url"):
            raise PermanentError("Salesforce token answer has no access_token/instance_url")
        rotated = answer.get("refresh_token")
        if rotated and rotated != current:
            self.tokens.put(self.token_name, rotated)  # durable before the new session is used
        log.info("salesforce session refreshed", connection=self.connection, rotated=bool(rotated))
        return Salesforce(session_id=answer["access_token"], instance_url=answer["instance_url"],
                          session=self.http, version=settings.api_version, parse_float=Decimal)


def oauth_app(s: SalesforceSettings, connection: str) -> OAuthApp:
    """The connected app ``pouracquit connect salesforce`` authorises (web server
    flow with PKCE at ``<login host>/services/oauth2/authorize``); the token
    answer names the org's ``instance_url``, which is shown."""

    def notes(params: Mapping[str, str], answer: Mapping[str, Any]) -> list[str]:
        return [f"Salesforce instance: {answer['instance_url']}"] if answer.get("instance_url") else []

    return OAuthApp(vendor="salesforce", authorize_url=f"{s.oauth_host}/services/oauth2/authorize",
                    token_url=s.token_url, client_id=s.client_id,
                    client_secret=s.client_secret.value().get_secret_value(), scopes=OAUTH_SCOPES,
                    token_name=TOKEN_NAME.format(connection=connection), client_auth="form", pkce=True,
                    verify=str(s.ca_bundle) if s.ca_bundle else True, timeout=s.timeout, notes=notes)


def classify(exc: Exception) -> PouracquitError:
    """What the pipeline does about a failed Salesforce call (``ERROR_CODES``, then ``EXCEPTIONS``)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return ConfigError(f"TLS to Salesforce failed ({exc}); check ca_bundle")
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                  | requests.exceptions.ChunkedEncodingError):
        return RetryableError(f"salesforce unreachable: {type(exc).__name__}")
    if isinstance(exc, SalesforceError):
        code, message = _code(exc)
        text = f"salesforce answered HTTP {exc.status} {code}: {message}"[:500]
        cls = ERROR_CODES.get(code) or next(
            (c for e, c in EXCEPTIONS.items() if isinstance(exc, e)), None)
        if cls is None:
            server_side = isinstance(exc, SalesforceGeneralError) and exc.status >= 500
            cls = RetryableError if server_side else PermanentError
        if cls is ConfigError:
            text += " (check mappings/salesforce.toml or the connection's [mapping] overrides)"
        return cls(text)
    return PermanentError(f"salesforce call failed unexpectedly: {type(exc).__name__}: {exc}")


def _code(exc: SalesforceError) -> tuple[str, str]:
    """(errorCode, message) from a Salesforce error body ``[{"message", "errorCode"}]``."""
    content = exc.content
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, Mapping):
        return str(first.get("errorCode") or ""), str(first.get("message") or "")
    return "", str(content)[:200]


def _list_code(response: requests.Response) -> str:
    try:
        parsed = response.json()
    except ValueError:
        return ""
    first = parsed[0] if isinstance(parsed, list) and parsed else None
    return str(first.get("errorCode") or "") if isinstance(first, dict) else ""


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
