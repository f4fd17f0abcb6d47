"""Xero emulator: Xero Identity (OAuth 2.0), ``/connections`` and the Accounting API 2.0.

One tenant, ``TENANT_NAME`` (``TENANT_ID``), seeded with French tax rates,
a revenue and a BANK account and a few contacts (see ``books.py``).
Point a client at ``sandbox.url + "/api.xro/2.0"`` for the API and at
``sandbox.url`` for the identity server (``/connect/token``).

Behaviour worth knowing:

* access tokens live 1800 vendor seconds (Xero's 30 minutes); every refresh
  returns a NEW refresh token and retires the presented one at once (strict
  reading: a client that loses the rotated token is disconnected);
* every API call needs ``Authorization: Bearer`` and ``xero-tenant-id``, and
  a grant holding a scope that opens the endpoint (``SCOPES``; a 401
  "AuthorizationUnsuccessful" otherwise);
* a write repeated with the same ``Idempotency-Key`` within 24 vendor hours
  gets the original response and writes nothing (only successes are kept);
* per tenant: 60 calls a minute, 5,000 a day, 5 in flight. Every API answer
  carries ``X-MinLimit-Remaining``, ``X-DayLimit-Remaining`` and
  ``X-AppMinLimit-Remaining``; a 429 names the limit in ``X-Rate-Limit-Problem``
  (``minute``, ``day``, ``concurrent``) with ``Retry-After`` for minute and day;
* ``where`` filters follow Xero's syntax, without escapes (see ``where.py``);
* sales credit notes (``/CreditNotes``) are refunded by a Payment naming them
  (``credit.py``); invoices, credit notes and bank transactions take
  attachments, raw bytes typed by the file's name;
* ``currencies`` are the organisation's (``DEMO_CURRENCIES``: EUR, the base,
  and USD; ``POST /_sandbox/seed {"Currencies": ["EUR"]}`` replaces them);
  a document in another one is refused with Xero's validation error;
* ``exchanges`` keeps every API call as sent and answered (method, path,
  query, headers, body; status, content type, body), for tests that validate
  them against Xero's OpenAPI spec (``sandbox/xero/spec``).
"""

from __future__ import annotations

import base64
import copy
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from pouracquit.sandbox.oauth import TokenIssuer
from pouracquit.sandbox.server import HttpError, RateRule, Request, Response, Sandbox

from .books import ATTACHABLE, Books
from .endpoints import Endpoints
from .rules import DEMO_CURRENCIES, TENANT_ID, TENANT_NAME, msdate, validation

DEMO_TENANT_ID = TENANT_ID
DEMO_TENANT_NAME = TENANT_NAME
DEMO_CLIENT_ID = "0A1B2C3D4E5F60718293A4B5C6D7E8F9"
DEMO_CLIENT_SECRET = "demo-secret-pouracquit-xero"  # noqa: S105 - public demo credential
DEMO_REFRESH_TOKEN = "xero-demo-refresh-0000000000000000"  # noqa: S105 - public demo credential
API_PREFIX = "/api.xro/2.0"
ACCESS_TTL = 1800.0  # Xero access tokens: 30 minutes
IDEMPOTENCY_TTL = 86_400.0  # a key is remembered 24 hours
APP_MINUTE_LIMIT = 10_000
# The scopes that open each endpoint: the granular one, or for apps created before 2026-03-02 the
# broad accounting.transactions it replaces (developer.xero.com/documentation/guides/oauth2/scopes;
# docs/vendors.md, Xero). A GET also takes the ".read" variant.
SCOPES: dict[str, tuple[str, ...]] = {
    "Invoices": ("accounting.invoices", "accounting.transactions"),
    "CreditNotes": ("accounting.invoices", "accounting.transactions"),
    "Payments": ("accounting.payments", "accounting.transactions"),
    "BankTransactions": ("accounting.banktransactions", "accounting.transactions"),
    "Contacts": ("accounting.contacts",),
    "Accounts": ("accounting.settings",), "TaxRates": ("accounting.settings",), "Currencies": ("accounting.settings",),
    "Attachments": ("accounting.attachments",),
}
# What the demo connection was granted: the granular scopes apps created since 2026-03-02 get.
DEMO_SCOPES = ("offline_access accounting.invoices accounting.payments accounting.banktransactions "
               "accounting.contacts accounting.settings accounting.attachments")
