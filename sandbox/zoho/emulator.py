"""Zoho CRM emulator speaking the v8 REST shapes, COQL and Zoho Accounts OAuth.

Facts emulated (sources and what is still unverified: docs/vendors.md): the
accounts server answers ``POST /oauth/v2/token`` with
``access_token``, ``api_domain``, ``token_type`` and ``expires_in`` = 3600, and
refuses with HTTP 200 and ``{"error": "invalid_code" | "invalid_client"}``;
API calls carry ``Authorization: Zoho-oauthtoken <token>``; errors are
``{"code", "details", "message", "status": "error"}`` (401 ``INVALID_TOKEN`` /
``AUTHENTICATION_FAILURE``, 400 ``INVALID_DATA`` / ``REQUIRED_PARAM_MISSING`` /
``SYNTAX_ERROR`` / ``INVALID_QUERY`` / ``LIMIT_EXCEEDED``, 429
``TOO_MANY_REQUESTS``); an empty result is 204 No Content; COQL is ``POST
/crm/v8/coql`` (rules in ``coql.py``); ``GET /crm/v8/{module}`` needs
``fields`` (at most 50), takes ``ids`` (at most 100), ``page``/``per_page``
(200) up to 2,000 records and ``page_token`` beyond, and ``If-Modified-Since``.
Limits: API credits per rolling 24 h and concurrent calls per org and app
(Standard edition with 10 users: 52,500 credits, 10 concurrent calls).
``api_domain`` is the sandbox's own URL, so a connector that honours it never
needs an API host setting.
"""

from __future__ import annotations

import base64
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from pouracquit.sandbox.oauth import TokenIssuer
from pouracquit.sandbox.server import Handler, HttpError, RateRule, Request, Response, Sandbox, multipart_fields

from . import notes
from .coql import CoqlError, parse, run
from .seed import seed_demo, seed_raw
from .store import MODULES, ZohoStore, parse_zoho_time, public

_CODES = {400: "INVALID_DATA", 401: "AUTHENTICATION_FAILURE", 403: "NO_PERMISSION", 404: "INVALID_URL_PATTERN",
          405: "INVALID_REQUEST_METHOD", 429: "TOO_MANY_REQUESTS"}
_MODULE = r"(?P<module>[A-Za-z_]+)"
_ID = r"(?P<id>\d+)"
# Fields every record of a module has even when no record is stored yet.
_STANDARD = {"id", "Created_Time", "Modified_Time", "Owner"}
_LINE_ITEMS = {"Invoiced_Items"}  # subform line items: not selectable in COQL


