"""Salesforce as a CRM source, on ``simple-salesforce``.

Reading: one SOQL query per ``changes`` call, ``WHERE SystemModstamp >=
<cursor time> ORDER BY SystemModstamp, Id``, read batch by batch through
``nextRecordsUrl`` (batch size = ``page_size``, 200..2,000); each batch is a
page. SystemModstamp has one-second resolution and one transaction stamps
all its records alike, so the cursor is ``"<stamp>|<ids already seen at that
stamp>"``: records at the cursor's stamp that were seen are skipped, and a
record re-stamped within that same second is still picked up. Lines and
payments of a page come in batched child queries (``WHERE Invoice__c IN
(...)``, 200 ids per query); account and contact come with the invoice
through relationship fields. A page of 200 invoices costs 3 calls.

Writing: ``attach`` inserts a ContentVersion whose FirstPublishLocationId is
the invoice, so Salesforce links the file to the record. The insert cannot
be deduplicated by Salesforce, so it is not replayed here; with
``may_exist`` the connector first looks for its own ContentVersion by
record and title.

Every value placed in SOQL goes through ``format_soql`` (quoted, escaped).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import requests
import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from pouracquit.common.calls import CallGate, VendorClient
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

from .mapping import SalesforceMapper, parse_when

T = TypeVar("T")
log = structlog.get_logger("pouracquit.connectors.salesforce.source")

IN_BATCH = 200  # ids per "IN (...)" child query: keeps the GET URL far below Salesforce's URI limit
CONCURRENT = 10  # Salesforce caps long-running requests per org (25); stay well under it
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
TOKEN_NAME = "salesforce.{connection}.refresh_token"  # noqa: S105 - a TokenStore key (per connection), not a secret
OAUTH_SCOPES = ("api", "refresh_token")  # REST API access, and a refresh token for unattended syncs

ErrorClass = type[PouracquitError]


class _LocatorExpired(PermanentError):
    """The server forgot a query's nextRecordsUrl (idle too long): re-run the query from the cursor."""


# One table: Salesforce errorCode -> what the pipeline does. The code wins over the HTTP status.
ERROR_CODES: Mapping[str, ErrorClass] = {
    "INVALID_SESSION_ID": AuthExpired,
    "REQUEST_LIMIT_EXCEEDED": RateLimited,
    "MALFORMED_QUERY": ConfigError,  # the mapping produced a query Salesforce cannot parse
    "INVALID_FIELD": ConfigError,  # a mapped field does not exist in this org
    "INVALID_TYPE": ConfigError,  # a mapped object does not exist in this org
    "INVALID_QUERY_FILTER_OPERATOR": PermanentError,  # e.g. a malformed record id
    "MALFORMED_ID": PermanentError,
    "NOT_FOUND": PermanentError,
    "ENTITY_IS_DELETED": PermanentError,
    "INSUFFICIENT_ACCESS": ConfigError,
    "INSUFFICIENT_ACCESS_OR_READONLY": ConfigError,
    "API_DISABLED_FOR_ORG": ConfigError,
    "API_CURRENTLY_DISABLED": ConfigError,
    "FIELD_INTEGRITY_EXCEPTION": PermanentError,
    "REQUIRED_FIELD_MISSING": PermanentError,
    "STORAGE_LIMIT_EXCEEDED": PermanentError,
    "UNABLE_TO_LOCK_ROW": RetryableError,
    "SERVER_UNAVAILABLE": RetryableError,
    "UNKNOWN_EXCEPTION": RetryableError,
    "INVALID_QUERY_LOCATOR": _LocatorExpired,
}
# simple-salesforce's exception (chosen from the HTTP status) when the body names no known code.
EXCEPTIONS: Mapping[type[SalesforceError], ErrorClass] = {
    SalesforceExpiredSession: AuthExpired,
    SalesforceRefusedRequest: ConfigError,  # 403: the user or the org lacks a permission
    SalesforceMalformedRequest: PermanentError,
    SalesforceResourceNotFound: PermanentError,
    SalesforceMoreThanOneRecord: PermanentError,
}


