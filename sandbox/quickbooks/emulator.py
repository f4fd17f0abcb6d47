"""QuickBooks Online emulator: Intuit OAuth 2.0 plus the Accounting API v3.

The official clients work against it unchanged, only the URLs differ:
``intuitlib.client.AuthClient(..., environment=sandbox.discovery_url)`` reads
the discovery document served here, and a ``quickbooks.QuickBooks`` client
whose ``api_url_v3`` is ``sandbox.url + "/v3"`` talks to the company below.

Behaviour worth knowing (see the module ``books.py`` for the rules):

* access tokens live 3600 vendor seconds; every refresh returns a NEW refresh
  token and retires the one presented, immediately. Intuit documents that the
  refresh token rotates and that the latest one must always be kept; a grace
  period for the old one is not something a client can count on, so this
  emulator takes the strict reading: a lost rotated token is a lost connection;
* a write repeated with the same ``requestid`` query parameter returns the
  original response and writes nothing (what makes replaying a lost response safe);
* 500 requests per minute and 10 in flight per realm, 40 batch requests per
  minute, answered with QBO's 429 ``ThrottleExceeded`` Fault (code 3001);
* the company has multicurrency on (``multicurrency=False``, or the seed
  ``{"preferences": {"multicurrency": false}}``, models one that has not);
* ``POST /{entity}?operation=delete`` with ``{Id, SyncToken}`` deletes a sales document or a
  payment for good (python-quickbooks ``DeleteMixin``): later queries no longer return it;
* ``GET /_sandbox/calls`` adds ``by_operation`` (``"query TaxCode": 1`` ...).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from pouracquit.sandbox.oauth import TokenIssuer
from pouracquit.sandbox.server import HttpError, RateRule, Request, Response, Sandbox

from .books import Books, canonical, decode_part, fault, now_stamp
from .company import REALM_ID

DEMO_REALM_ID = REALM_ID
DEMO_CLIENT_ID = "ABpouracquitDemoClient0000000000000000000000000000"
DEMO_CLIENT_SECRET = "demo-secret-pouracquit-quickbooks"  # noqa: S105 - public demo credential
DEMO_REFRESH_TOKEN = "RT1-demo-pouracquit-0000000000000000"  # noqa: S105 - public demo credential
DISCOVERY_PATH = "/.well-known/openid_configuration"
REFRESH_TOKEN_TTL = 8_726_400  # Intuit's x_refresh_token_expires_in: about 101 days
BATCH_LIMIT = 30
_COMPANY = r"/v3/company/(?P<realm>[^/]+)"


def _wire(value: Any) -> Any:
    """Amounts leave as JSON numbers, as QBO sends them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _ok(body: dict[str, Any]) -> Response:
    body = dict(body)
    body.setdefault("time", now_stamp())
    return Response(body=_wire(body))


