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
Settings, errors and the OAuth session are in ``session.py``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar

import structlog
from simple_salesforce import Salesforce, format_soql

from pouracquit.common.calls import VendorClient
from pouracquit.common.errors import BadRecord, ConfigError, PermanentError
from pouracquit.common.model import Invoice
from pouracquit.connectors.base import Document, Page
from pouracquit.connectors.oauth import OAuthApp
from pouracquit.connectors.registry import ConnectorContext, parse_settings
from pouracquit.mappings import load_mapping

from .mapping import SalesforceMapper, parse_when
from .session import HttpSession, LocatorExpired, SalesforceSettings, TokenExchange, classify, oauth_app

T = TypeVar("T")
log = structlog.get_logger("pouracquit.connectors.salesforce.source")

IN_BATCH = 200  # ids per "IN (...)" child query: keeps the GET URL far below Salesforce's URI limit
CONCURRENT = 10  # Salesforce caps long-running requests per org (25); stay well under it
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


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


class SalesforceSource:
    """Implements ``CrmSource`` for invoices kept in Salesforce."""

    role: ClassVar[Literal["source"]] = "source"
    vendor: ClassVar[str] = "salesforce"
    from .doctor import diagnose  # `pouracquit doctor` (connectors.base.Diagnosable)
    from .email_log import email_log_batch_size, log_email, log_emails  # EmailMessages (base.EmailLog, BatchEmailLog)

    def __init__(self, settings: SalesforceSettings, ctx: ConnectorContext) -> None:
        self.settings = settings
        self._ctx = ctx
        self._mapper = SalesforceMapper(load_mapping("salesforce", ctx.mapping))
        self._check_names()
        self._objects = self._mapper.objects
        self._session = HttpSession(settings.ca_bundle, settings.timeout)
        self._sf: Salesforce | None = None
        self._warned_usage = False
        self._client = VendorClient(vendor="salesforce", classify=classify, meter=ctx.meter,
                                    gate=ctx.gates("api", concurrency=CONCURRENT), retry=ctx.retry,
                                    refresh=self._refresh_session)
        self._tokens = TokenExchange(settings, ctx.tokens, ctx.connection, self._session, self._client.call)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> SalesforceSource:
        """Validate the settings; a problem is a ConfigError naming the key."""
        return cls(parse_settings(SalesforceSettings, settings, "salesforce"), ctx)

    @classmethod
    def oauth_app(cls, settings: Mapping[str, Any], ctx: ConnectorContext) -> OAuthApp:
        """What ``pouracquit connect salesforce`` needs (``session.oauth_app``)."""
        return oauth_app(cls.from_settings(settings, ctx).settings, ctx.connection)

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

    def _refresh_session(self) -> None:
        self._sf = self._tokens.open()

    def _call(self, op: str, fn: Callable[[Salesforce], T], *, replay_safe: bool = True) -> T:
        result = self._client.call(op, lambda: fn(self._api()), replay_safe=replay_safe)
        usage = self._sf.api_usage.get("api-usage") if self._sf is not None else None
        if usage is not None and usage.total and usage.used >= 0.9 * usage.total and not self._warned_usage:
            self._warned_usage = True
            log.warning("salesforce API allowance nearly used", connection=self._ctx.connection,
                        used=usage.used, total=usage.total)
        return result

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
            except LocatorExpired:
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