def _error(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> HttpError:
    return HttpError(status, {"code": code, "details": details or {}, "message": message, "status": "error"})


class ZohoSandbox(Sandbox):
    """A Zoho CRM org in memory, with its accounts server on the same port."""

    vendor = "zoho"
    DEMO_CLIENT_ID = "1000.POURACQUITDEMOCLIENT"
    DEMO_CLIENT_SECRET = "pouracquit-demo-zoho-secret"  # noqa: S105 - sandbox-only demo credential
    DEMO_REFRESH_TOKEN = "1000.pouracquit-demo.refresh-token"  # noqa: S105 - sandbox-only demo credential
    ACCESS_TTL = 3600.0
    DAILY_CREDITS = 52_500  # Standard: 50,000 + 10 users x 250, rolling 24 h
    CONCURRENCY = 10  # Standard edition, per org and app
    rate_rules = (RateRule("API_CREDITS", limit=DAILY_CREDITS, window=86_400.0),
                  RateRule("CONCURRENCY", concurrent=CONCURRENCY))

    def __init__(self, *, time_factor: float = 1.0, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(time_factor=time_factor, host=host, port=port)
        self.store = ZohoStore()
        self.tokens = TokenIssuer(access_ttl=self.ACCESS_TTL, rotate=False, time_factor=time_factor)
        self.tokens.register_client(self.DEMO_CLIENT_ID, self.DEMO_CLIENT_SECRET)
        self.tokens.add_refresh_token(self.DEMO_REFRESH_TOKEN, self.DEMO_CLIENT_ID, "ZohoCRM.modules.ALL")
        self.api_domain: str | None = None  # None: this sandbox's own URL
        # Whether list calls answer subform fields (Invoiced_Items) they are asked for: Zoho documents
        # subform data on the single-record read only, so tests can play an org that leaves them out.
        self.list_subforms = True
        self._issued: set[str] = set()
        self._revoked: set[str] = set()
        api = self._api
        self.route("GET", r"/oauth/v2/auth", "oauth_authorize", self._authorize)
        self.route("POST", r"/oauth/v2/token", "oauth_token", self._token)
        self._offline_codes: set[str] = set()
        self.route("POST", r"/crm/v8/coql", "coql", api(self._coql))
        self.route("GET", rf"/crm/v8/{_MODULE}", "records_list", api(self._list))
        self.route("GET", rf"/crm/v8/{_MODULE}/{_ID}", "record_get", api(self._get))
        self.route("GET", rf"/crm/v8/{_MODULE}/{_ID}/Attachments", "attachments_list", api(self._attachments))
        self.route("POST", rf"/crm/v8/{_MODULE}/{_ID}/Attachments", "attachments_upload", api(self._upload))
        self.notes = notes.install(self, api, _MODULE, _ID)  # notes on a record, by record id
        self.route("POST", rf"/_sandbox/zoho/records/{_ID}", "sandbox_zoho_touch", self._touch_route)

    # -- Sandbox hooks ------------------------------------------------------------
    def error_body(self, status: int, message: str) -> Any:
        code = _CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST")
        return {"code": code, "details": {}, "message": message, "status": "error"}

    def rate_key(self, request: Request) -> str | None:
        return "org" if request.path.startswith("/crm/") else None

    def rate_limited(self, rule: RateRule, retry_after: float) -> Response:
        # Zoho documents no Retry-After on this 429; clients back off on their own.
        message = ("You have exceeded the concurrency limit" if rule.name == "CONCURRENCY"
                   else "You have reached your API credit limit for the 24 hour window")
        return Response(status=429, body={"code": "TOO_MANY_REQUESTS", "details": {"limit_type": rule.name},
                                          "message": message, "status": "error"})

    def dump_state(self) -> dict[str, Any]:
        with self.lock:
            state: dict[str, Any] = {m: [public(r) for r in recs.values()] for m, recs in self.store.records.items()}
            state["attachments"] = {parent: [{k: v for k, v in a.items() if k != "content"} for a in items]
                                    for parent, items in self.store.attachments.items()}
            return state

    def seed(self, spec: dict[str, Any]) -> dict[str, int]:
        """``{"demo": {"count", "seed", "at"?}}`` and/or ``{"records": {module: [raw records]}}``;
        returns created counts by module."""
        counts: dict[str, int] = {}
        with self.lock:
            if "demo" in spec:
                counts.update(seed_demo(self.store, **spec["demo"]))
            if "records" in spec:
                try:
                    for module, n in seed_raw(self.store, spec["records"]).items():
                        counts[module] = counts.get(module, 0) + n
                except ValueError as exc:
                    raise HttpError(400, self.error_body(400, str(exc))) from None
        return counts

    # -- Python API for tests -------------------------------------------------------
    def touch(self, record_id: str, fields: dict[str, Any] | None = None, *, module: str = "Invoices",
              at: int | None = None) -> dict[str, Any]:
        """Change fields (e.g. mark an invoice paid) and bump ``Modified_Time``."""
        with self.lock:
            return public(self.store.update(module, record_id, fields or {}, at=at))

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working (as if its hour were up)."""
        with self.lock:
            self._revoked |= self._issued

    # -- plumbing -------------------------------------------------------------------
    def _authenticate(self, request: Request) -> None:
        header = request.header("authorization", "") or ""
        scheme, _, token = header.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token:
            raise _error(401, "AUTHENTICATION_FAILURE", "Authentication failed")
        if token in self._revoked or not self.tokens.check(token.strip()):
            raise _error(401, "INVALID_TOKEN", "invalid oauth token")

    def _api(self, handler: Handler) -> Handler:
        def wrapped(request: Request) -> Response:
            self._authenticate(request)
            module = request.params.get("module")
            if module is not None and module not in MODULES:
                raise _error(400, "INVALID_MODULE", "the module name given seems to be invalid", {"module": module})
            return handler(request)

        return wrapped

    def _known(self, module: str) -> Any:
        with self.lock:
            names = set(_STANDARD).union(*(r.keys() for r in self.store.records[module].values()))
        return lambda name: name.split(".")[0] in names and name.split(".")[0] not in _LINE_ITEMS

    @staticmethod
    def _fields(request: Request, limit: int = 50) -> list[str]:
        raw = request.arg("fields")
        if not raw:
            raise _error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                         {"param_name": "fields"})
        names = [f for f in raw.split(",") if f]
        if len(names) > limit:
            raise _error(400, "LIMIT_EXCEEDED", f"at most {limit} fields", {"param_name": "fields", "limit": limit})
        return names

    @staticmethod
    def _select(record: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
        shown = public(record)
        if names is None:
            return shown
        return {"id": record["id"], **{n: shown.get(n) for n in names if n != "id"}}

    # -- OAuth ----------------------------------------------------------------------
    def _authorize(self, request: Request) -> Response:
        """The consent page, approved at once: back to ``redirect_uri`` with the code,
        the state, and the data centre (``location``, ``accounts-server``) as Zoho does."""
        client_id, redirect = request.arg("client_id"), request.arg("redirect_uri")
        if client_id not in self.tokens.clients or not redirect:
            return Response(400, {"error": "invalid_client"})
        code = self.tokens.issue_code(client_id, request.arg("scope", "") or "")
        if request.arg("access_type") == "offline":  # only an offline grant yields a refresh token
            with self.lock:
                self._offline_codes.add(code)
        query = {"state": request.arg("state", "") or "", "code": code, "location": "us", "accounts-server": self.url}
        separator = "&" if "?" in redirect else "?"
        return Response(302, b"", headers={"Location": f"{redirect}{separator}{urlencode(query)}"})

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in {**request.query, **parse_qs(request.body.decode())}.items()}
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return Response(body={"error": "unsupported_grant_type"})
        if not self.tokens.client_ok(form.get("client_id"), form.get("client_secret")):
            return Response(body={"error": "invalid_client"})  # Zoho answers 200 with an error member
        if grant == "authorization_code":
            code = form.get("code", "")
            pair = self.tokens.exchange_code(code, form.get("client_id") or "")
            with self.lock:
                offline = code in self._offline_codes
                self._offline_codes.discard(code)
        else:
            pair = self.tokens.refresh(form.get("refresh_token", ""), form.get("client_id") or "")
            offline = self.tokens.rotate
        if pair is None:
            return Response(body={"error": "invalid_code"})
        with self.lock:
            self._issued.add(pair["access_token"])
        body = {"access_token": pair["access_token"], "scope": "ZohoCRM.modules.ALL ZohoCRM.coql.READ",
                "api_domain": self.api_domain or self.url, "token_type": "Bearer", "expires_in": int(self.ACCESS_TTL)}
        if offline:
            body["refresh_token"] = pair["refresh_token"]
        return Response(body=body)

    # -- records ----------------------------------------------------------------------
    def _coql(self, request: Request) -> Response:
        query_text = (request.json() or {}).get("select_query")
        if not isinstance(query_text, str) or not query_text.strip():
            raise _error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                         {"param_name": "select_query"})
        try:
            query = parse(query_text, {m: self._known(m) for m in MODULES})
            with self.lock:
                rows, more = run(query, list(self.store.records[query.module].values()))
        except CoqlError as exc:
            raise _error(400, exc.code, exc.message, exc.details) from None
        if not rows:
            return Response(status=204)
        return Response(body={"data": rows, "info": {"count": len(rows), "more_records": more}})

    def _list(self, request: Request) -> Response:
        module, names = request.params["module"], self._fields(request)
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        if len(ids) > 100:
            raise _error(400, "LIMIT_EXCEEDED", "at most 100 ids", {"param_name": "ids", "limit": 100})
        per_page = int(request.arg("per_page", "200") or 200)
        if not 1 <= per_page <= 200:
            raise _error(400, "INVALID_DATA", "per_page must be between 1 and 200", {"param_name": "per_page"})
        token = request.arg("page_token")
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode())
            except ValueError:
                raise _error(400, "INVALID_DATA", "invalid page_token", {"param_name": "page_token"}) from None
            page = start // per_page + 1
        else:
            page = int(request.arg("page", "1") or 1)
            start = (page - 1) * per_page
            if start + per_page > 2000:
                raise _error(400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                             "use page_token to fetch records beyond 2000", {"limit": 2000})
        sort_by = request.arg("sort_by", "id") or "id"
        descending = (request.arg("sort_order", "desc" if sort_by != "id" else "asc") or "") == "desc"
        since = request.header("if-modified-since")
        with self.lock:
            records = list(self.store.records[module].values())
            if ids:
                wanted = set(ids)
                records = [r for r in records if r["id"] in wanted]
            if since:
                records = [r for r in records if r["_mtime"] > _since(since)]
            key = {"Modified_Time": lambda r: (r["_mtime"], int(r["id"])),
                   "Created_Time": lambda r: (r["Created_Time"], int(r["id"]))}.get(sort_by, lambda r: int(r["id"]))
            records.sort(key=key, reverse=descending)
            shown = names if self.list_subforms else [n for n in names if n not in _LINE_ITEMS]
            chunk = [self._select(r, shown) for r in records[start:start + per_page]]
        if not chunk:
            return Response(status=304 if since else 204)
        more = start + per_page < len(records)
        info: dict[str, Any] = {"per_page": per_page, "count": len(chunk), "page": page, "sort_by": sort_by,
                                "sort_order": "desc" if descending else "asc", "more_records": more,
                                "next_page_token": None, "previous_page_token": None, "page_token_expiry": None}
        if more:
            info["next_page_token"] = base64.urlsafe_b64encode(str(start + per_page).encode()).decode()
        return Response(body={"data": chunk, "info": info})

    def _get(self, request: Request) -> Response:
        with self.lock:
            record = self.store.records[request.params["module"]].get(request.params["id"])
            if record is None:
                return Response(status=204)
            return Response(body={"data": [self._select(record, None)]})

    def _parent(self, request: Request) -> dict[str, Any]:
        record = self.store.records[request.params["module"]].get(request.params["id"])
        if record is None:
            raise _error(400, "INVALID_DATA", "the related id given seems to be invalid",
                         {"id": request.params["id"]})
        return record

    def _attachments(self, request: Request) -> Response:
        names = self._fields(request)
        with self.lock:
            self._parent(request)
            items = [{"id": a["id"], **{n: a.get(n) for n in names if n != "id"}}
                     for a in self.store.attachments.get(request.params["id"], [])]
        if not items:
            return Response(status=204)
        return Response(body={"data": items, "info": {"per_page": 200, "count": len(items), "page": 1,
                                                      "more_records": False}})

    def _upload(self, request: Request) -> Response:
        parts = _multipart(request)
        if "file" not in parts:
            raise _error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                         {"param_name": "file"})
        content, name = parts["file"]
        with self.lock:
            self._parent(request)
            item = self.store.attach(request.params["id"], name or "attachment", content)
        owner = {"name": "Sandbox Admin", "id": "5725767000000250001"}
        return Response(body={"data": [{"code": "SUCCESS", "details": {
            "Modified_Time": item["Modified_Time"], "Modified_By": owner, "Created_Time": item["Created_Time"],
            "id": item["id"], "Created_By": owner, "$file_id": item["$file_id"]},
            "message": "attachment uploaded successfully", "status": "success"}]})

    def _touch_route(self, request: Request) -> Response:
        body = request.json()
        try:
            record = self.touch(request.params["id"], body.get("fields") or {},
                                module=body.get("module", "Invoices"), at=body.get("at"))
        except KeyError:
            raise HttpError(404, self.error_body(404, "no such record")) from None
        return Response(body={"data": [record]})


def _since(value: str) -> int:
    """An If-Modified-Since value (Zoho takes ISO 8601; an HTTP date is accepted too) in epoch seconds."""
    try:
        return parse_zoho_time(value)
    except ValueError:
        pass
    try:
        return int(parsedate_to_datetime(value).astimezone(UTC).timestamp())
    except (TypeError, ValueError):
        raise _error(400, "INVALID_DATA", "invalid If-Modified-Since header",
                     {"header_name": "If-Modified-Since"}) from None


def _multipart(request: Request) -> dict[str, tuple[bytes, str]]:
    fields = multipart_fields(request)
    if fields is None:
        content_type = request.header("content-type", "") or ""
        raise _error(415, "INVALID_REQUEST", f"expected multipart/form-data, got {content_type!r}")
    return fields


SANDBOX = ZohoSandbox


def connector_settings(box: Sandbox, secrets: Path) -> dict[str, Any]:
    """Settings that point the Zoho source at ``box``: its accounts server is
    the sandbox, and the token response names the sandbox as ``api_domain``."""
    from pouracquit.sandbox.launch import secret_file

    return {
        "vendor": "zoho",
        "accounts_url": box.url,
        "client_id": ZohoSandbox.DEMO_CLIENT_ID,
        "client_secret": secret_file(secrets, "zoho_client_secret", ZohoSandbox.DEMO_CLIENT_SECRET),
        "refresh_token": secret_file(secrets, "zoho_refresh_token", ZohoSandbox.DEMO_REFRESH_TOKEN),
    }


def demo_seed(count: int, seed: int) -> dict[str, Any]:
    return {"demo": {"count": count, "seed": seed}}


__all__ = ["SANDBOX", "ZohoSandbox", "connector_settings", "demo_seed"]