class QuickBooksSandbox(Sandbox):
    """One QuickBooks Online company (realm ``DEMO_REALM_ID``) and Intuit's OAuth server."""

    vendor = "quickbooks"
    rate_rules = (RateRule("accounting", limit=500, window=60.0, concurrent=10),)
    batch_rule = RateRule("batch", limit=40, window=60.0)

    def __init__(self, *, multicurrency: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.books = Books(multicurrency=multicurrency)
        self.issuer = TokenIssuer(access_ttl=3600.0, rotate=True, time_factor=self.time_factor)
        self.issuer.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        self.issuer.add_refresh_token(DEMO_REFRESH_TOKEN, DEMO_CLIENT_ID, "com.intuit.quickbooks.accounting")
        self.operations: Counter[str] = Counter()
        self.replays = 0
        self._replies: dict[tuple[str, str, str], Response] = {}
        self._revoked: set[str] = set()
        self._batch_stamps: deque[float] = deque()
        for path in (DISCOVERY_PATH, DISCOVERY_PATH + "/"):
            self.route("GET", path, "discovery", self._discovery)
        self.route("GET", r"/connect/oauth2", "oauth_authorize", self._authorize)
        self.route("POST", r"/oauth2/v1/tokens/bearer", "oauth_token", self._token)
        self.route("POST", r"/oauth2/v1/tokens/revoke", "oauth_revoke", self._revoke)
        self.route("GET", r"/v1/openid_connect/userinfo", "oauth_userinfo", self._userinfo)
        self.route("GET", r"/op/v1/jwks", "oauth_jwks", lambda r: Response(body={"keys": []}))
        for method in ("GET", "POST"):
            self.route(method, _COMPANY + r"/query", "query", self._api(self._query))
        self.route("GET", _COMPANY + r"/cdc", "cdc", self._api(self._cdc))
        # GET /v3/company/<realmID>/preferences: the one Preferences object, no Id in the path
        # (python-quickbooks PrefMixin.get reads it there).
        self.route("GET", _COMPANY + r"/preferences", "preferences",
                   self._api(lambda r: _ok({"Preferences": self.books.get("Preferences", "1")})))
        self.route("POST", _COMPANY + r"/upload", "upload", self._api(self._upload, write=True))
        self.route("POST", _COMPANY + r"/batch", "batch", self._api(self._batch, write=True))
        self.route("GET", _COMPANY + r"/(?P<entity>[a-z]+)/(?P<id>[^/]+)", "read", self._api(self._read))
        self.route("POST", _COMPANY + r"/(?P<entity>[a-z]+)", "write", self._api(self._write, write=True))

    # -- demo helpers ------------------------------------------------------------
    @property
    def discovery_url(self) -> str:
        """What to pass as intuitlib's ``environment``."""
        return self.url + DISCOVERY_PATH

    @property
    def api_url_v3(self) -> str:
        """What to set as python-quickbooks' ``api_url_v3``."""
        return self.url + "/v3"

    # -- base-class hooks ---------------------------------------------------------
    def error_body(self, status: int, message: str) -> Any:
        kind = "SystemFault" if status >= 500 else "ValidationFault"
        code = "10000" if status >= 500 else "4000"
        return {"Fault": {"Error": [{"Message": message, "Detail": message, "code": code}], "type": kind},
                "time": now_stamp()}

    def rate_key(self, request: Request) -> str | None:
        found = re.match(_COMPANY, request.path)
        return found.group("realm") if found else None

    def rate_limited(self, rule: RateRule, retry_after: float) -> Response:
        body = {"Fault": {"Error": [{
            "Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "Detail": "The request limit was reached.  Try again later", "code": "3001"}],
            "type": "SERVICE"}, "time": now_stamp()}
        return Response(status=429, body=body, headers={"Retry-After": self.format_seconds(retry_after)})

    def call_counts(self) -> dict[str, Any]:
        counts = super().call_counts()
        with self.lock:
            counts["by_operation"] = dict(self.operations)
            counts["requestid_replays"] = self.replays
        return counts

    def dump_state(self) -> Any:
        with self.lock:
            return _wire({"realm_id": DEMO_REALM_ID, **self.books.dump()})

    def seed(self, spec: dict[str, Any]) -> Any:
        with self.lock:
            return self.books.seed(spec)

    # -- OAuth ----------------------------------------------------------------------
    def _discovery(self, request: Request) -> Response:
        base = self.url
        return Response(body={
            "issuer": f"{base}/op/v1",
            "authorization_endpoint": f"{base}/connect/oauth2",
            "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
            "jwks_uri": f"{base}/op/v1/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        })

    def _authorize(self, request: Request) -> Response:
        client_id = request.arg("client_id")
        redirect = request.arg("redirect_uri")
        if client_id not in self.issuer.clients or not redirect:
            return Response(status=400, body={"error": "invalid_request"})
        code = self.issuer.issue_code(client_id, request.arg("scope", "") or "")
        query = {"code": code, "state": request.arg("state", "") or "", "realmId": DEMO_REALM_ID}
        return Response(status=302, body=b"", headers={"Location": f"{redirect}?{urlencode(query)}"})

    def _client(self, request: Request, form: dict[str, str]) -> str | None:
        header = request.header("authorization") or ""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
        return client_id if self.issuer.client_ok(client_id, secret) else None

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        client_id = self._client(request, form)
        if client_id is None:
            return Response(status=401, body={"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            pair = None if token in self._revoked else self.issuer.refresh(token, client_id)
        elif grant == "authorization_code":
            pair = self.issuer.exchange_code(form.get("code", ""), client_id)
        else:
            return Response(status=400, body={"error": "unsupported_grant_type"})
        if pair is None:
            return Response(status=400, body={"error": "invalid_grant"})
        return Response(body={**pair, "token_type": "bearer", "x_refresh_token_expires_in": REFRESH_TOKEN_TTL})

    def _revoke(self, request: Request) -> Response:
        if self._client(request, {}) is None:
            return Response(status=401, body={"error": "invalid_client"})
        token = str(request.json().get("token", ""))
        with self.lock:
            self._revoked.add(token)
        return Response(body=b"")

    def _userinfo(self, request: Request) -> Response:
        self._authenticate(request)
        return Response(body={"sub": "demo-user", "email": "demo@atelier-demo.fr", "emailVerified": True,
                              "givenName": "Camille", "familyName": "Demo"})

    # -- Accounting API plumbing -------------------------------------------------------
    def _authenticate(self, request: Request) -> None:
        header = request.header("authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token in self._revoked or not self.issuer.check(token):
            # QBO's 401 body really is lower-case "fault"/"error", unlike every other Fault.
            raise HttpError(401, {"warnings": None, "intuitObject": None, "fault": {"error": [{
                "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                "detail": "Token expired or invalid", "code": "3200", "element": None}],
                "type": "AUTHENTICATION"}, "report": None, "queryResponse": None, "batchItemResponse": [],
                "attachableResponse": [], "syncErrorResponse": None, "requestId": None,
                "time": int(time.time() * 1000), "status": None, "cdcresponse": []})

    def _api(self, handler: Callable[[Request], Response], *, write: bool = False) -> Callable[[Request], Response]:
        """Wrap a company endpoint: bearer check, realm check, lock, ``requestid`` replay."""

        def run(request: Request) -> Response:
            self._authenticate(request)
            realm = request.params["realm"]
            if realm != DEMO_REALM_ID:
                raise fault(403, "3100", "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                            f"The token is not valid for realm {realm}", kind="AuthorizationFault")
            request_id = request.arg("requestid") if write else None
            with self.lock:
                key = (realm, request.path, request_id or "")
                if request_id and key in self._replies:
                    self.replays += 1
                    response = copy.deepcopy(self._replies[key])
                else:
                    response = handler(request)
                    if request_id and response.status == 200:
                        self._replies[key] = copy.deepcopy(response)
            return response

        return run

    # -- Accounting API endpoints ------------------------------------------------------------
    def _query(self, request: Request) -> Response:
        text = request.arg("query") if request.method == "GET" else request.body.decode("utf-8", "replace")
        entity = re.search(r"\bfrom\s+(\w+)", text or "", re.IGNORECASE)
        self.operations[f"query {canonical(entity.group(1)) if entity else '?'}"] += 1
        return _ok({"QueryResponse": self.books.query(text or "")})

    def _read(self, request: Request) -> Response:
        name = canonical(request.params["entity"])
        self.operations[f"read {name}"] += 1
        return _ok({name: self.books.get(name, request.params["id"])})

    def _write(self, request: Request) -> Response:
        name = canonical(request.params["entity"])
        body = request.json()
        if not isinstance(body, dict):
            raise fault(400, "2010", "Request has invalid or unsupported property", "the body must be an object")
        if request.arg("operation") == "delete":
            # python-quickbooks DeleteMixin.delete: POST /{entity}?operation=delete with {Id, SyncToken}
            self.operations[f"delete {name}"] += 1
            return _ok({name: self.books.delete(name, body)})
        self.operations[f"create {name}" if not body.get("Id") else f"update {name}"] += 1
        return _ok({name: self.books.write(name, body)})

    def _upload(self, request: Request) -> Response:
        parts = _multipart(request)
        results = []
        for field, (headers, body) in sorted(parts.items()):
            if not field.startswith("file_content_"):
                continue
            meta_part = parts.get(field.replace("file_content_", "file_metadata_"))
            meta = json.loads(meta_part[1] or b"{}") if meta_part else {}
            meta.setdefault("ContentType", headers.get("content-type", "application/octet-stream"))
            if not meta.get("FileName"):
                found = re.search(r'filename="([^"]*)"', headers.get("content-disposition", ""))
                meta["FileName"] = found.group(1) if found else field
            self.operations["upload Attachable"] += 1
            results.append({"Attachable": self.books.create_attachable(meta, decode_part(body, headers))})
        if not results:
            raise fault(400, "2020", "Required param missing, need to supply the required value for the API",
                        "no file_content_NN part in the upload", element="file_content_01")
        return _ok({"AttachableResponse": results})

    def _batch(self, request: Request) -> Response:
        now, window = time.monotonic(), self.scaled(self.batch_rule.window)
        while self._batch_stamps and now - self._batch_stamps[0] >= window:
            self._batch_stamps.popleft()
        if len(self._batch_stamps) >= (self.batch_rule.limit or 0):
            return self.rate_limited(self.batch_rule, window - (now - self._batch_stamps[0]))
        self._batch_stamps.append(now)
        items = request.json().get("BatchItemRequest") or []
        if len(items) > BATCH_LIMIT:
            raise fault(400, "6000", "Batch size limit exceeded",
                        f"A batch holds at most {BATCH_LIMIT} BatchItemRequest, got {len(items)}")
        self.operations["batch"] += 1
        answers = []
        for item in items:
            answer: dict[str, Any] = {"bId": item.get("bId")}
            try:
                if "Query" in item:
                    entity = re.search(r"\bfrom\s+(\w+)", item["Query"], re.IGNORECASE)
                    self.operations[f"batch query {canonical(entity.group(1)) if entity else '?'}"] += 1
                    answer["QueryResponse"] = self.books.query(item["Query"])
                else:
                    answer.update(self._batch_write(item))
            except HttpError as exc:
                answer["Fault"] = exc.response.body["Fault"]
            answers.append(answer)
        return _ok({"BatchItemResponse": answers})

    def _batch_write(self, item: dict[str, Any]) -> dict[str, Any]:
        entity = next((k for k in item if k not in ("bId", "operation", "optionsData")), None)
        if entity is None or item.get("operation", "create") not in ("create", "update"):
            raise fault(400, "500", "Unsupported Operation", f"batch operation {item.get('operation')}")
        name = canonical(entity)
        return {name: self.books.write(name, item[entity])}

    def _cdc(self, request: Request) -> Response:
        names = [n for n in (request.arg("entities") or "").split(",") if n.strip()]
        try:
            since = datetime.fromisoformat(request.arg("changedSince") or "")
        except ValueError:
            raise fault(400, "2010", "Request has invalid or unsupported property",
                        "changedSince must be an ISO 8601 timestamp", element="changedSince") from None
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        self.operations["cdc"] += 1
        return _ok({"CDCResponse": [{"QueryResponse": self.books.changed_since(names, since)}]})


def _multipart(request: Request) -> dict[str, tuple[dict[str, str], bytes]]:
    """Parts by field name. Tolerates the bare-LF framing python-quickbooks writes."""
    found = re.search(r'boundary="?([^";]+)"?', request.header("content-type") or "")
    if found is None:
        raise fault(400, "2010", "Request has invalid or unsupported property", "multipart boundary missing")
    parts: dict[str, tuple[dict[str, str], bytes]] = {}
    for chunk in request.body.split(b"--" + found.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk.lstrip(b"\n")
        cut = min((i for i in (chunk.find(b"\r\n\r\n"), chunk.find(b"\n\n")) if i >= 0), default=-1)
        if cut < 0:
            continue
        raw_headers = chunk[:cut]
        body = chunk[cut + 4 :] if chunk[cut : cut + 4] == b"\r\n\r\n" else chunk[cut + 2 :]
        body = body[:-2] if body.endswith(b"\r\n") else body[:-1] if body.endswith(b"\n") else body
        headers = {}
        for line in raw_headers.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        field = re.search(r'name="([^"]*)"', headers.get("content-disposition", ""))
        if field:
            parts[field.group(1)] = (headers, body)
    return parts


SANDBOX = QuickBooksSandbox


def connector_settings(box: Sandbox, secrets: Path) -> dict[str, Any]:
    """Settings that point the QuickBooks ledger at ``box`` (API and discovery document)."""
    from pouracquit.sandbox.launch import secret_file

    assert isinstance(box, QuickBooksSandbox)
    return {
        "vendor": "quickbooks",
        "base_url": box.url,
        "discovery_url": box.discovery_url,
        "realm_id": DEMO_REALM_ID,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": secret_file(secrets, "quickbooks_client_secret", DEMO_CLIENT_SECRET),
        "refresh_token": secret_file(secrets, "quickbooks_refresh_token", DEMO_REFRESH_TOKEN),
    }


def demo_seed(count: int, seed: int) -> dict[str, Any]:
    """The company is seeded at start; the demo invoices live in the CRM."""
    return {}
