"""HubSpot OAuth for the HubSpot source: the scopes it asks for, the app
``pouracquit connect hubspot`` authorises, and the refresh-token exchange.

Tokens come from the date-versioned ``POST /oauth/2026-03/token``, every
parameter form-encoded in the body: HubSpot retires ``/oauth/v1/token`` on
2027-02-16 (https://developers.hubspot.com/changelog/v1-oauth-api-deprecation;
https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/migration-guide).
hubspot-api-client 12 still calls v1, so the exchange is one plain ``requests``
POST. The answer is v1's (``access_token``, ``refresh_token``, ``expires_in``);
a refusal is RFC 6749's ``{"error", "error_description"}`` (HubSpot keeps the
older ``status``/``message`` beside them:
https://developers.hubspot.com/changelog/new-oauth-v3-api-endpoints-and-standardized-error-responses).
"""

from __future__ import annotations

from typing import Any

import requests

from pouracquit.common.calls import parse_retry_after
from pouracquit.common.errors import ConfigError, RateLimited, RetryableError
from pouracquit.connectors.oauth import OAuthApp

PRODUCTION_API = "https://api.hubapi.com"
PRODUCTION_AUTHORIZE = "https://app.hubspot.com/oauth/authorize"
TOKEN_PATH = "/oauth/2026-03/token"  # noqa: S105 - an endpoint path, not a secret
# Exactly what the source's calls need, per HubSpot's API reference pages:
# invoices search/read (https://developers.hubspot.com/docs/api-reference/latest/crm/objects/invoices/guide),
# the line items, contacts, companies and deals read beside them, Files upload and
# search ("files"), and notes: an engagement governed by the contact scopes, read to
# find an earlier note and write to create one
# (https://developers.hubspot.com/docs/api-reference/latest/crm/activities/notes/guide).
# "oauth" is the scope every HubSpot OAuth app has.
OAUTH_SCOPES = ("oauth", "crm.objects.invoices.read", "crm.objects.line_items.read", "crm.objects.contacts.read",
                "crm.objects.companies.read", "crm.objects.deals.read", "crm.objects.contacts.write", "files")


def oauth_app(base_url: str, client_id: str, client_secret: str, token_name: str, timeout: float) -> OAuthApp:
    """The authorize page is on app.hubspot.com in production, beside the API on
    any other base_url (a sandbox); the token endpoint takes the client's id and
    secret as form fields; HubSpot refuses IP addresses in redirect URIs."""
    base = base_url.rstrip("/")
    return OAuthApp(
        vendor="hubspot",
        authorize_url=PRODUCTION_AUTHORIZE if base == PRODUCTION_API else f"{base}/oauth/authorize",
        token_url=f"{base}{TOKEN_PATH}", client_id=client_id, client_secret=client_secret,
        scopes=OAUTH_SCOPES, token_name=token_name, client_auth="form", redirect_host="localhost", timeout=timeout,
    )


def refresh_grant(http: requests.Session, base_url: str, client_id: str, client_secret: str, refresh_token: str,
                  timeout: float) -> dict[str, Any]:
    """Exchange ``refresh_token`` for an access token: the token answer, or
    ConfigError when HubSpot refuses the grant (reconnect), RetryableError /
    RateLimited when it could not answer."""
    form = {"grant_type": "refresh_token", "client_id": client_id, "client_secret": client_secret,
            "refresh_token": refresh_token}
    try:
        response = http.post(f"{base_url.rstrip('/')}{TOKEN_PATH}", data=form, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise RetryableError(f"hubspot unreachable: {type(exc).__name__}") from None
    if response.status_code == 429:
        raise RateLimited("hubspot answered HTTP 429 to the token request",
                          retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if response.status_code >= 500:
        raise RetryableError(f"hubspot answered HTTP {response.status_code} to the token request")
    try:
        body = response.json()
    except ValueError:
        status = response.status_code
        raise RetryableError(f"hubspot answered HTTP {status} to the token request without JSON") from None
    body = body if isinstance(body, dict) else {}
    if response.status_code >= 400 or "access_token" not in body:
        error = body.get("error") or body.get("status") or f"HTTP {response.status_code}"
        detail = body.get("error_description") or body.get("message") or ""
        raise ConfigError(f"HubSpot refused the refresh token ({error}{': ' + str(detail) if detail else ''}); "
                          f"reconnect this HubSpot connection to grant access again")
    return body
