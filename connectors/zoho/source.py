"""Zoho CRM (API v8) as a CRM source, on plain ``requests``.

Reading: COQL (``POST /crm/v8/coql``) selects ``id`` and ``Modified_Time``
ordered by ``(Modified_Time, id)`` with a keyset, never an OFFSET: each query
starts strictly after the cursor's pair, so COQL's 100,000-row offset ceiling
never bites, a page boundary inside one ``Modified_Time`` second neither skips
nor repeats a record, and a record modified while we page moves to the end
instead of shifting another out of view. COQL was chosen over ``GET
/crm/v8/Invoices`` + ``If-Modified-Since``: that list sorts by one field only,
so records sharing a second cannot be resumed exactly once the page token
expires. The cursor is ``"<epoch seconds>|<id>"``; Zoho's ``Modified_Time``
has one-second resolution, so a write landing in the cursor's very second
with a lower id than the cursor's is only seen at its next change.

Per page, full records (with the ``Invoiced_Items`` line items, which COQL
cannot select) come from ``GET /crm/v8/{module}?ids=`` (100 ids a call), then
the accounts and contacts they name in one call each: 4 calls per 100
invoices. ``attach`` is one multipart POST (with ``may_exist``, one GET of the
record's attachments first). Calls go to the ``api_domain`` the token response
names (the org's data centre), else the configured one, else the data centre
table's (``dc.py``); the token comes from ``accounts_url``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

import requests
import structlog
from pydantic import BaseModel, ConfigDict, Field

from pouracquit.common.calls import RetryPolicy, VendorClient, error_for_status, parse_retry_after
from pouracquit.common.errors import (
    AuthExpired,
    BadRecord,
    ConfigError,
    PermanentError,
    PouracquitError,
    RateLimited,
    RetryableError,
)
from pouracquit.common.model import Invoice
from pouracquit.common.secrets import SecretRef
from pouracquit.connectors.base import Document, Page
from pouracquit.connectors.oauth import OAuthApp, stored_refresh_token
from pouracquit.connectors.registry import ConnectorContext, parse_settings
from pouracquit.mappings import load_mapping

from .dc import by_accounts_url
from .mapping import ZohoMapper, lookup_id, parse_when

log = structlog.get_logger("pouracquit.connectors.zoho.source")

IDS_MAX = 100  # GET /crm/v8/{module}?ids= takes at most 100 ids
TOKEN_REFRESHES = (10, 600.0)  # Zoho: at most 10 access tokens per refresh token in 10 minutes
_AUTH_CODES = frozenset({"INVALID_TOKEN", "AUTHENTICATION_FAILURE"})
_BAD_RECORD_CODES = frozenset({"INVALID_DATA", "MANDATORY_NOT_FOUND", "DUPLICATE_DATA"})
_CONFIG_CODES = frozenset({"OAUTH_SCOPE_MISMATCH", "NO_PERMISSION", "INVALID_MODULE", "INVALID_QUERY"})
TOKEN_NAME = "zoho.{connection}.refresh_token"  # noqa: S105 - a TokenStore key (per connection), not a secret
OAUTH_SCOPES = ("ZohoCRM.modules.ALL", "ZohoCRM.coql.READ")  # records, attachments, COQL


class ZohoSettings(BaseModel):
    """``[connections.<name>.source]`` for vendor = "zoho"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts_url: str = "https://accounts.zoho.com"  # the data centre's accounts server, e.g. https://accounts.zoho.eu
    api_domain: str | None = None  # used when the token answer names none; the token answer's wins
    client_id: str
    client_secret: SecretRef
    refresh_token: SecretRef | None = None  # the initial one (or `pouracquit connect zoho`); later ones: token store
    module: str = "Invoices"  # or "Deals" with a matching mapping
    page_size: int = Field(default=100, ge=2, le=IDS_MAX)
    concurrency: int = Field(default=5, ge=1, le=25)  # Free edition allows 5 concurrent calls per app
    timeout: float = Field(default=30.0, gt=0)


