"""HubSpot as a CRM source, on the official ``hubspot-api-client``.

Reading: invoices are searched by ``hs_lastmodifieddate`` ascending with a
keyset, never an offset: each query starts at the cursor's timestamp, so the
search API's 10,000-result cap never bites and a record modified while we
page cannot shift another one out of view. When a full page is one single
timestamp, that group is drained by ``hs_object_id`` (still a keyset). The
cursor is ``"<epoch ms>|<ids already seen at exactly that ms>"``.

Per page, associations and associated records are fetched in batch calls
(one per association type, one per object type per 100 ids), so a page of
100 invoices costs 8 calls. ``attach`` costs 2 calls (upload + note) on a
first attempt, ``attach_documents`` 1 + 1/100 (notes created in batches); with
``may_exist`` they first look for their own file and note.
The note -> invoice association type is read once per process from the v4
labels endpoint (HubSpot publishes no id for that pair). OAuth: ``hubspot_auth``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar

import hubspot
import requests
import structlog
import urllib3
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.objects import (
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pouracquit.common.calls import VendorClient, error_for_status, parse_retry_after
from pouracquit.common.errors import (
    BadRecord,
    ConfigError,
    PermanentError,
    PouracquitError,
    RateLimited,
    RetryableError,
    WebhookRejected,
)
from pouracquit.common.model import Invoice
from pouracquit.common.secrets import SecretRef
from pouracquit.connectors.base import AttachOrder, Document, Page, WebhookRequest
from pouracquit.connectors.oauth import OAuthApp, stored_refresh_token
from pouracquit.connectors.registry import ConnectorContext, parse_settings
from pouracquit.mappings import load_mapping

from . import auth as hubspot_auth
from .attach import NOTES_BATCH_MAX, NoteWriter
from .mapping import HubSpotMapper, epoch_ms
from .webhook import WebhookVerifier, invoice_ids

T = TypeVar("T")
log = structlog.get_logger("pouracquit.connectors.hubspot.source")

BURST = (95, 10.0)  # HubSpot: 100 requests / 10 s per private app (Free/Starter); keep a margin
SEARCH_RATE = (4, 1.0)  # HubSpot: 5 search requests / s per account; keep a margin
BATCH_MAX = 100  # HubSpot batch read accepts at most 100 inputs
# v4 association batch read: at most 1,000 inputs per request (since 2025-02-10:
# https://developers.hubspot.com/changelog/bug-fix-batch-read-limit-for-hubspot-associations-api);
# search pages are read together up to this many invoices, one association call per type
ASSOC_BATCH_MAX = 1000
POLICY_BACKOFF = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0, "DAILY": 3600.0}
TOKEN_NAME = "hubspot.{connection}.refresh_token"  # noqa: S105 - a TokenStore key (per connection), not a secret


class HubSpotSettings(BaseModel):
    """``[connections.<name>.source]`` for vendor = "hubspot"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = hubspot_auth.PRODUCTION_API
    access_token: SecretRef | None = None  # private app token
    client_id: str | None = None  # OAuth app: client_id + client_secret (+ refresh_token, or `pouracquit connect`)
    client_secret: SecretRef | None = None
    refresh_token: SecretRef | None = None  # the initial one; connected or rotated ones live in the token store
    page_size: int = Field(default=100, ge=2, le=100)
    attach_to_deal: bool = True
    folder_path: str = "/pouracquit"
    timeout: float = Field(default=30.0, gt=0)
    webhook_secret: SecretRef | None = None  # the app's client secret signs webhooks; defaults to client_secret

    @model_validator(mode="after")
    def _one_auth(self) -> HubSpotSettings:
        oauth = (self.client_id, self.client_secret)
        if self.access_token is not None and (any(v is not None for v in oauth) or self.refresh_token is not None):
            raise ValueError("give access_token (private app) or client_id/client_secret/refresh_token, not both")
        if self.access_token is None and not all(v is not None for v in oauth):
            missing = [k for k, v in zip(("client_id", "client_secret"), oauth, strict=True) if v is None]
            raise ValueError(f"access_token is missing, or for OAuth {', '.join(missing)}")
        return self


def _cursor(ms: int, seen: set[str]) -> str:
    return f"{ms}|{','.join(sorted(seen, key=int))}"


def _parse_cursor(cursor: str | None) -> tuple[int, set[str]]:
    if not cursor:
        return -1, set()
    try:
        ms, _, ids = cursor.partition("|")
        return int(ms), {i for i in ids.split(",") if i}
    except ValueError:
        raise ConfigError(f"HubSpot cursor {cursor[:40]!r} is not '<ms>|<ids>'") from None