class SalesforceSettings(BaseModel):
    """``[connections.<name>.source]`` for vendor = "salesforce"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    login_url: str | None = None  # token endpoint host; default https://login.salesforce.com
    instance_url: str | None = None  # My Domain URL, used as token host when login_url is not set
    client_id: str  # the connected app's consumer key
    client_secret: SecretRef
    refresh_token: SecretRef | None = None  # the initial one (or `pouracquit connect salesforce`); then the store
    api_version: str = "62.0"
    ca_bundle: Path | None = None  # PEM file of CAs to trust instead of the system store
    page_size: int = Field(default=2000, ge=200, le=2000)  # Salesforce's batchSize range
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("api_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"\d{2}\.0", v):
            raise ValueError(f"expected a version like \"62.0\", got {v!r}")
        return v

    @field_validator("ca_bundle")
    @classmethod
    def _bundle(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no CA bundle at {v}")
        return v

    @property
    def token_url(self) -> str:
        return f"{self.oauth_host}/services/oauth2/token"

    @property
    def oauth_host(self) -> str:
        return (self.login_url or self.instance_url or "https://login.salesforce.com").rstrip("/")


class _Session(requests.Session):
    """A requests session with a default timeout and a CA bundle that the
    environment cannot override (requests lets REQUESTS_CA_BUNDLE win over
    ``session.verify``)."""

    def __init__(self, bundle: Path | None, timeout: float) -> None:
        super().__init__()
        self._bundle, self._timeout = bundle, timeout
        if bundle is not None:
            self.verify = str(bundle)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        merged = super().merge_environment_settings(*args, **kwargs)
        if self._bundle is not None:
            merged["verify"] = str(self._bundle)
        return merged


def _cursor(since: datetime, seen: set[str]) -> str:
    return f"{since.strftime('%Y-%m-%dT%H:%M:%S.')}{since.microsecond // 1000:03d}Z|{','.join(sorted(seen))}"


def _parse_cursor(cursor: str | None) -> tuple[datetime | None, set[str]]:
    if not cursor:
        return None, set()
    stamp, _, ids = cursor.partition("|")
    try:
        return parse_when(stamp), {i for i in ids.split(",") if i}
    except ValueError:
        raise ConfigError(f"Salesforce cursor {cursor[:40]!r} is not '<datetime>|<ids>'") from None


def _code(exc: SalesforceError) -> tuple[str, str]:
    """(errorCode, message) from a Salesforce error body ``[{"message", "errorCode"}]``."""
    content = exc.content
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, Mapping):
        return str(first.get("errorCode") or ""), str(first.get("message") or "")
    return "", str(content)[:200]


class SalesforceSource:
    """Implements ``CrmSource`` for invoices kept in Salesforce."""

    role: ClassVar[Literal["source"]] = "source"
    vendor: ClassVar[str] = "salesforce"
    from .doctor import diagnose  # `pouracquit doctor` (connectors.base.Diagnosable)

    def __init__(self, settings: SalesforceSettings, ctx: ConnectorContext) -> None:
        self.settings = settings
        self._ctx = ctx
        self._token_name = TOKEN_NAME.format(connection=ctx.connection)
        self._mapper = SalesforceMapper(load_mapping("salesforce", ctx.mapping))
        self._check_names()
        self._objects = self._mapper.objects
        self._session = _Session(settings.ca_bundle, settings.timeout)
        self._sf: Salesforce | None = None
        self._warned_usage = False
        self._client = VendorClient(vendor="salesforce", classify=self._classify, meter=ctx.meter,
                                    gate=CallGate(concurrency=CONCURRENT), retry=ctx.retry,
                                    refresh=self._refresh_session)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> SalesforceSource:
        """Validate the settings; a problem is a ConfigError naming the key."""
        return cls(parse_settings(SalesforceSettings, settings, "salesforce"), ctx)

    @classmethod
    def oauth_app(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> OAuthApp:
        """The connected app ``pouracquit connect salesforce`` authorises (web server
        flow with PKCE at ``<login host>/services/oauth2/authorize``); the token
        answer names the org's ``instance_url``, which is shown."""
        s = cls.from_settings(settings, ctx).settings

        def notes(params: Mapping[str, str], answer: Mapping[str, Any]) -> list[str]:
            return [f"Salesforce instance: {answer['instance_url']}"] if answer.get("instance_url") else []

        return OAuthApp(vendor="salesforce", authorize_url=f"{s.oauth_host}/services/oauth2/authorize",
                        token_url=s.token_url, client_id=s.client_id,
                        client_secret=s.client_secret.value().get_secret_value(), scopes=OAUTH_SCOPES,
                        token_name=TOKEN_NAME.format(connection=ctx.connection), client_auth="form", pkce=True,
                        verify=str(s.ca_bundle) if s.ca_bundle else True, timeout=s.timeout, notes=notes)

    def _check_names(self) -> None:
        """Field and object names are pasted into SOQL as identifiers: refuse anything else up front."""
        m = self._mapper.m
        for section in ("objects", "invoice", "line", "payment", "account", "contact"):
            for key, value in m.get(section, {}).items():
                if isinstance(value, str) and value and not _NAME.match(value):
                    raise ConfigError(f"mapping key {section}.{key} = {value!r} is not a Salesforce API name")

    # -- calls --------------------------------------------------------------------
    def _api(self) -> Salesforce:
        if self._sf is None:
            self._refresh_session()
        assert self._sf is not None
        return self._sf

    def _call(self, op: str, fn: Callable[[Salesforce], T], *, replay_safe: bool = True) -> T:
        result = self._client.call(op, lambda: fn(self._api()), replay_safe=replay_safe)
        usage = self._sf.api_usage.get("api-usage") if self._sf is not None else None
        if usage is not None and usage.total and usage.used >= 0.9 * usage.total and not self._warned_usage:
            self._warned_usage = True
            log.warning("salesforce API allowance nearly used", connection=self._ctx.connection,
                        used=usage.used, total=usage.total)
        return result

    def _refresh_session(self) -> None:
        """Exchange the refresh token for a session; persist a rotated refresh token first."""
        current = stored_refresh_token(self._ctx.tokens, self._token_name, self.settings.refresh_token, "salesforce")
        form = {"grant_type": "refresh_token", "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret.value().get_secret_value(), "refresh_token": current}

        def exchange() -> dict[str, Any]:
            answer = self._session.post(self.settings.token_url, data=form, headers={"Accept": "application/json"})
            if answer.status_code == 200:
                return _json(answer)
            code = _list_code(answer)
            if code in ERROR_CODES:  # a REST-style error list (e.g. REQUEST_LIMIT_EXCEEDED)
                raise ERROR_CODES[code](f"Salesforce token endpoint answered HTTP {answer.status_code} {code}")
            if answer.status_code == 429:
                raise RateLimited("Salesforce token endpoint answered HTTP 429")
            if answer.status_code in (400, 401):
                body = _json(answer)
                raise ConfigError(f"Salesforce refused the refresh token ({body.get('error', answer.status_code)}: "
                                  f"{body.get('error_description', '')}); reconnect this Salesforce connection")
            if answer.status_code >= 500:
                raise RetryableError(f"Salesforce token endpoint answered HTTP {answer.status_code}")
            raise PermanentError(f"Salesforce token endpoint answered HTTP {answer.status_code}")

        answer = self._client.call("oauth.refresh", exchange)
        if not answer.get("access_token") or not answer.get("instance_url"):
            raise PermanentError("Salesforce token answer has no access_token/instance_url")
        rotated = answer.get("refresh_token")
        if rotated and rotated != current:
            self._ctx.tokens.put(self._token_name, rotated)  # durable before the new session is used
        self._sf = Salesforce(session_id=answer["access_token"], instance_url=answer["instance_url"],
                              session=self._session, version=self.settings.api_version, parse_float=Decimal)
        log.info("salesforce session refreshed", connection=self._ctx.connection, rotated=bool(rotated))

    def _classify(self, exc: Exception) -> PouracquitError:
        if isinstance(exc, requests.exceptions.SSLError):
            return ConfigError(f"TLS to Salesforce failed ({exc}); check ca_bundle")
        if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                      | requests.exceptions.ChunkedEncodingError):
            return RetryableError(f"salesforce unreachable: {type(exc).__name__}")
        if isinstance(exc, SalesforceError):
            code, message = _code(exc)
            text = f"salesforce answered HTTP {exc.status} {code}: {message}"[:500]
            cls = ERROR_CODES.get(code) or next(
                (c for e, c in EXCEPTIONS.items() if isinstance(exc, e)), None)
            if cls is None:
                server_side = isinstance(exc, SalesforceGeneralError) and exc.status >= 500
                cls = RetryableError if server_side else PermanentError
            if cls is ConfigError:
                text += " (check mappings/salesforce.toml or the connection's [mapping] overrides)"
            return cls(text)
        return PermanentError(f"salesforce call failed unexpectedly: {type(exc).__name__}: {exc}")

    def _query(self, soql: str, op: str) -> Iterator[list[dict[str, Any]]]:
        """Batches of one query, following nextRecordsUrl."""
        headers = {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}
        answer = self._call(op, lambda sf: sf.query(soql, headers=headers))
        while True:
            yield list(answer["records"])
            if answer.get("done", True) or not answer.get("nextRecordsUrl"):
                return
            url = answer["nextRecordsUrl"]
            answer = self._call(f"{op}.more", lambda sf, u=url: sf.query_more(u, identifier_is_url=True,
                                                                              headers=headers))

    # -- reading ------------------------------------------------------------------
    def _invoice_soql(self, where: str) -> str:
        modified = self._mapper.m["invoice"]["modified"]
        # names were checked against _NAME at construction; values come in ``where``, already escaped
        return format_soql("SELECT {:literal} FROM {:literal}{:literal} ORDER BY {:literal} ASC, Id ASC",
                           ", ".join(self._mapper.invoice_fields()), self._objects["invoice"], where, modified)

    def changes(self, cursor: str | None) -> Iterator[Page]:
        """Pages of invoices modified since ``cursor``, oldest first, each with the cursor after it."""
        since, seen = _parse_cursor(cursor)
        modified = self._mapper.m["invoice"]["modified"]
        while True:
            where = "" if since is None else format_soql(" WHERE {:literal} >= {}", modified, since)
            try:
                for batch in self._query(self._invoice_soql(where), "invoices.query"):
                    rows = []
                    for record in batch:
                        stamp = parse_when(record[modified])
                        if since is not None and (stamp < since or (stamp == since and record["Id"] in seen)):
                            continue  # already delivered before the cursor
                        since, seen = (stamp, {record["Id"]}) if since is None or stamp > since \
                            else (since, seen | {record["Id"]})
                        rows.append(record)
                    if rows:
                        assert since is not None
                        yield self._page(rows, _cursor(since, seen))
                return
            except _LocatorExpired:
                log.info("salesforce query locator expired; querying again from the cursor",
                         connection=self._ctx.connection)

    def _children(self, section: str, parents: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Child records (lines or payments) of ``parents``, by parent id, in batched IN queries."""
        sobject = self._objects.get(section)
        found: dict[str, list[dict[str, Any]]] = {p: [] for p in parents}
        if not sobject:
            return found
        parent = self._mapper.m[section]["parent"]
        fields = ", ".join(self._mapper.child_fields(section))
        for start in range(0, len(parents), IN_BATCH):
            chunk = list(parents[start:start + IN_BATCH])
            soql = format_soql("SELECT {:literal} FROM {:literal} WHERE {:literal} IN {} ORDER BY {:literal}, Id",
                               fields, sobject, parent, chunk, parent)
            for batch in self._query(soql, f"{section}s.query"):
                for record in batch:
                    found.setdefault(str(record[parent]), []).append(record)
        return found

    def _page(self, rows: Sequence[dict[str, Any]], cursor: str | None) -> Page:
        ids = [r["Id"] for r in rows]
        lines, payments = self._children("line", ids), self._children("payment", ids)
        invoices: list[Invoice] = []
        rejected: list[tuple[str, str]] = []
        for record in rows:
            try:
                invoices.append(self._mapper.invoice(record, lines.get(record["Id"], []),
                                                     payments.get(record["Id"], [])))
            except BadRecord as exc:
                log.warning("salesforce invoice rejected by the mapping", invoice=record["Id"], reason=str(exc))
                rejected.append((record["Id"], str(exc)))
        return Page(invoices=invoices, cursor=cursor, rejected=rejected)

    def get(self, ref: str) -> Invoice:
        """One invoice by id with its lines and payments; a mapping problem raises BadRecord."""
        rows = [r for batch in self._query(self._invoice_soql(format_soql(" WHERE Id = {}", ref)), "invoices.get")
                for r in batch]
        if not rows:
            raise PermanentError(f"no {self._objects['invoice']} with id {ref!r} in Salesforce")
        page = self._page(rows, None)
        if page.rejected:
            raise BadRecord(page.rejected[0][1])
        return page.invoices[0]

    # -- writing ------------------------------------------------------------------
    def attach(self, ref: str, document: Document, *, may_exist: bool) -> str:
        """Publish ``document`` as a ContentVersion on record ``ref``; returns the ContentVersion id."""
        file_object = self._objects.get("file") or "ContentVersion"
        if may_exist:
            soql = format_soql("SELECT Id, ContentDocumentId FROM {:literal} WHERE FirstPublishLocationId = {} "
                               "AND Title = {} ORDER BY CreatedDate ASC, Id ASC LIMIT 1",
                               file_object, ref, document.name)
            found = [r for batch in self._query(soql, "files.find") for r in batch]
            if found:
                return str(found[0]["Id"])
        body = {"Title": document.name, "PathOnClient": document.name, "FirstPublishLocationId": ref,
                "Description": f"Facture acquittée (sha256 {document.sha256[:16]})",
                "VersionData": base64.b64encode(document.content).decode("ascii")}
        answer = self._call("files.create", lambda sf: getattr(sf, file_object).create(body), replay_safe=False)
        return str(answer["id"])


def _list_code(response: requests.Response) -> str:
    try:
        parsed = response.json()
    except ValueError:
        return ""
    first = parsed[0] if isinstance(parsed, list) and parsed else None
    return str(first.get("errorCode") or "") if isinstance(first, dict) else ""


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


__all__ = ["ERROR_CODES", "EXCEPTIONS", "SalesforceSettings", "SalesforceSource"]
