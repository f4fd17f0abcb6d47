"""The HubSpot sandbox's OAuth: the authorize page, the token endpoints and the
scope each API route needs.

Token endpoints (https://developers.hubspot.com/docs/api-reference/latest/authentication/manage-oauth-tokens,
migration: https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/migration-guide):

* ``POST /oauth/2026-03/token``: every parameter form-encoded in the body, none
  in the query string; answers as v1 did (``token_type``, ``refresh_token``,
  ``access_token``, ``expires_in``, ``hub_id``, ``scopes``);
* ``POST /oauth/v1/token``: the legacy endpoint, served until its sunset on
  2027-02-16 (https://developers.hubspot.com/changelog/v1-oauth-api-deprecation).

Both refuse with HTTP 400 and the RFC 6749 body HubSpot standardised on
(https://developers.hubspot.com/changelog/new-oauth-v3-api-endpoints-and-standardized-error-responses):
``{"error": "invalid_grant", "error_description", "status": "BAD_REFRESH_TOKEN", "message"}``
(``status``/``message`` kept for older clients).

Scopes: a route needs one of the scopes of its line in ``_NEEDS``, from HubSpot's
API reference pages (invoices: crm.objects.invoices.read; notes, an engagement,
are governed by the contact scopes: crm.objects.contacts.read/.write; files:
``files``). A private-app token carries every scope.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from pouracquit.sandbox.oauth import rfc6749_error
from pouracquit.sandbox.server import HttpError, Request, Response

if TYPE_CHECKING:
    from .emulator import HubSpotSandbox

_READ = {"invoices": "crm.objects.invoices.read", "line_items": "crm.objects.line_items.read",
         "contacts": "crm.objects.contacts.read", "companies": "crm.objects.companies.read",
         "deals": "crm.objects.deals.read", "products": "e-commerce",
         "notes": "crm.objects.contacts.read"}
_WRITE = {"invoices": "crm.objects.invoices.write", "line_items": "crm.objects.line_items.write",
          "contacts": "crm.objects.contacts.write", "companies": "crm.objects.companies.write",
          "deals": "crm.objects.deals.write", "products": "e-commerce",
          "notes": "crm.objects.contacts.write"}
_LEGACY_STATUS = {("invalid_grant", "refresh_token"): "BAD_REFRESH_TOKEN",
                  ("invalid_grant", "authorization_code"): "BAD_AUTH_CODE",
                  ("invalid_client", ""): "BAD_CLIENT_ID", ("unsupported_grant_type", ""): "BAD_GRANT_TYPE",
                  ("invalid_request", ""): "BAD_REQUEST"}
_BODY_ONLY = ("client_id", "client_secret", "refresh_token", "code", "code_verifier")


def needed_scopes(route: str, request: Request) -> frozenset[str]:
    """The scopes of which a token must carry one to call ``route``; empty: no check."""
    object_type = request.params.get("type", "")
    if route in ("crm_search", "crm_batch_read", "crm_list", "crm_get"):
        return frozenset({_READ.get(object_type, "")})
    if route in ("crm_create", "crm_batch_create", "crm_update"):
        return frozenset({_WRITE.get(object_type, "")})
    if route == "assoc_batch_read":
        return frozenset({_READ.get(request.params.get("from", ""), "")})
    if route == "assoc_default":
        return frozenset({_WRITE.get(object_type, "")})
    if route.startswith("files_"):
        return frozenset({"files"})
    return frozenset()  # association labels: HubSpot's page names no scope we could confirm


def _fail(error: str, description: str, grant: str = "") -> Response:
    status = _LEGACY_STATUS.get((error, grant)) or _LEGACY_STATUS.get((error, ""), "BAD_REQUEST")
    return Response(400, rfc6749_error(error, description, status=status, message=description,
                                       correlationId=str(uuid.uuid4())))


def token(box: HubSpotSandbox, request: Request, *, versioned: bool) -> Response:
    """Both token endpoints; ``versioned`` (2026-03) refuses secrets in the query string."""
    if versioned and any(name in request.query for name in _BODY_ONLY):
        return _fail("invalid_request", "parameters must be form-encoded in the request body")
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    if not versioned:  # v1 took its parameters from the query string too
        form = {**{k: v[0] for k, v in request.query.items()}, **form}
    client_id, grant = form.get("client_id"), form.get("grant_type") or ""
    if not box.tokens.client_ok(client_id, form.get("client_secret")):
        return _fail("invalid_client", "missing or unknown client id")
    if grant == "refresh_token":
        scope = box.tokens.grant_scope(form.get("refresh_token", ""))
        pair = box.tokens.refresh(form.get("refresh_token", ""), client_id or "")
        problem = "refresh token is invalid, expired or revoked"
    elif grant == "authorization_code":
        scope = box.tokens.code_scope(form.get("code", ""))
        pair = box.tokens.exchange_code(form.get("code", ""), client_id or "")
        problem = "missing or unknown auth code"
    else:
        return _fail("unsupported_grant_type", f"unsupported grant_type {grant!r}")
    if pair is None:
        return _fail("invalid_grant", problem, grant)
    with box.lock:
        box.issued.add(pair["access_token"])
    body: dict[str, Any] = {"token_type": "bearer", "refresh_token": pair["refresh_token"],
                            "access_token": pair["access_token"], "expires_in": int(box.ACCESS_TTL),
                            "hub_id": box.PORTAL_ID, "scopes": sorted(set((scope or "").split()) | {"oauth"})}
    return Response(body=body)


def authorize(box: HubSpotSandbox, request: Request) -> Response:
    """The install page, approved at once: back to ``redirect_uri`` with the code and state."""
    client_id, redirect = request.arg("client_id"), request.arg("redirect_uri")
    if client_id not in box.tokens.clients or not redirect:
        raise HttpError(400, {"status": "BAD_CLIENT_ID", "message": "unknown client_id or missing redirect_uri"})
    query = {"code": box.tokens.issue_code(client_id, request.arg("scope", "") or "")}
    if request.arg("state"):
        query["state"] = request.arg("state") or ""
    separator = "&" if "?" in redirect else "?"
    return Response(status=302, headers={"Location": f"{redirect}{separator}{urlencode(query)}"})
