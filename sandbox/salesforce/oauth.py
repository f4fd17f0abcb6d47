"""The Salesforce sandbox's OAuth 2.0 endpoints: the web server flow's approval
page (approved at once) with PKCE, and ``POST /services/oauth2/token`` (form body)
for the authorisation code and refresh-token grants.

The token answer carries ``access_token``, ``instance_url``, ``id``, ``issued_at``,
``signature``, ``token_type: Bearer`` and a new ``refresh_token`` only when refresh
token rotation is on for the app (then the old one stops working), or for a code
grant. OAuth errors are ``{"error", "error_description"}`` with HTTP 400
(``invalid_grant``). Sources are in the Salesforce connector's report.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

from pouracquit.sandbox.server import Request, Response

if TYPE_CHECKING:
    from .emulator import SalesforceSandbox


def s256(verifier: str) -> str:
    """RFC 7636 S256: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize(box: SalesforceSandbox, request: Request) -> Response:
    """The web server flow's approval page, approved at once: back to ``redirect_uri``
    with ``code`` and ``state``; a PKCE ``code_challenge`` is kept for the exchange."""
    client_id, redirect = request.arg("client_id"), request.arg("redirect_uri")
    if client_id not in box.tokens.clients or not redirect or request.arg("response_type") != "code":
        return Response(400, {"error": "invalid_request", "error_description": "bad client_id, redirect_uri "
                              "or response_type"})
    code = box.tokens.issue_code(client_id, request.arg("scope", "") or "")
    challenge = request.arg("code_challenge")
    if challenge:
        with box.lock:
            box.challenges[code] = challenge
    query = {"code": code, **({"state": request.arg("state") or ""} if request.arg("state") else {})}
    separator = "&" if "?" in redirect else "?"
    return Response(302, b"", headers={"Location": f"{redirect}{separator}{urlencode(query)}"})

def token(box: SalesforceSandbox, request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    client_id = form.get("client_id") or ""
    grant = form.get("grant_type")
    if grant not in ("refresh_token", "authorization_code"):
        return Response(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
    if client_id not in box.tokens.clients:
        return Response(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
    if not box.tokens.client_ok(client_id, form.get("client_secret")):
        return Response(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
    if grant == "authorization_code":
        code = form.get("code", "")
        with box.lock:
            challenge = box.challenges.pop(code, None)
        verifier = form.get("code_verifier")
        if challenge is not None and not verifier:
            return Response(400, {"error": "invalid_grant", "error_description": "code_verifier missing"})
        if challenge is not None and s256(verifier or "") != challenge:
            return Response(400, {"error": "invalid_request", "error_description": "invalid code verifier"})
        pair = box.tokens.exchange_code(code, client_id)
        if pair is None:
            return Response(400, {"error": "invalid_grant", "error_description": "invalid authorization code"})
    else:
        pair = box.tokens.refresh(form.get("refresh_token", ""), client_id)
        if pair is None:
            return Response(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
    issued = str(int(time.time() * 1000))
    body = {"access_token": f"00D5g000004pAcQ!{pair['access_token']}", "signature": secrets.token_urlsafe(32),
            "scope": "refresh_token api", "instance_url": box.api_url,
            "id": f"{box.api_url}/id/00D5g000004pAcQEAU/0055g00000DemoUSER", "token_type": "Bearer",
            "issued_at": issued}
    if box.tokens.rotate or grant == "authorization_code":  # a code grant always yields one
        body["refresh_token"] = pair["refresh_token"]
    with box.lock:
        box.issued.add(body["access_token"])
    return Response(body=body)