class HubSpotSource:
    """Implements ``CrmSource`` for HubSpot invoices (writing: ``NoteWriter``)."""

    role: ClassVar[Literal["source"]] = "source"
    vendor: ClassVar[str] = "hubspot"
    from .doctor import diagnose  # `pouracquit doctor` (connectors.base.Diagnosable)
    from .email_log import email_log_batch_size, log_email, log_emails  # e-mails noted (base.EmailLog, BatchEmailLog)

    def __init__(self, settings: HubSpotSettings, ctx: ConnectorContext) -> None:
        self.settings = settings
        self._ctx = ctx
        self._token_name = TOKEN_NAME.format(connection=ctx.connection)
        self._mapper = HubSpotMapper(load_mapping("hubspot", ctx.mapping))
        self._objects: Mapping[str, str] = self._mapper.m["objects"]
        self._access: str | None = (
            settings.access_token.value().get_secret_value() if settings.access_token else None
        )
        self._sdk: hubspot.Client | None = None
        self._deals: dict[str, str] = {}  # invoice id -> deal id, learnt while reading
        self._webhooks: WebhookVerifier | None = None
        self._writer = NoteWriter(self._call, self._deal_of, self._objects, self._mapper.m["associations"], settings)
        self._http = requests.Session()  # the token endpoint only; the SDK makes every API call
        scale = ctx.window_scale
        self._search_gate = ctx.gates("search", limit=SEARCH_RATE[0], window=SEARCH_RATE[1] * scale)
        self._client = VendorClient(
            vendor="hubspot", classify=self._classify, meter=ctx.meter,
            gate=ctx.gates("api", limit=BURST[0], window=BURST[1] * scale), retry=ctx.retry,
            refresh=self._refresh_token if settings.access_token is None else None,
        )

    def parse_webhook(self, request: WebhookRequest) -> list[str]:
        """Verify a v3-signed webhook; the invoice ids it names."""
        if self._webhooks is None:
            secret = self.settings.webhook_secret or self.settings.client_secret
            if secret is None:
                raise WebhookRejected("set webhook_secret (the HubSpot app's client secret) to accept webhooks")
            self._webhooks = WebhookVerifier(secret.value().get_secret_value(), replays=self._ctx.replays,
                                             connection=self._ctx.connection)
        self._webhooks.verify(request)
        return invoice_ids(request.body)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> HubSpotSource:
        """Validate the settings; a problem is a ConfigError naming the key."""
        return cls(parse_settings(HubSpotSettings, settings, "hubspot"), ctx)

    @classmethod
    def oauth_app(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> OAuthApp:
        """The OAuth app ``pouracquit connect hubspot`` authorises (see ``hubspot_auth``)."""
        s = cls.from_settings(settings, ctx).settings
        if s.client_id is None or s.client_secret is None:
            raise ConfigError("hubspot: a private app token needs no connect; set client_id and client_secret "
                              "of the OAuth app instead of access_token")
        return hubspot_auth.oauth_app(s.base_url, s.client_id, s.client_secret.value().get_secret_value(),
                                      TOKEN_NAME.format(connection=ctx.connection), s.timeout)

    # -- calls --------------------------------------------------------------------
    def _api(self) -> hubspot.Client:
        if self._access is None:
            self._refresh_token()
        if self._sdk is None:
            # retry=False: urllib3 must not replay anything; VendorClient owns retries.
            self._sdk = hubspot.Client.create(access_token=self._access, host=self.settings.base_url.rstrip("/"),
                                              retry=False)
        return self._sdk

    def _call(self, op: str, fn: Callable[[hubspot.Client], T], *, replay_safe: bool = True,
              search: bool = False) -> T:
        def attempt() -> T:
            run = lambda: fn(self._api())  # noqa: E731 - the client is re-read after a refresh
            return self._search_gate.run(run) if search else run()

        return self._client.call(op, attempt, replay_safe=replay_safe)

    def _refresh_token(self) -> None:
        """Exchange the refresh token for an access token; persist a rotated refresh token first."""
        assert self.settings.client_id and self.settings.client_secret
        s = self.settings
        current = stored_refresh_token(self._ctx.tokens, self._token_name, s.refresh_token, "hubspot")
        answer = self._client.call("oauth.refresh", lambda: hubspot_auth.refresh_grant(
            self._http, s.base_url, str(s.client_id), s.client_secret.value().get_secret_value(), current, s.timeout))
        rotated = answer.get("refresh_token")
        if rotated and rotated != self._ctx.tokens.get(self._token_name):
            self._ctx.tokens.put(self._token_name, str(rotated))
        self._access, self._sdk = str(answer["access_token"]), None
        log.info("hubspot access token refreshed", connection=self._ctx.connection,
                 expires_in=answer.get("expires_in"))

    def _classify(self, exc: Exception) -> PouracquitError:
        status = getattr(exc, "status", None)
        if isinstance(status, int) and type(exc).__module__.startswith("hubspot."):
            body = _body(exc)
            message = str(body.get("message") or getattr(exc, "reason", "") or "")
            headers = getattr(exc, "headers", None) or {}
            if status == 401 and self.settings.access_token is not None:
                return ConfigError(f"HubSpot rejected the private app token (401): {message}; check access_token")
            if status == 429:
                policy = str(body.get("policyName") or "TEN_SECONDLY_ROLLING")
                wait = parse_retry_after(headers.get("Retry-After"))
                if wait is None:
                    wait = POLICY_BACKOFF.get(policy, 10.0) * self._ctx.window_scale
                return RateLimited(f"hubspot answered HTTP 429 ({policy}): {message}", retry_after=wait)
            if status == 423:  # HubSpot locks a record briefly during concurrent writes
                return RetryableError(f"hubspot answered HTTP 423: {message}", retry_after=2.0 * self._ctx.window_scale)
            return error_for_status("hubspot", status, message)
        if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
            return RetryableError(f"hubspot unreachable: {type(exc).__name__}: {exc}")
        return PermanentError(f"hubspot call failed unexpectedly: {type(exc).__name__}: {exc}")

    # -- reading ------------------------------------------------------------------
    def _search(self, groups: list[list[dict[str, Any]]], sort: str) -> list[Any]:
        request = PublicObjectSearchRequest(
            filter_groups=[{"filters": g} for g in groups],
            sorts=[{"propertyName": sort, "direction": "ASCENDING"}],
            properties=self._mapper.invoice_properties(), limit=self.settings.page_size)
        answer = self._call("invoices.search", lambda c: c.crm.objects.search_api.do_search(
            self._objects["invoice"], request, _request_timeout=self.settings.timeout), search=True)
        return list(answer.results)

    def changes(self, cursor: str | None) -> Iterator[Page]:
        """Pages of invoices modified since ``cursor``, oldest first, each with the cursor after it.
        Search pages (100 at most) are read together up to ``ASSOC_BATCH_MAX`` invoices: their
        associations and records then cost one call per type (per 100 records) for all of them."""
        rows: list[Any] = []
        after: str | None = None
        for found, after in self._found(cursor):
            rows.extend(found)
            if len(rows) + self.settings.page_size > ASSOC_BATCH_MAX:
                yield self._page(rows, after)
                rows = []
        if rows and after is not None:
            yield self._page(rows, after)

    def _found(self, cursor: str | None) -> Iterator[tuple[list[Any], str]]:
        """Search pages of invoices modified since ``cursor``, each with the cursor after it."""
        since, seen = _parse_cursor(cursor)
        modified = self._mapper.m["invoice"]["modified"]
        while True:
            start = {"operator": "GT", "value": str(since)} if since >= 0 else {"operator": "GTE", "value": "0"}
            groups = [[{"propertyName": modified, **start}]]
            if seen:
                groups.append([{"propertyName": modified, "operator": "EQ", "value": str(since)},
                               {"propertyName": "hs_object_id", "operator": "GT", "value": max(seen, key=int)}])
            found = self._search(groups, modified)
            rows = [r for r in found if r.id not in seen or _ms(r, modified) != since]
            if not rows:
                return
            full = len(found) >= self.settings.page_size
            top = max(_ms(r, modified) for r in rows)
            if full:
                # The last timestamp of a full page may continue on the next one: leave it for then.
                rows = [r for r in rows if _ms(r, modified) < top]
                if not rows:
                    drained = set(seen) if since == top else set()
                    for page, so_far in self._drain(top, set(drained)):
                        drained = so_far
                        yield page
                    since, seen = top, drained
                    continue
            for r in rows:
                ms = _ms(r, modified)
                since, seen = (ms, {r.id}) if ms > since else (since, seen | {r.id})
            yield rows, _cursor(since, seen)
            if not full:
                return

    def _drain(self, ms: int, seen: set[str]) -> Iterator[tuple[tuple[list[Any], str], set[str]]]:
        """Every invoice modified at exactly ``ms``, by ascending id (a keyset: no cap, no offset);
        yields each page of rows and its cursor, with the ids seen at ``ms`` so far."""
        modified = self._mapper.m["invoice"]["modified"]
        while True:
            last = max(seen, key=int) if seen else "0"
            found = self._search([[{"propertyName": modified, "operator": "EQ", "value": str(ms)},
                                   {"propertyName": "hs_object_id", "operator": "GT", "value": last}]],
                                 "hs_object_id")
            rows = [r for r in found if r.id not in seen]
            if not rows:
                return
            seen = seen | {r.id for r in rows}
            yield (rows, _cursor(ms, seen)), seen
            if len(found) < self.settings.page_size:
                return

    def _associations(self, to: str, ids: Sequence[str]) -> dict[str, list[str]]:
        links: dict[str, list[str]] = {}
        for start in range(0, len(ids), ASSOC_BATCH_MAX):
            inputs = [{"id": i} for i in ids[start:start + ASSOC_BATCH_MAX]]
            chunk = BatchInputPublicFetchAssociationsBatchRequest(inputs=inputs)
            answer = self._call(f"associations.{to}", lambda c, b=chunk: c.crm.associations.v4.batch_api.get_page(
                self._objects["invoice"], self._objects[to], b, _request_timeout=self.settings.timeout))
            for result in answer.results or []:
                links[str(result._from.id)] = [str(t.to_object_id) for t in result.to]
        return links

    def _read(self, kind: str, ids: set[str]) -> dict[str, Mapping[str, Any]]:
        found: dict[str, Mapping[str, Any]] = {}
        ordered = sorted(ids, key=int)
        for start in range(0, len(ordered), BATCH_MAX):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in ordered[start:start + BATCH_MAX]],
                properties=self._mapper.properties_of(kind), properties_with_history=[])
            answer = self._call(f"{kind}.batch_read", lambda c, b=body: c.crm.objects.batch_api.read(
                self._objects[kind], b, _request_timeout=self.settings.timeout))
            found.update({r.id: r.properties for r in answer.results})
        return found

    def _page(self, rows: Sequence[Any], cursor: str) -> Page:
        ids = [r.id for r in rows]
        links = {to: self._associations(to, ids) for to in ("line_item", "contact", "company", "deal")}
        invoices, rejected = self._map(rows, links)
        return Page(invoices=invoices, cursor=cursor, rejected=rejected)

    def _map(self, rows: Sequence[Any], links: dict[str, dict[str, list[str]]]
             ) -> tuple[list[Invoice], list[tuple[str, str]]]:
        records = {kind: self._read(kind, {i for r in rows for i in links[kind].get(r.id, [])})
                   for kind in ("line_item", "contact", "company")}
        invoices: list[Invoice] = []
        rejected: list[tuple[str, str]] = []
        for r in rows:
            deal = (links["deal"].get(r.id) or [""])[0]
            self._deals[r.id] = deal
            first = {kind: next((i for i in links[kind].get(r.id, []) if i in records[kind]), None)
                     for kind in ("contact", "company")}
            try:
                lines = [(i, records["line_item"][i]) for i in links["line_item"].get(r.id, [])
                         if i in records["line_item"]]
                invoices.append(self._mapper.invoice(
                    r.id, r.properties, lines,
                    (first["contact"], records["contact"][first["contact"]]) if first["contact"] else None,
                    (first["company"], records["company"][first["company"]]) if first["company"] else None,
                    deal))
            except BadRecord as exc:
                log.warning("hubspot invoice rejected by the mapping", invoice=r.id, reason=str(exc))
                rejected.append((r.id, str(exc)))
        return invoices, rejected

    def _deal_of(self, ref: str) -> str:
        if ref not in self._deals:  # not read by this process yet: one association read
            self._deals[ref] = (self._associations("deal", [ref]).get(ref) or [""])[0]
        return self._deals[ref]

    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        """Upload ``document`` to Files and log a note carrying it on the invoice (and its deal)."""
        return self._writer.attach(ref, document, may_exist=may_exist)

    attach_batch_size = NOTES_BATCH_MAX  # connectors.base.BatchAttach

    def attach_documents(self, orders: Sequence[AttachOrder]) -> dict[str, str | PermanentError]:
        """Upload each document, then create their notes 100 per call (``NoteWriter``)."""
        return self._writer.attach_documents(orders)

    def get(self, ref: str) -> Invoice:
        """One invoice by id, with its associations; a mapping problem raises BadRecord."""
        kinds = ("line_item", "contact", "company", "deal")
        answer = self._call("invoices.get", lambda c: c.crm.objects.basic_api.get_by_id(
            self._objects["invoice"], ref, properties=self._mapper.invoice_properties(),
            associations=[self._objects[k] for k in kinds], _request_timeout=self.settings.timeout))
        assoc = answer.associations or {}
        links = {k: {ref: [str(a.id) for a in assoc[self._objects[k]].results]}
                 if self._objects[k] in assoc else {} for k in kinds}
        invoices, rejected = self._map([answer], links)
        if rejected:
            raise BadRecord(rejected[0][1])
        return invoices[0]

def _ms(record: Any, prop: str) -> int:
    return epoch_ms(record.properties[prop])


def _body(exc: Exception) -> dict[str, Any]:
    try:
        parsed = json.loads(getattr(exc, "body", None) or "{}")
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


__all__ = ["HubSpotSettings", "HubSpotSource"]