class ZohoHttpError(Exception):
    """A Zoho error answer: HTTP status plus Zoho's ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def coql_literal(value: str | int | Decimal | datetime) -> str:
    """A COQL value: strings quoted with ``'`` and ``\\`` escaped by a backslash,
    datetimes as ``'yyyy-MM-ddTHH:mm:ss+00:00'``, numbers as they are."""
    if isinstance(value, datetime):
        return "'" + value.astimezone(UTC).isoformat(timespec="seconds") + "'"
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cursor(seconds: int, last_id: str) -> str:
    return f"{seconds}|{last_id}"


def _parse_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    seconds, _, last_id = cursor.partition("|")
    if not (seconds.lstrip("-").isdigit() and last_id.isdigit()):
        raise ConfigError(f"Zoho cursor {cursor[:40]!r} is not '<epoch seconds>|<id>'")
    return int(seconds), last_id


def _error_of(response: requests.Response) -> ZohoHttpError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return ZohoHttpError(response.status_code, str(body.get("code") or ""),
                         str(body.get("message") or response.reason or ""),
                         parse_retry_after(response.headers.get("Retry-After")))


class ZohoSource:
    """Implements ``CrmSource`` for Zoho CRM invoices."""

    role: ClassVar[Literal["source"]] = "source"
    vendor: ClassVar[str] = "zoho"
    from .doctor import diagnose  # `pouracquit doctor` (connectors.base.Diagnosable)
    from .email_log import email_log_batch_size, log_email, log_emails  # notes (base.EmailLog, BatchEmailLog)

    def __init__(self, settings: ZohoSettings, ctx: ConnectorContext) -> None:
        self.settings = settings
        self._ctx = ctx
        self._token_name = TOKEN_NAME.format(connection=ctx.connection)
        self._mapper = ZohoMapper(load_mapping("zoho", ctx.mapping))
        self._http = requests.Session()
        self._lock = threading.Lock()
        self._access: str | None = None
        self._domain: str = (settings.api_domain or "").rstrip("/")
        self._expires = 0.0
        self._client = VendorClient(vendor="zoho", classify=self._classify, meter=ctx.meter,
                                    gate=ctx.gates("api", concurrency=settings.concurrency), retry=ctx.retry,
                                    refresh=self._refresh_token)
        # Token exchanges have their own budget and gate (they run inside an API call's slot) and
        # retry once only: the API call around them retries too, and Zoho caps refreshes per 10 minutes.
        refreshes, window = TOKEN_REFRESHES
        once = RetryPolicy(attempts=2, backoff_base=ctx.retry.backoff_base, backoff_max=ctx.retry.backoff_max)
        self._oauth = VendorClient(vendor="zoho", classify=self._classify, meter=ctx.meter, retry=once,
                                   gate=ctx.gates("refresh", limit=refreshes, window=window * ctx.window_scale))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> ZohoSource:
        """Validate the settings; a problem is a ConfigError naming the key."""
        return cls(parse_settings(ZohoSettings, settings, "zoho"), ctx)

    @classmethod
    def oauth_app(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> OAuthApp:
        """The app ``pouracquit connect zoho`` authorises at ``<accounts_url>/oauth/v2/auth``
        (``access_type=offline`` and ``prompt=consent``, or no refresh token comes back;
        scopes comma-separated). Zoho names the user's data centre on the redirect
        (``accounts-server``): the code is exchanged there, and a data centre other
        than ``accounts_url`` is reported so the config can follow."""
        s = cls.from_settings(settings, ctx).settings
        configured = s.accounts_url.rstrip("/")

        def accounts_server(params: Mapping[str, str]) -> str:
            named = params.get("accounts-server", "").rstrip("/")
            # the client secret only goes to the configured server or a real Zoho one
            return named if named and (named == configured or by_accounts_url(named)) else configured

        def notes(params: Mapping[str, str], answer: Mapping[str, Any]) -> list[str]:
            lines = [f"Zoho API domain: {answer['api_domain']}"] if answer.get("api_domain") else []
            server = accounts_server(params)
            if server != configured:
                known = by_accounts_url(server)
                where = f"{known.name} ({server})" if known else server
                lines.append(f'Your Zoho data centre is {where}: set accounts_url = "{server}" in this '
                             f"connection's source settings.")
            return lines

        return OAuthApp(vendor="zoho", authorize_url=f"{configured}/oauth/v2/auth",
                        token_url=f"{configured}/oauth/v2/token", client_id=s.client_id,
                        client_secret=s.client_secret.value().get_secret_value(), scopes=OAUTH_SCOPES,
                        token_name=TOKEN_NAME.format(connection=ctx.connection), client_auth="form",
                        scope_separator=",", extra_params={"access_type": "offline", "prompt": "consent"},
                        timeout=s.timeout,
                        token_url_for=lambda params: f"{accounts_server(params)}/oauth/v2/token", notes=notes)

    # -- auth -----------------------------------------------------------------------
    def _refresh_token(self) -> None:
        """Exchange the refresh token at the accounts server; learn the api_domain;
        persist a rotated refresh token before using the new access token."""
        s = self.settings
        current = stored_refresh_token(self._ctx.tokens, self._token_name, s.refresh_token, "zoho")
        form = {"grant_type": "refresh_token", "client_id": s.client_id,
                "client_secret": s.client_secret.value().get_secret_value(), "refresh_token": current}

        def exchange() -> dict[str, Any]:
            response = self._http.post(f"{s.accounts_url.rstrip('/')}/oauth/v2/token", data=form, timeout=s.timeout)
            if response.status_code >= 500 or response.status_code == 429:
                raise _error_of(response)
            try:
                body = response.json()
            except ValueError:
                raise RetryableError(f"zoho accounts answered HTTP {response.status_code} without JSON") from None
            error = str(body.get("error") or "") if isinstance(body, dict) else "malformed answer"
            if error == "Access Denied":  # Zoho's answer to too many token requests in a row
                raise RateLimited("zoho accounts: too many token requests", retry_after=60 * self._ctx.window_scale)
            if error or response.status_code >= 400 or "access_token" not in body:
                raise ConfigError(f"Zoho refused the refresh token ({error or response.status_code}): check "
                                  f"client_id, client_secret, refresh_token and accounts_url (the data centre)")
            return body

        answer = self._oauth.call("oauth.refresh", exchange)
        rotated = answer.get("refresh_token")
        if rotated and rotated != current:
            self._ctx.tokens.put(self._token_name, rotated)
        known = by_accounts_url(s.accounts_url)
        domain = answer.get("api_domain") or s.api_domain or (known.api_domain if known else None)
        if not domain:
            raise ConfigError("Zoho's token answer has no api_domain: set api_domain in the Zoho settings")
        self._access, self._domain = str(answer["access_token"]), str(domain).rstrip("/")
        ttl = float(answer.get("expires_in") or 3600) * self._ctx.window_scale
        self._expires = time.monotonic() + ttl * 0.95
        log.info("zoho access token refreshed", connection=self._ctx.connection, api_domain=self._domain)

    def _token(self) -> tuple[str, str]:
        with self._lock:
            if self._access is None or time.monotonic() >= self._expires:
                self._refresh_token()
            assert self._access is not None
            return self._access, self._domain

    # -- calls ----------------------------------------------------------------------
    def _send(self, op: str, method: str, path: str, *, replay_safe: bool = True,
              **kwargs: Any) -> dict[str, Any] | None:
        """One API call through the VendorClient; the JSON body (numbers as
        Decimal), or None for Zoho's 204 No Content."""

        def attempt() -> dict[str, Any] | None:
            for fresh in (False, True):
                token, domain = self._token()
                response = self._http.request(method, f"{domain}{path}", timeout=self.settings.timeout,
                                              headers={"Authorization": f"Zoho-oauthtoken {token}"}, **kwargs)
                if response.status_code == 401 and not fresh:
                    error = _error_of(response)
                    if error.code in _AUTH_CODES:  # refused before anything happened: safe to resend once
                        with self._lock:
                            self._refresh_token()
                        continue
                if response.status_code >= 400:
                    raise _error_of(response)
                if response.status_code in (204, 304) or not response.content:
                    return None
                return response.json(parse_float=Decimal)
            raise AssertionError("unreachable")  # pragma: no cover

        return self._client.call(op, attempt, replay_safe=replay_safe)

    def _classify(self, exc: Exception) -> PouracquitError:
        """Zoho's error table: the pipeline decides by the class returned."""
        if isinstance(exc, ZohoHttpError):
            text = f"zoho answered HTTP {exc.status} {exc.code}: {exc.message}"[:500]
            if exc.status == 401 and exc.code in _AUTH_CODES:
                return AuthExpired(text)
            if exc.status == 429:
                return RateLimited(text, retry_after=exc.retry_after)
            if exc.code in _CONFIG_CODES or exc.status in (401, 403):
                return ConfigError(f"{text}: check the OAuth scopes, the module and the field names of the mapping")
            if exc.status == 400 and exc.code in _BAD_RECORD_CODES:
                return BadRecord(text)
            if exc.status >= 500:
                return RetryableError(text, retry_after=exc.retry_after)
            if exc.status == 400:
                return PermanentError(text)
            return error_for_status("zoho", exc.status, f"{exc.code}: {exc.message}", exc.retry_after)
        if isinstance(exc, requests.ConnectionError | requests.Timeout):
            return RetryableError(f"zoho unreachable: {type(exc).__name__}")
        if isinstance(exc, ValueError):
            return RetryableError(f"zoho answered malformed JSON: {exc}")
        return PermanentError(f"zoho call failed unexpectedly: {type(exc).__name__}: {exc}")

    def coql(self, query: str) -> list[dict[str, Any]]:
        """Rows of one COQL query (build values with ``coql_literal``)."""
        answer = self._send("coql", "POST", "/crm/v8/coql", json={"select_query": query})
        return list(answer["data"]) if answer else []

    def _records(self, module: str, ids: Sequence[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        wanted = ",".join(f for f in fields if f != "id")
        for start in range(0, len(ids), IDS_MAX):
            chunk = ",".join(ids[start:start + IDS_MAX])
            answer = self._send(f"{module.lower()}.read", "GET", f"/crm/v8/{module}",
                                params={"ids": chunk, "fields": wanted})
            found.update({str(r["id"]): r for r in (answer or {}).get("data", [])})
        return found

    # -- reading --------------------------------------------------------------------
    def changes(self, cursor: str | None) -> Iterator[Page]:
        """Pages of invoices modified since ``cursor``, oldest first, each with the cursor after it."""
        position = _parse_cursor(cursor)
        modified, size = self._mapper.m["invoice"]["modified"], self.settings.page_size
        while True:
            if position is None:
                where = "(id is not null)"
            else:
                at = coql_literal(datetime.fromtimestamp(position[0], tz=UTC))
                where = f"(({modified} > {at}) or (({modified} = {at}) and (id > {position[1]})))"
            # values go through coql_literal or are validated digits; names come from the mapping
            rows = self.coql(f"select id, {modified} from {self.settings.module} where {where} "  # noqa: S608
                             f"order by {modified} asc, id asc limit {size}")
            if not rows:
                return
            last = rows[-1]
            position = (int(parse_when(last[modified]).timestamp()), str(last["id"]))
            yield self._page([str(r["id"]) for r in rows], _cursor(*position))
            if len(rows) < size:
                return

    def _page(self, ids: list[str], cursor: str | None) -> Page:
        records = self._records(self.settings.module, ids, self._mapper.fields_of("invoice"))
        lines = self._mapper.m["invoice"]["lines"]
        for i in ids:  # Zoho documents subform data on the single-record read only: a list answer without it
            if i in records and lines not in records[i]:  # costs one read per record (docs/vendors.md)
                records[i] = self._one(i)
        invoices, rejected = self._map([records[i] for i in ids if i in records])
        return Page(invoices=invoices, cursor=cursor, rejected=rejected)

    def _map(self, records: list[dict[str, Any]]) -> tuple[list[Invoice], list[tuple[str, str]]]:
        keys = self._mapper.m["invoice"]
        related = {}
        for kind in ("account", "contact"):
            ids = sorted({lookup_id(r.get(keys[kind])) for r in records} - {""})
            related[kind] = (self._records(self._mapper.m["module"][kind], ids, self._mapper.fields_of(kind))
                             if ids else {})
        invoices: list[Invoice] = []
        rejected: list[tuple[str, str]] = []
        for record in records:
            try:
                invoices.append(self._mapper.invoice(
                    record, related["account"].get(lookup_id(record.get(keys["account"]))),
                    related["contact"].get(lookup_id(record.get(keys["contact"])))))
            except BadRecord as exc:
                log.warning("zoho invoice rejected by the mapping", invoice=record.get("id"), reason=str(exc))
                rejected.append((str(record.get("id")), str(exc)))
        return invoices, rejected

    def _one(self, ref: str) -> dict[str, Any]:
        """One full record, subforms included (https://www.zoho.com/crm/developer/docs/api/v8/subforms.html)."""
        answer = self._send("invoices.get", "GET", f"/crm/v8/{self.settings.module}/{ref}")
        if not answer or not answer.get("data"):
            raise PermanentError(f"Zoho {self.settings.module} record {ref} does not exist")
        return dict(answer["data"][0])

    def get(self, ref: str) -> Invoice:
        """One invoice by id with its buyer; a mapping problem raises BadRecord."""
        invoices, rejected = self._map([self._one(ref)])
        if rejected:
            raise BadRecord(rejected[0][1])
        return invoices[0]

    # -- writing --------------------------------------------------------------------
    def _attachments(self, ref: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            answer = self._send("attachments.list", "GET", f"/crm/v8/{self.settings.module}/{ref}/Attachments",
                                params={"fields": "File_Name,id", "page": page, "per_page": 200})
            if not answer:
                return
            yield from answer.get("data", [])
            if not answer.get("info", {}).get("more_records"):
                return
            page += 1

    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        """Attach ``document`` to the invoice record; with ``may_exist``, reuse an
        attachment already named ``document.name``. Returns the attachment id."""
        if may_exist:
            found = next((a for a in self._attachments(ref) if a.get("File_Name") == document.name), None)
            if found is not None:
                return str(found["id"])
        answer = self._send("attachments.upload", "POST", f"/crm/v8/{self.settings.module}/{ref}/Attachments",
                            files={"file": (document.name, document.content, document.media_type)},
                            replay_safe=False)  # no idempotency key: a lost answer is found by name on replay
        item = (answer or {}).get("data", [{}])[0]
        if item.get("status") != "success":
            raise PermanentError(f"Zoho refused the attachment: {item.get('code')}: {item.get('message')}")
        return str(item["details"]["id"])


__all__ = ["ZohoHttpError", "ZohoSettings", "ZohoSource", "coql_literal"]
