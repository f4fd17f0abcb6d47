"""Salesforce emulator speaking the REST API's real shapes, over HTTPS.

simple-salesforce works against it unchanged: its session trusts the
sandbox's generated CA (``box.ca_pem``, see ``tls.py``) and the
instance URL comes from the token answer, as in production.

Facts emulated (sources in the Salesforce connector's report):

* OAuth 2.0 (``oauth.py``): the web server flow with PKCE and the
  refresh-token flow on ``POST /services/oauth2/token``.
* REST errors are a JSON list ``[{"message", "errorCode"}]``: 401
  ``INVALID_SESSION_ID`` "Session expired or invalid", 400
  ``MALFORMED_QUERY`` / ``INVALID_FIELD`` / ``INVALID_TYPE``, 404
  ``NOT_FOUND``, 403 ``REQUEST_LIMIT_EXCEEDED`` "TotalRequests Limit
  exceeded." once the org's rolling 24-hour API request allowance is used.
* Every API answer carries ``Sforce-Limit-Info: api-usage=n/N``.
* Query batches default to 2,000 records; ``Sforce-Query-Options:
  batchSize=n`` asks for 200..2,000; more is fetched from ``nextRecordsUrl``
  ``/services/data/vXX.X/query/01g...-2000`` until ``done``.
* ContentVersion insert with ``FirstPublishLocationId`` creates the
  ContentDocument and links it to that record.

Two listeners: the API over HTTPS at ``api_url`` (what connectors use), and
the ``/_sandbox/*`` control endpoints over plain HTTP at ``url``, so the
tools that drive every sandbox alike (fault knobs, state, seeding) need no CA.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pouracquit.sandbox.oauth import TokenIssuer
from pouracquit.sandbox.server import HttpError, RateRule, Request, Response, Sandbox, listen

from . import inserts, oauth
from .seed import seed_demo, seed_raw
from .soql import SoqlError, parse
from .store import SCHEMA, Org, fields_of, sf_time
from .tls import make_authority

_V = r"/services/data/v(?P<version>\d+\.\d)"
_CODES = {400: "BAD_REQUEST", 401: "INVALID_SESSION_ID", 403: "FORBIDDEN", 404: "NOT_FOUND",
          405: "METHOD_NOT_ALLOWED", 500: "UNKNOWN_EXCEPTION", 503: "SERVER_UNAVAILABLE"}
_STATUS_OF = {"MALFORMED_QUERY": 400, "INVALID_FIELD": 400, "INVALID_TYPE": 400, "INVALID_QUERY_FILTER_OPERATOR": 400,
              "FIELD_INTEGRITY_EXCEPTION": 400, "REQUIRED_FIELD_MISSING": 400, "INVALID_QUERY_LOCATOR": 400}
_MARK = "\u00a7dec\u00a7"  # "§dec§": survives json.dumps(ensure_ascii=False) untouched
_DECIMAL = re.compile(rf'"{_MARK}(-?[0-9.E+-]+)"')


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        text = format(value, "f")  # Salesforce prints number fields as doubles: 0.0, 1450.0, 68.5
        return f"{_MARK}{text if '.' in text else text + '.0'}"  # marker, replaced by a bare JSON number
    if isinstance(value, datetime):
        return sf_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def sf_json(value: Any) -> bytes:
    """JSON as Salesforce writes it: numbers as numbers (exact, from Decimal), datetimes ``...+0000``."""
    text = json.dumps(_plain(value), ensure_ascii=False)
    return _DECIMAL.sub(r"\1", text).encode()


class SalesforceSandbox(Sandbox):
    """A Salesforce org in memory, served over HTTPS with a generated CA.
    Demo credentials are class constants so a config file can point at them."""

    vendor = "salesforce"
    DEMO_CLIENT_ID = "3MVG9pouracquitDemoConsumerKey"
    DEMO_CLIENT_SECRET = "pouracquit-demo-consumer-secret"  # noqa: S105 - sandbox-only demo credential
    DEMO_REFRESH_TOKEN = "5Aep861pouracquitDemoRefreshToken"  # noqa: S105 - sandbox-only demo credential
    API_VERSION = "62.0"
    SESSION_TIMEOUT = 7200.0  # the org's default session timeout: 2 hours
    API_LIMIT = 15_000  # requests per rolling 24 hours (Developer Edition's allowance)
    BATCH_DEFAULT, BATCH_MIN, BATCH_MAX = 2000, 200, 2000

    def __init__(self, *, time_factor: float = 1.0, host: str = "127.0.0.1", port: int = 0,
                 api_limit: int | None = None, rotate_refresh_tokens: bool = False) -> None:
        authority = make_authority()
        super().__init__(time_factor=time_factor, host=host, port=port, ssl_context=authority.context)
        self.ca_pem = authority.ca_pem
        self.api_limit = api_limit or self.API_LIMIT
        self.rate_rules = (RateRule("TotalRequests", limit=self.api_limit, window=86_400.0),)
        self.org = Org()
        self.tokens = TokenIssuer(access_ttl=self.SESSION_TIMEOUT, rotate=rotate_refresh_tokens,
                                  time_factor=time_factor)
        self.tokens.register_client(self.DEMO_CLIENT_ID, self.DEMO_CLIENT_SECRET)
        self.tokens.add_refresh_token(self.DEMO_REFRESH_TOKEN, self.DEMO_CLIENT_ID, "api refresh_token")
        self.issued: set[str] = set()  # access tokens, for expire_sessions
        self._revoked: set[str] = set()
        self._locators: dict[str, tuple[str, list[str], tuple[str, ...], int]] = {}
        api = self._api
        self.challenges: dict[str, str] = {}  # authorisation code -> PKCE code_challenge (S256)
        self.route("GET", r"/services/oauth2/authorize", "oauth_authorize", lambda r: oauth.authorize(self, r))
        self.route("POST", r"/services/oauth2/token", "oauth_token", lambda r: oauth.token(self, r))
        self.route("GET", r"/services/data/?", "versions", self._versions)
        self.route("GET", rf"{_V}/query/?", "query", api(self._query))
        self.route("GET", rf"{_V}/query/(?P<locator>01g\w+)-(?P<offset>\d+)", "query_more", api(self._query_more))
        self.route("GET", rf"{_V}/sobjects/(?P<sobject>\w+)/(?P<id>\w+)", "sobject_get", api(self._get))
        self.route("PATCH", rf"{_V}/sobjects/(?P<sobject>\w+)/(?P<id>\w+)", "sobject_update", api(self._update))
        self.route("POST", rf"{_V}/sobjects/(?P<sobject>\w+)/?", "sobject_create", api(self._create))
        self.route("POST", rf"{_V}/composite/sobjects/?", "collection_create", api(self._create_collection))
        self.route("POST", r"/_sandbox/salesforce/records/(?P<id>\w+)", "sandbox_salesforce_touch", self._touch_route)

    # -- listeners ----------------------------------------------------------------
    def start(self) -> SalesforceSandbox:
        super().start()
        self._api_url = super().url
        self._control = listen(_ControlPlane(self), self._host, 0, name="salesforce-control")
        return self

    def stop(self) -> None:
        if getattr(self, "_control", None) is not None:
            self._control.shutdown()
            self._control.server_close()
            self._control = None
        super().stop()

    @property
    def api_url(self) -> str:
        """The HTTPS base URL of the API (the instance URL the token answer names)."""
        return self._api_url

    @property
    def url(self) -> str:
        """The plain-HTTP base URL of the ``/_sandbox/*`` control endpoints."""
        if getattr(self, "_control", None) is None:
            raise RuntimeError("sandbox not started")
        host, port = self._control.server_address[:2]
        return f"http://{host}:{port}"

    # -- Sandbox hooks ------------------------------------------------------------
    def error_body(self, status: int, message: str) -> Any:
        return [{"message": message, "errorCode": _CODES.get(status, "UNKNOWN_EXCEPTION")}]

    def rate_key(self, request: Request) -> str | None:
        return "org" if request.path.startswith("/services/data/v") else None

    def rate_limited(self, rule: RateRule, retry_after: float) -> Response:
        # Salesforce answers 403 without Retry-After: the allowance is a rolling 24 hours
        return Response(status=403, body=[{"message": "TotalRequests Limit exceeded.",
                                           "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                        headers={"Sforce-Limit-Info": self._usage()})

    def dump_state(self) -> dict[str, list[dict[str, Any]]]:
        with self.lock:
            return {sobject: [json.loads(sf_json(r)) for r in rows.values()]
                    for sobject, rows in self.org.records.items()}

    def seed(self, spec: dict[str, Any]) -> dict[str, int]:
        """``{"demo": {"count", "seed", "modstamp"?}}`` and/or ``{"records": {Object: [fields]},
        "modstamp"?}``; returns created counts by object."""
        counts: dict[str, int] = {}
        with self.lock:
            try:
                if "demo" in spec:
                    counts.update(seed_demo(self.org, **spec["demo"]))
                if "records" in spec:
                    for sobject, n in seed_raw(self.org, spec["records"], spec.get("modstamp")).items():
                        counts[sobject] = counts.get(sobject, 0) + n
            except (ValueError, SoqlError) as exc:
                raise HttpError(400, self.error_body(400, str(exc))) from None
        return counts

    # -- Python API for tests -------------------------------------------------------
    def touch(self, record_id: str, fields: dict[str, Any] | None = None, *, at: datetime | None = None
              ) -> dict[str, Any]:
        """Change ``fields`` (maybe none) of a record and bump its SystemModstamp."""
        with self.lock:
            return self.org.update(record_id, fields or {}, self.org.stamp(at))

    def expire_sessions(self) -> None:
        """Every access token issued so far stops working (as if the session timed out)."""
        with self.lock:
            self._revoked |= self.issued

    def api_usage(self) -> int:
        """Requests counted against the org's allowance in the current window."""
        with self.lock:
            window = self.scaled(self.rate_rules[0].window)
            now = time.monotonic()
            return sum(1 for t in self._stamps.get(("TotalRequests", "org"), ()) if now - t < window)

    # -- plumbing -------------------------------------------------------------------
    def _usage(self) -> str:
        return f"api-usage={self.api_usage()}/{self.api_limit}"

    def _fail(self, status: int, code: str, message: str) -> HttpError:
        return HttpError(status, [{"message": message, "errorCode": code}], {"Sforce-Limit-Info": self._usage()})

    def _api(self, handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        """Session check, API version check, Salesforce error shapes and the usage header."""

        def wrapped(request: Request) -> Response:
            header = request.header("authorization", "") or ""
            token = header[7:] if header.lower().startswith("bearer ") else header
            # a session id is "<org id>!<secret>"; the issuer knows the secret part
            if not token or token in self._revoked or not self.tokens.check(token.partition("!")[2]):
                raise self._fail(401, "INVALID_SESSION_ID", "Session expired or invalid")
            version = float(request.params["version"])
            if not 20.0 <= version <= 63.0:
                raise self._fail(404, "NOT_FOUND", "The requested resource does not exist")
            try:
                status, body = handler(request)
            except SoqlError as exc:
                raise self._fail(_STATUS_OF.get(exc.code, 400), exc.code, exc.message) from None
            return Response(status=status, body=None if body is None else sf_json(body),
                            headers={"Sforce-Limit-Info": self._usage()})

        return wrapped

    def _versions(self, request: Request) -> Response:
        return Response(body=[{"label": "Winter '25", "url": f"/services/data/v{self.API_VERSION}",
                               "version": self.API_VERSION}])

    # -- query ------------------------------------------------------------------------
    def _batch(self, request: Request) -> int:
        options = request.header("sforce-query-options", "") or ""
        found = re.search(r"batchSize=(\d+)", options)
        size = int(found.group(1)) if found else self.BATCH_DEFAULT
        return min(max(size, self.BATCH_MIN), self.BATCH_MAX)

    def _answer(self, version: str, locator: str, ids: list[str], sobject: str, fields: tuple[str, ...],
                offset: int, batch: int) -> dict[str, Any]:
        chunk = ids[offset:offset + batch]
        rows = self.org.records[sobject]
        records = [self.org.view(sobject, rows[i], fields, version) for i in chunk if i in rows]
        answer: dict[str, Any] = {"totalSize": len(ids), "done": offset + batch >= len(ids), "records": records}
        if not answer["done"]:
            answer["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{offset + batch}"
        return answer

    def _query(self, request: Request) -> tuple[int, Any]:
        text = request.arg("q")
        if not text:
            raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
        query = parse(text)
        batch = self._batch(request)
        with self.lock:
            rows = self.org.run(query)
            sobject = next(o for o in SCHEMA if o.lower() == query.sobject.lower())
            ids = [r["Id"] for r in rows]
            locator = "01g" + secrets.token_hex(8)
            if len(ids) > batch:
                self._locators[locator] = (sobject, ids, query.fields, batch)
            return 200, self._answer(request.params["version"], locator, ids, sobject, query.fields, 0, batch)

    def _query_more(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            found = self._locators.get(request.params["locator"])
            if found is None:
                raise SoqlError("INVALID_QUERY_LOCATOR", "invalid query locator")
            sobject, ids, fields, batch = found
            offset = int(request.params["offset"])
            answer = self._answer(request.params["version"], request.params["locator"], ids, sobject, fields,
                                  offset, batch)
            if answer["done"]:
                self._locators.pop(request.params["locator"], None)
            return 200, answer

    # -- sObject rows ----------------------------------------------------------------
    def _sobject(self, request: Request) -> str:
        name = request.params["sobject"]
        sobject = next((o for o in SCHEMA if o.lower() == name.lower()), None)
        if sobject is None:
            raise self._fail(404, "NOT_FOUND", "The requested resource does not exist")
        return sobject

    def _get(self, request: Request) -> tuple[int, Any]:
        sobject = self._sobject(request)
        with self.lock:
            found = self.org.find(request.params["id"])
            if found is None or found[0] != sobject:
                raise self._fail(404, "NOT_FOUND", "The requested resource does not exist")
            wanted = [f for f in (request.arg("fields") or "").split(",") if f]
            names = tuple(self.org.canonical(sobject, f) for f in wanted) or tuple(
                f for f in fields_of(sobject) if f != "VersionData")
            return 200, self.org.view(sobject, found[1], names, request.params["version"])

    def _update(self, request: Request) -> tuple[int, Any]:
        sobject = self._sobject(request)
        with self.lock:
            found = self.org.find(request.params["id"])
            if found is None or found[0] != sobject:
                raise self._fail(404, "NOT_FOUND", "The requested resource does not exist")
            self.org.update(found[1]["Id"], request.json(), self.org.stamp())
            return 204, None

    def _create(self, request: Request) -> tuple[int, Any]:
        sobject = self._sobject(request)
        values = request.json()
        if not isinstance(values, dict):
            raise SoqlError("JSON_PARSER_ERROR", "Cannot deserialize instance of SObject from a non-object body")
        with self.lock:
            record = inserts.insert(self.org, sobject, values, self.org.stamp())
            return 201, {"id": record["Id"], "success": True, "errors": []}

    def _create_collection(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            return 200, inserts.create_collection(self.org, request.json(), self.org.stamp())

    def _touch_route(self, request: Request) -> Response:
        body = request.json()
        try:
            record = self.touch(request.params["id"], body.get("fields") or {})
        except KeyError:
            raise HttpError(404, self.error_body(404, "no such record")) from None
        return Response(body=sf_json(record))


class _ControlPlane:
    """What the plain-HTTP listener dispatches to: the control endpoints only."""

    def __init__(self, box: SalesforceSandbox) -> None:
        self.box = box

    def error_body(self, status: int, message: str) -> Any:
        return self.box.error_body(status, message)

    def dispatch(self, request: Request) -> Response:
        if not request.path.startswith("/_sandbox/"):
            return Response(404, self.error_body(404, f"the API is served over HTTPS at {self.box.api_url}"))
        return self.box.dispatch(request)


SANDBOX = SalesforceSandbox


def connector_settings(box: Sandbox, secrets_dir: Path) -> dict[str, Any]:
    """Settings pointing the Salesforce source at ``box`` through its demo connected app;
    the sandbox's CA certificate is written next to the secrets and named as ``ca_bundle``."""
    from pouracquit.sandbox.launch import secret_file

    assert isinstance(box, SalesforceSandbox)
    secrets_dir.mkdir(parents=True, exist_ok=True)
    ca = secrets_dir / "salesforce_sandbox_ca.pem"
    ca.write_bytes(box.ca_pem)
    return {
        "vendor": "salesforce",
        "login_url": box.api_url,
        "client_id": SalesforceSandbox.DEMO_CLIENT_ID,
        "client_secret": secret_file(secrets_dir, "salesforce_client_secret", SalesforceSandbox.DEMO_CLIENT_SECRET),
        "refresh_token": secret_file(secrets_dir, "salesforce_refresh_token", SalesforceSandbox.DEMO_REFRESH_TOKEN),
        "api_version": SalesforceSandbox.API_VERSION,
        "ca_bundle": str(ca),
    }


def demo_seed(count: int, seed: int) -> dict[str, Any]:
    return {"demo": {"count": count, "seed": seed}}
