"""HubSpot emulator speaking the real CRM v3/v4, Files v3 and OAuth (2026-03 and v1) shapes.

The official ``hubspot-api-client`` works against it unchanged; only the host
differs: ``hubspot.Client.create(access_token=..., host=sandbox.url)``.

Facts emulated (sources: docs/vendors.md and the comments beside each shape):
access tokens live 1800 s and refresh tokens do not rotate; errors are
``{"status": "error", "message", "correlationId", "category"}``, a call without
one of the scopes it needs is 403 ``MISSING_SCOPES``; OAuth (``oauth``)
answers RFC 6749 errors; associations: ``associations``; the burst limit is
100 requests per 10 s (``TEN_SECONDLY_ROLLING``, Free/Starter private apps;
190 on Professional/Enterprise) and CRM search is limited to 5 requests per
second and 10,000 results per query. Data model: see ``hubspot_store`` and
``hubspot_seed``; search rules: ``hubspot_search``.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pouracquit.sandbox.oauth import TokenIssuer
from pouracquit.sandbox.server import Handler, HttpError, RateRule, Request, Response, Sandbox

from . import associations, batch, files, oauth
from .search import SortedIndex, run_search, validation_error
from .seed import seed_demo, seed_raw
from .store import OBJECT_TYPES, Store
from .webhooks import WebhookSender

_CATEGORY = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
             404: "OBJECT_NOT_FOUND", 409: "CONFLICT", 429: "RATE_LIMITS"}
_TYPE = r"(?P<type>[a-z_]+)"


class HubSpotSandbox(Sandbox):
    """A HubSpot portal in memory. Demo credentials are class constants so a
    config file can point at them."""

    vendor = "hubspot"
    DEMO_CLIENT_ID = "pouracquit-demo-client"
    DEMO_CLIENT_SECRET = "pouracquit-demo-secret"  # noqa: S105 - sandbox-only demo credential
    DEMO_REFRESH_TOKEN = "pouracquit-demo-refresh-token"  # noqa: S105 - sandbox-only demo credential
    DEMO_PRIVATE_APP_TOKEN = "pat-eu1-pouracquit-demo"  # noqa: S105 - sandbox-only demo credential
    ACCESS_TTL = 1800.0
    BURST_LIMIT = 100
    SEARCH_PER_SECOND = 5
    SEARCH_CAP = 10_000
    PORTAL_ID = 146_000_001
    APP_ID = 2_001
    # What the demo app's ready-made grant was installed with: what the HubSpot source asks for.
    DEMO_SCOPES = ("oauth crm.objects.invoices.read crm.objects.line_items.read crm.objects.contacts.read "
                   "crm.objects.companies.read crm.objects.deals.read crm.objects.contacts.write files")
    rate_rules = (RateRule("TEN_SECONDLY_ROLLING", limit=BURST_LIMIT, window=10.0),)

    def __init__(self, *, time_factor: float = 1.0, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(time_factor=time_factor, host=host, port=port)
        self.store = Store()
        self.tokens = TokenIssuer(access_ttl=self.ACCESS_TTL, rotate=False, time_factor=time_factor)
        self.tokens.register_client(self.DEMO_CLIENT_ID, self.DEMO_CLIENT_SECRET)
        self.tokens.add_refresh_token(self.DEMO_REFRESH_TOKEN, self.DEMO_CLIENT_ID, self.DEMO_SCOPES)
        self.tokens.add_static_token(self.DEMO_PRIVATE_APP_TOKEN)
        self.issued: set[str] = set()
        self._revoked: set[str] = set()
        self._searches: deque[float] = deque()
        self._indexes: dict[str, tuple[int, SortedIndex]] = {}
        api = self._api
        self.route("POST", r"/oauth/2026-03/token", "oauth_token",
                   lambda r: oauth.token(self, r, versioned=True))
        self.route("POST", r"/oauth/v1/token", "oauth_token_v1",
                   lambda r: oauth.token(self, r, versioned=False))
        self.route("GET", r"/oauth/authorize", "oauth_authorize", lambda r: oauth.authorize(self, r))
        self.route("POST", rf"/crm/v3/objects/{_TYPE}/search", "crm_search",
                   api(self._search, "crm_search", search=True))
        self.route("POST", rf"/crm/v3/objects/{_TYPE}/batch/read", "crm_batch_read",
                   api(self._batch_read, "crm_batch_read"))
        self.route("GET", rf"/crm/v3/objects/{_TYPE}", "crm_list", api(self._list, "crm_list"))
        self.route("GET", rf"/crm/v3/objects/{_TYPE}/(?P<id>\d+)", "crm_get", api(self._get, "crm_get"))
        self.route("PATCH", rf"/crm/v3/objects/{_TYPE}/(?P<id>\d+)", "crm_update", api(self._update, "crm_update"))
        self.route("POST", rf"/crm/v3/objects/{_TYPE}", "crm_create",
                   api(lambda r: batch.create(self, r), "crm_create"))
        self.route("POST", rf"/crm/v3/objects/{_TYPE}/batch/create", "crm_batch_create",
                   api(lambda r: batch.batch_create(self, r), "crm_batch_create"))
        pair = r"(?P<from>[a-z_]+)/(?P<to>[a-z_]+)"
        self.route("POST", rf"/crm/v4/associations/{pair}/batch/read", "assoc_batch_read",
                   api(lambda r: associations.batch_read(self, r), "assoc_batch_read"))
        self.route("GET", rf"/crm/v4/associations/{pair}/labels", "assoc_labels",
                   api(lambda r: associations.labels(self, r), "assoc_labels"))
        self.route("PUT", rf"/crm/v4/objects/{_TYPE}/(?P<id>\d+)/associations/default/(?P<to>[a-z_]+)/(?P<to_id>\d+)",
                   "assoc_default", api(lambda r: associations.create_default(self, r), "assoc_default"))
        self.route("POST", r"/files/v3/files", "files_upload",
                   api(lambda r: files.upload(self, r), "files_upload"))
        self.route("GET", r"/files/v3/files/search", "files_search",
                   api(lambda r: files.search(self, r), "files_search"))
        self.route("GET", r"/files/v3/files/(?P<id>\d+)", "files_get",
                   api(lambda r: files.get(self, r), "files_get"))
        self.route("POST", r"/_sandbox/hubspot/invoices/(?P<id>\d+)", "sandbox_hubspot_touch", self._touch_route)
        self.webhooks = WebhookSender(self.DEMO_CLIENT_SECRET, portal_id=self.PORTAL_ID, app_id=self.APP_ID)
        self.route("POST", r"/_sandbox/webhooks", "sandbox_webhooks", self._webhooks_route)

    # -- Sandbox hooks ------------------------------------------------------------
    def error_body(self, status: int, message: str) -> Any:
        return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                "category": _CATEGORY.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")}

    def rate_key(self, request: Request) -> str | None:
        # One portal: every app token shares the account's burst budget.
        return "portal" if request.path.startswith(("/crm/", "/files/")) else None

    def rate_limited(self, rule: RateRule, retry_after: float) -> Response:
        secondly = rule.name == "SECONDLY"
        body = {
            "status": "error",
            "message": "You have reached your secondly limit." if secondly
            else "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
            "policyName": "SECONDLY" if secondly else "TEN_SECONDLY_ROLLING", "groupName": "api-calls",
        }
        headers = {"Retry-After": self.format_seconds(retry_after)}
        if not secondly:
            headers.update(self._limit_headers(remaining=0))
        return Response(status=429, body=body, headers=headers)

    def dump_state(self) -> dict[str, Any]:
        with self.lock:
            state: dict[str, Any] = {
                t: [self.store.with_associations(t, r) for r in records.values()]
                for t, records in self.store.objects.items()
            }
            state["files"] = [dict(f, content=None) for f in self.store.files.values()]
            return state

    def seed(self, spec: dict[str, Any]) -> dict[str, int]:
        """``{"demo": {"count": 60, "seed": 7, "timestamp_ms"?: int}}`` and/or
        ``{"objects": {type: [raw objects]}}``; returns created counts by type."""
        counts: dict[str, int] = {}
        with self.lock:
            if "demo" in spec:
                counts.update(seed_demo(self.store, **spec["demo"]))
            if "objects" in spec:
                try:
                    for t, n in seed_raw(self.store, spec["objects"]).items():
                        counts[t] = counts.get(t, 0) + n
                except ValueError as exc:
                    raise HttpError(400, self.error_body(400, str(exc))) from None
        return counts

    # -- Python API for tests -------------------------------------------------------
    def touch(self, object_id: str, properties: dict[str, Any] | None = None, *,
              object_type: str = "invoices", at_ms: int | None = None) -> dict[str, Any]:
        """Change properties (e.g. mark an invoice paid) and bump ``hs_lastmodifieddate``."""
        with self.lock:
            record = self.store.update(object_type, object_id, properties or {}, at_ms=at_ms)
        if object_type == "invoices":
            self.webhooks.invoice_changed(object_id, properties or {"hs_lastmodifieddate": record["updatedAt"]})
        return record

    def expire_access_tokens(self) -> None:
        """Every OAuth access token issued so far stops working (as if expired)."""
        with self.lock:
            self._revoked |= self.issued

    # -- plumbing -------------------------------------------------------------------
    def _limit_headers(self, remaining: int | None = None) -> dict[str, str]:
        rule = self.rate_rules[0]
        if remaining is None:
            window = self.scaled(rule.window)
            now = time.monotonic()
            used = sum(1 for t in self._stamps.get((rule.name, "portal"), ()) if now - t < window)
            remaining = max(0, (rule.limit or 0) - used)
        return {"X-HubSpot-RateLimit-Max": str(rule.limit),
                "X-HubSpot-RateLimit-Remaining": str(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(rule.window * 1000)),
                "X-HubSpot-RateLimit-Daily": "250000", "X-HubSpot-RateLimit-Daily-Remaining": "249000"}

    def _authenticate(self, request: Request, route: str) -> None:
        header = request.header("authorization", "") or ""
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if token and token not in self._revoked and self.tokens.check(token):
            needed, granted = oauth.needed_scopes(route, request), self.tokens.scopes(token)
            if granted is not None and needed and not needed & granted:
                raise HttpError(403, {
                    "status": "error", "message": "This app hasn't been granted all required scopes to make this "
                    "call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
                    "correlationId": str(uuid.uuid4()), "category": "MISSING_SCOPES",
                    "errors": [{"message": f"One or more of the following scopes are required: {sorted(needed)}",
                                "context": {"requiredGranularScopes": sorted(needed)}}]})
            return
        raise HttpError(401, {
            "status": "error",
            "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                       "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "correlationId": str(uuid.uuid4()), "category": "INVALID_AUTHENTICATION"})

    def _check_search_rate(self) -> None:
        with self.lock:
            now, window = time.monotonic(), self.scaled(1.0)
            while self._searches and now - self._searches[0] >= window:
                self._searches.popleft()
            if len(self._searches) >= self.SEARCH_PER_SECOND:
                wait = window - (now - self._searches[0])
                raise _Limited(self.rate_limited(
                    RateRule("SECONDLY", limit=self.SEARCH_PER_SECOND, window=1.0), wait))
            self._searches.append(now)

    def _api(self, handler: Handler, route: str, *, search: bool = False) -> Handler:
        """Bearer auth and scopes, HubSpot's rate headers (not on search, as HubSpot) and limits."""

        def wrapped(request: Request) -> Response:
            self._authenticate(request, route)
            if request.params.get("type") and request.params["type"] not in OBJECT_TYPES:
                message = f"Unable to infer object type from: {request.params['type']}"
                raise HttpError(400, self.error_body(400, message))
            if search:
                try:
                    self._check_search_rate()
                except _Limited as limited:
                    return limited.response
            response = handler(request)
            if not search:
                response.headers.update(self._limit_headers())
            return response

        return wrapped

    def record(self, object_type: str, object_id: str) -> dict[str, Any]:
        record = self.store.objects.get(object_type, {}).get(object_id)
        if record is None or record["archived"]:
            raise HttpError(404, self.error_body(404, "Object not found.  objectId are usually numeric."))
        return record

    @staticmethod
    def view(record: dict[str, Any], properties: list[str] | None) -> dict[str, Any]:
        """The record as the API prints it, with only the requested properties (plus HubSpot's defaults)."""
        props = record["properties"]
        if properties:
            wanted = set(properties) | {"hs_object_id", "hs_createdate", "hs_lastmodifieddate"}
            props = {k: props.get(k) for k in wanted}
        return {"id": record["id"], "properties": dict(props), "createdAt": record["createdAt"],
                "updatedAt": record["updatedAt"], "archived": record["archived"]}

    @staticmethod
    def _list_arg(request: Request, name: str) -> list[str]:
        return [p for value in request.query.get(name, []) for p in value.split(",") if p]

    # -- CRM objects ------------------------------------------------------------------
    def _search(self, request: Request) -> Response:
        body = request.json()
        with self.lock:
            records = self.store.objects[request.params["type"]]
            page, total, next_after = run_search((r for r in records.values() if not r["archived"]), body,
                                                 cap=self.SEARCH_CAP, index=self._index(request.params["type"]))
            result: dict[str, Any] = {"total": total, "results": [self.view(r, body.get("properties")) for r in page]}
        if next_after is not None:
            result["paging"] = {"next": {"after": str(next_after), "link": f"?after={next_after}"}}
        return Response(body=result)

    def _index(self, object_type: str) -> SortedIndex:
        """Records by last modification, rebuilt after a change: the order every change feed reads in."""
        built = self._indexes.get(object_type)
        if built is None or built[0] != self.store.version:
            built = (self.store.version, SortedIndex.build("hs_lastmodifieddate",
                                                           self.store.objects[object_type].values()))
            self._indexes[object_type] = built
        return built[1]

    def _list(self, request: Request) -> Response:
        limit, offset = int(request.arg("limit", "10") or 10), int(request.arg("after", "0") or 0)
        properties = self._list_arg(request, "properties")
        with self.lock:
            records = [r for r in self.store.objects[request.params["type"]].values() if not r["archived"]]
        result: dict[str, Any] = {"results": [self.view(r, properties) for r in records[offset:offset + limit]]}
        if offset + limit < len(records):
            result["paging"] = {"next": {"after": str(offset + limit)}}
        return Response(body=result)

    def _batch_read(self, request: Request) -> Response:
        body = request.json()
        inputs = body.get("inputs") or []
        if len(inputs) > 100:
            raise validation_error(f"Batch input cannot exceed 100 inputs, got {len(inputs)}")
        started = datetime.now(UTC).isoformat()
        found, missing = [], []
        with self.lock:
            for item in inputs:
                record = self.store.objects[request.params["type"]].get(str(item.get("id")))
                if record is None or record["archived"]:
                    missing.append(str(item.get("id")))
                else:
                    found.append(self.view(record, body.get("properties")))
        result: dict[str, Any] = {"status": "COMPLETE", "results": found, "startedAt": started,
                                  "completedAt": datetime.now(UTC).isoformat()}
        if missing:
            result["numErrors"] = 1
            result["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                                 "message": "Could not get some objects, they may be deleted or not exist.",
                                 "context": {"ids": missing}}]
            return Response(status=207, body=result)
        return Response(body=result)

    def _get(self, request: Request) -> Response:
        object_type = request.params["type"]
        with self.lock:
            record = self.record(object_type, request.params["id"])
            view = self.view(record, self._list_arg(request, "properties"))
            associations = {}
            for to_type in self._list_arg(request, "associations"):
                ids = self.store.associated(object_type, record["id"], to_type)
                if ids:
                    label = self.store.type_label(object_type, to_type)
                    associations[to_type] = {"results": [{"id": i, "type": label} for i in ids]}
        if associations:
            view["associations"] = associations
        return Response(body=view)

    def _update(self, request: Request) -> Response:
        with self.lock:
            self.record(request.params["type"], request.params["id"])
            record = self.store.update(request.params["type"], request.params["id"],
                                       request.json().get("properties") or {})
            return Response(body=self.view(record, None))

    def _webhooks_route(self, request: Request) -> Response:
        """``{"url": "http://127.0.0.1:8787/webhooks/hubspot"}`` subscribes to invoice changes."""
        self.webhooks.url = request.json().get("url") or None
        return Response(body={"url": self.webhooks.url, "delivered": self.webhooks.delivered})

    def _touch_route(self, request: Request) -> Response:
        body = request.json()
        try:
            record = self.touch(request.params["id"], body.get("properties") or {}, at_ms=body.get("at_ms"))
        except KeyError:
            raise HttpError(404, self.error_body(404, "no such invoice")) from None
        return Response(body=self.view(record, None))


class _Limited(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("rate limited")
        self.response = response


SANDBOX = HubSpotSandbox


def connector_settings(box: Sandbox, secrets: Path) -> dict[str, Any]:
    """Settings that point the HubSpot source at ``box`` through its demo OAuth app."""
    from pouracquit.sandbox.launch import secret_file

    return {
        "vendor": "hubspot",
        "base_url": box.url,
        "client_id": HubSpotSandbox.DEMO_CLIENT_ID,
        "client_secret": secret_file(secrets, "hubspot_client_secret", HubSpotSandbox.DEMO_CLIENT_SECRET),
        "refresh_token": secret_file(secrets, "hubspot_refresh_token", HubSpotSandbox.DEMO_REFRESH_TOKEN),
    }


def demo_seed(count: int, seed: int) -> dict[str, Any]:
    return {"demo": {"count": count, "seed": seed}}