MINUTE = RateRule("minute", limit=60, window=60.0)
DAY = RateRule("day", limit=5000, window=86_400.0)
CONCURRENT = RateRule("concurrent", concurrent=5)


def _wire(value: Any) -> Any:
    """Amounts leave as JSON numbers, as Xero sends them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


class XeroSandbox(Endpoints, Sandbox):
    """One Xero organisation behind Xero's identity server, limits and error shapes;
    ``currencies`` lists the ones it has added (Settings > Currencies)."""

    vendor = "xero"
    rate_rules = (MINUTE, DAY, CONCURRENT)

    def __init__(self, currencies: Iterable[str] = DEMO_CURRENCIES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.books = Books(currencies)
        self.issuer = TokenIssuer(access_ttl=ACCESS_TTL, rotate=True, time_factor=self.time_factor)
        self.issuer.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        self.issuer.add_refresh_token(DEMO_REFRESH_TOKEN, DEMO_CLIENT_ID, DEMO_SCOPES)
        self.operations: Counter[str] = Counter()
        self.replays = 0
        self.exchanges: deque[dict[str, Any]] = deque(maxlen=5000)
        self._replies: dict[tuple[str, str], tuple[float, str, Response]] = {}
        self._granted: dict[str, set[str]] = {}  # access token -> the scopes of its grant
        self._app_stamps: deque[float] = deque()
        self.route("GET", r"/connect/authorize", "oauth_authorize", self._authorize)
        self.route("POST", r"/connect/token", "oauth_token", self._token)
        self.route("GET", r"/connections", "connections", self._connections)
        api = API_PREFIX
        self.route("GET", api + r"/Contacts", "contacts_list", self._api(self._contacts))
        for method in ("PUT", "POST"):
            for key in ("Contacts", "Invoices", "CreditNotes"):
                self.route(method, api + "/" + key, key.lower() + "_create", self._api(self._create(key)))
            for kind in ATTACHABLE:  # spec#/paths/~1{kind}~1{ID}~1Attachments~1{FileName}
                self.route(method, api + f"/{kind}/(?P<id>[^/]+)/Attachments/(?P<name>[^/]+)", "attachments_upload",
                           self._api(self._upload(kind)))
        for kind in ATTACHABLE:
            self.route("GET", api + f"/{kind}/(?P<id>[^/]+)/Attachments", "attachments_list",
                       self._api(self._attachments(kind)))
        self.route("GET", api + r"/Invoices", "invoices_list", self._api(self._invoices))
        self.route("GET", api + r"/Invoices/(?P<id>[^/]+)", "invoices_get", self._api(self._invoice))
        self.route("GET", api + r"/CreditNotes", "creditnotes_list", self._api(self._credit_notes))
        self.route("GET", api + r"/CreditNotes/(?P<id>[^/]+)", "creditnotes_get", self._api(self._credit_note))
        self.route("PUT", api + r"/Payments", "payments_create", self._api(self._create("Payments")))
        self.route("PUT", api + r"/BankTransactions", "banktransactions_create",
                   self._api(self._create("BankTransactions")))
        self.route("GET", api + r"/BankTransactions", "banktransactions_list", self._api(self._bank_transactions))
        self.route("GET", api + r"/Currencies", "currencies_list", self._api(self._currencies))
        self.route("GET", api + r"/TaxRates", "taxrates_list", self._api(self._tax_rates))
        self.route("GET", api + r"/Accounts", "accounts_list", self._api(self._accounts))

    # -- demo helpers -----------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """What to give a client as the Accounting API base URL."""
        return self.url + API_PREFIX

    # -- base-class hooks --------------------------------------------------------------
    def error_body(self, status: int, message: str) -> Any:
        titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}
        return {"Type": None, "Title": titles.get(status, "Service Unavailable" if status >= 500 else "Error"),
                "Status": status, "Detail": message, "Instance": str(uuid.uuid4()), "Extensions": {}}

    def rate_key(self, request: Request) -> str | None:
        if not request.path.startswith(API_PREFIX):
            return None
        return request.header("xero-tenant-id") or "(none)"

    def rate_limited(self, rule: RateRule, retry_after: float) -> Response:
        headers = {"X-Rate-Limit-Problem": rule.name}
        if rule.name in ("minute", "day"):  # Xero gives Retry-After for these two, not for concurrency
            headers["Retry-After"] = self.format_seconds(retry_after)
        return Response(status=429, body=self.error_body(429, f"Rate limit exceeded: {rule.name}"), headers=headers)

    def dispatch(self, request: Request) -> Response:
        """The base dispatch, plus Xero's remaining-calls headers on every API answer."""
        response = super().dispatch(request)
        key = self.rate_key(request)
        if key is not None:
            with self.lock:
                now = time.monotonic()
                self._app_stamps.append(now)
                while self._app_stamps and now - self._app_stamps[0] >= self.scaled(60.0):
                    self._app_stamps.popleft()
                minute = self._stamps.get((MINUTE.name, key), ())
                day = self._stamps.get((DAY.name, key), ())
                response.headers.setdefault("X-MinLimit-Remaining", str(max(0, (MINUTE.limit or 0) - len(minute))))
                response.headers.setdefault("X-DayLimit-Remaining", str(max(0, (DAY.limit or 0) - len(day))))
                response.headers.setdefault("X-AppMinLimit-Remaining",
                                            str(max(0, APP_MINUTE_LIMIT - len(self._app_stamps))))
        return response

    def call_counts(self) -> dict[str, Any]:
        counts = super().call_counts()
        with self.lock:
            counts["by_operation"] = dict(self.operations)
            counts["idempotent_replays"] = self.replays
        return counts

    def dump_state(self) -> Any:
        with self.lock:
            return _wire({"tenant_id": TENANT_ID, "tenant_name": TENANT_NAME, **self.books.dump()})

    def seed(self, spec: dict[str, Any]) -> Any:
        with self.lock:
            return self.books.seed(spec)

    # -- identity ---------------------------------------------------------------------
    def _authorize(self, request: Request) -> Response:
        client_id, redirect = request.arg("client_id"), request.arg("redirect_uri")
        if client_id not in self.issuer.clients or not redirect:
            return Response(status=400, body={"error": "invalid_request"})
        code = self.issuer.issue_code(client_id, request.arg("scope", "") or "")
        query = urlencode({"code": code, "state": request.arg("state", "") or "", "scope": request.arg("scope", "")})
        return Response(status=302, body=b"", headers={"Location": f"{redirect}?{query}"})

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.header("authorization") or ""
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = None
        if not self.issuer.client_ok(client_id, secret):
            return Response(status=400, body={"error": "invalid_client"})
        assert client_id is not None
        grant = form.get("grant_type")
        if grant == "refresh_token":
            pair = self.issuer.refresh(form.get("refresh_token", ""), client_id)
        elif grant == "authorization_code":
            pair = self.issuer.exchange_code(form.get("code", ""), client_id)
        else:
            return Response(status=400, body={"error": "unsupported_grant_type"})
        if pair is None:
            return Response(status=400, body={"error": "invalid_grant"})
        self.operations["token " + grant] += 1
        scope = self.issuer.grant_scope(str(pair.get("refresh_token"))) or ""
        with self.lock:
            self._granted[str(pair["access_token"])] = set(scope.split())
        return Response(body={**pair, "token_type": "Bearer", "scope": scope})

    def _bearer(self, request: Request) -> str:
        header = request.header("authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not self.issuer.check(token):
            raise HttpError(401, self.error_body(401, "TokenExpired: token expired or invalid"),
                            {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return token

    def _authorised(self, token: str, request: Request) -> None:
        """The grant must hold a scope that covers the endpoint; Xero answers a missing one
        with 401 "AuthorizationUnsuccessful" (XeroAPI/Xero-NetStandard#178: /Accounts without
        accounting.settings; XeroAPI/xero-ruby-oauth2-app#82)."""
        segments = request.path[len(API_PREFIX):].strip("/").split("/")
        wanted = SCOPES["Attachments"] if "Attachments" in segments else SCOPES.get(segments[0], ())
        if request.method == "GET":
            wanted = (*wanted, *(w + ".read" for w in wanted))
        with self.lock:
            granted = self._granted.get(token, set())
        if not granted.intersection(wanted):
            raise HttpError(401, self.error_body(401, "AuthorizationUnsuccessful"))

    def _connections(self, request: Request) -> Response:
        self._bearer(request)
        self.operations["connections"] += 1
        return Response(body=[{
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "xero-connection")), "authEventId": str(uuid.uuid4()),
            "tenantId": TENANT_ID, "tenantType": "ORGANISATION", "tenantName": TENANT_NAME,
            "createdDateUtc": "2026-01-02T08:00:00.0000000", "updatedDateUtc": "2026-01-02T08:00:00.0000000",
        }])

    # -- Accounting API plumbing ---------------------------------------------------------
    def _api(self, handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        """Bearer and tenant checks, the lock, Idempotency-Key replay and Xero's envelope."""

        def run(request: Request) -> Response:
            self._authorised(self._bearer(request), request)
            tenant = request.header("xero-tenant-id")
            if tenant != TENANT_ID:
                raise HttpError(403, self.error_body(403, "AuthenticationUnsuccessful"))
            key = request.header("idempotency-key") if request.method in ("PUT", "POST") else None
            with self.lock:
                if key and len(key) > 128:
                    raise validation("Idempotency-Key must be at most 128 characters")
                now = time.monotonic()
                kept = self._replies.get((tenant, key)) if key else None
                if kept and now - kept[0] < self.scaled(IDEMPOTENCY_TTL) and kept[1] == request.path:
                    self.replays += 1
                    self._record(request, kept[2])
                    return copy.deepcopy(kept[2])
                try:
                    response = self._envelope(handler(request))
                except HttpError as exc:
                    self._record(request, exc.response)
                    raise
                if key:
                    self._replies[(tenant, key)] = (now, request.path, copy.deepcopy(response))
                self._record(request, response)
                return response

        return run

    @staticmethod
    def _envelope(result: Any) -> Response:
        if isinstance(result, Response):
            return result
        body = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "pouracquit sandbox",
                "DateTimeUTC": msdate(datetime.now(UTC)), **result}
        return Response(body=_wire(body))

    def _record(self, request: Request, response: Response) -> None:
        """One API call as sent and answered: what a test needs to check both against the spec."""
        self.exchanges.append({
            "method": request.method, "path": request.path, "query": copy.deepcopy(request.query),
            "headers": dict(request.headers), "body": request.body, "status": response.status,
            "content_type": response.content_type, "response": _wire(copy.deepcopy(response.body)),
        })


SANDBOX = XeroSandbox


def connector_settings(box: Sandbox, secrets: Path) -> dict[str, Any]:
    """Settings that point the Xero ledger at ``box`` (API, identity server, tenant)."""
    from pouracquit.sandbox.launch import secret_file

    assert isinstance(box, XeroSandbox)
    return {
        "vendor": "xero",
        "base_url": box.api_url,
        "identity_url": box.url,
        "tenant_id": DEMO_TENANT_ID,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": secret_file(secrets, "xero_client_secret", DEMO_CLIENT_SECRET),
        "refresh_token": secret_file(secrets, "xero_refresh_token", DEMO_REFRESH_TOKEN),
    }


def demo_seed(count: int, seed: int) -> dict[str, Any]:
    """The organisation is seeded at start; the demo invoices live in the CRM."""
    return {}
