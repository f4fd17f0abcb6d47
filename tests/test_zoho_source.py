"""ZohoSource against the Zoho sandbox (and ``responses`` for the data-centre
routing and the error table): change feed, cursor, mapping, attach, errors."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import responses
from support import DictTokens, fast_context

from pouracquit.common.calls import CallMeter
from pouracquit.common.errors import AuthExpired, BadRecord, ConfigError, PermanentError, RateLimited, RetryableError
from pouracquit.connectors.base import CrmSource, Document, Page
from pouracquit.connectors.registry import ConnectorContext
from pouracquit.connectors.zoho.source import ZohoHttpError, ZohoSource, coql_literal
from pouracquit.sandbox.zoho.emulator import ZohoSandbox

SCALE = 0.01


@pytest.fixture
def box() -> Iterator[ZohoSandbox]:
    sb = ZohoSandbox(time_factor=SCALE).start()
    yield sb
    sb.stop()


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOHO_SECRET", ZohoSandbox.DEMO_CLIENT_SECRET)
    monkeypatch.setenv("ZOHO_REFRESH", ZohoSandbox.DEMO_REFRESH_TOKEN)


def make_source(accounts_url: str, tokens: DictTokens | None = None, **settings: Any) -> ZohoSource:
    ctx = fast_context(tokens or DictTokens(), SCALE)
    base: dict[str, Any] = {"accounts_url": accounts_url, "client_id": ZohoSandbox.DEMO_CLIENT_ID,
                            "client_secret": {"env": "ZOHO_SECRET"}, "refresh_token": {"env": "ZOHO_REFRESH"}}
    base.update(settings)
    return ZohoSource.from_settings(base, ctx)


def drain(source: ZohoSource, cursor: str | None = None) -> list[Page]:
    return list(source.changes(cursor))


def ids_of(pages: list[Page]) -> list[str]:
    return [inv.source_id for page in pages for inv in page.invoices]


def test_every_seeded_invoice_is_mapped_exactly(box: ZohoSandbox) -> None:
    box.seed({"demo": {"count": 60, "seed": 7}})
    source = make_source(box.url, page_size=25)
    assert isinstance(source, CrmSource)
    pages = drain(source)
    invoices = [inv for page in pages for inv in page.invoices]
    assert len(invoices) == len({i.source_id for i in invoices}) == 60
    assert not [r for page in pages for r in page.rejected]
    names = {inv.customer.name for inv in invoices}
    assert "Société Générale d'Équipements Lefèvre & Fils" in names and "Zoë Bréhaut" in names
    assert {Decimal("20"), Decimal("10"), Decimal("5.5"), Decimal("2.1"), Decimal("0")} <= {
        line.vat_rate for inv in invoices for line in inv.lines}
    assert all(isinstance(inv.amount_paid.amount, Decimal) for inv in invoices)
    demo = {r["id"]: r for r in box.dump_state()["Invoices"]}
    for inv in invoices:
        assert inv.gross_total.amount == Decimal(str(demo[inv.source_id]["Grand_Total"])).quantize(Decimal("0.01"))
        if demo[inv.source_id]["Status"] == "Paid":
            assert inv.fully_paid and inv.payments
    # one page of 25 costs: COQL + invoices by ids + accounts + contacts, plus one token
    assert box.call_counts()["by_endpoint"]["coql"] == 3


def test_a_list_answer_without_line_items_reads_each_record_once(box: ZohoSandbox) -> None:
    """Zoho documents subform data on GET /{module}/{id}: if the list call leaves
    Invoiced_Items out, each record of the page is read whole, and its lines kept."""
    box.seed({"demo": {"count": 6, "seed": 3}})
    lines = {inv.source_id: len(inv.lines) for page in drain(make_source(box.url)) for inv in page.invoices}
    box.list_subforms = False
    box.calls.clear()
    pages = drain(make_source(box.url))
    assert {inv.source_id: len(inv.lines) for page in pages for inv in page.invoices} == lines
    assert all(lines.values()) and box.call_counts()["by_endpoint"]["record_get"] == 6


def test_cursor_is_exact_across_pages_within_one_second(box: ZohoSandbox) -> None:
    box.seed({"demo": {"count": 45, "seed": 3}})  # one bulk import: 45 invoices share a Modified_Time
    source = make_source(box.url, page_size=7)
    pages = drain(source)
    everything = ids_of(pages)
    assert len(everything) == len(set(everything)) == 45 and len(pages) == 7
    for k, page in enumerate(pages):  # resuming from any page's cursor gives exactly the rest
        rest = ids_of(drain(source, page.cursor))
        assert rest == everything[sum(len(p.invoices) for p in pages[:k + 1]):]
    assert drain(source, pages[-1].cursor) == []
    touched = [everything[3], everything[40]]
    for ref in touched:
        box.touch(ref, {"Status": "Paid"})
    assert ids_of(drain(source, pages[-1].cursor)) == touched


def test_expired_token_is_refreshed_and_rotated_refresh_token_persisted(box: ZohoSandbox) -> None:
    box.seed({"demo": {"count": 5, "seed": 1}})
    box.tokens.rotate = True
    tokens = DictTokens()
    source = make_source(box.url, tokens=tokens)
    assert len(ids_of(drain(source))) == 5
    box.expire_access_tokens()
    assert len(ids_of(drain(source))) == 5
    assert box.call_counts()["by_endpoint"]["oauth_token"] == 2
    assert [name for name, _ in tokens.puts] == ["zoho.t.refresh_token"] * 2
    assert tokens.values["zoho.t.refresh_token"] != ZohoSandbox.DEMO_REFRESH_TOKEN


def test_rate_limited_calls_are_retried(box: ZohoSandbox) -> None:
    box.seed({"demo": {"count": 5, "seed": 1}})
    box.faults.scripted = [{"kind": "rate_limit", "method": "POST", "path": "/crm/v8/coql", "count": 2}]
    source = make_source(box.url)
    assert len(ids_of(drain(source))) == 5
    assert box.call_counts()["by_endpoint"]["coql"] == 3


def test_bad_client_is_a_config_error(box: ZohoSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOHO_SECRET", "wrong")
    with pytest.raises(ConfigError, match="invalid_client"):
        drain(make_source(box.url))
    with pytest.raises(ConfigError, match=r"zoho\.client_id"):
        ZohoSource.from_settings({"accounts_url": box.url, "client_secret": {"env": "ZOHO_SECRET"},
                                  "refresh_token": {"env": "ZOHO_REFRESH"}},
                                 ConnectorContext(connection="t", meter=CallMeter(), tokens=DictTokens()))


def test_unmapped_values_are_rejected_with_the_mapping_key(box: ZohoSandbox) -> None:
    box.seed({"demo": {"count": 4, "seed": 2}})
    odd = box.dump_state()["Invoices"][1]["id"]
    box.touch(odd, {"Status": "Lost In Transit"})
    pages = drain(make_source(box.url))
    rejected = dict(r for page in pages for r in page.rejected)
    assert list(rejected) == [odd] and "[status]" in rejected[odd] and len(ids_of(pages)) == 3
    with pytest.raises(BadRecord, match="Lost In Transit"):
        make_source(box.url).get(odd)


def test_vat_rate_from_the_tax_amount_when_line_tax_is_missing(box: ZohoSandbox) -> None:
    box.seed({"demo": {"count": 1, "seed": 2}})
    ref = box.dump_state()["Invoices"][0]["id"]
    items = box.dump_state()["Invoices"][0]["Invoiced_Items"]
    box.touch(ref, {"Invoiced_Items": [{k: v for k, v in item.items() if k != "Line_Tax"} for item in items]})
    derived = {line.description: line.vat_rate for line in make_source(box.url).get(ref).lines}
    assert derived == {item["Product_Name"]["name"]: Decimal(str(item["Line_Tax"][0]["percentage"]))
                       for item in items}


def test_coql_literals_survive_hostile_names(box: ZohoSandbox) -> None:
    hostile = "O'Brien \\' or id is not null -- (Fils) ''"
    box.seed({"records": {"Accounts": [{"Account_Name": hostile}, {"Account_Name": "Innocent"}]}})
    source = make_source(box.url)
    rows = source.coql(f"select Account_Name from Accounts where Account_Name = {coql_literal(hostile)}")
    assert [r["Account_Name"] for r in rows] == [hostile]
    with pytest.raises(PermanentError, match="SYNTAX_ERROR"):
        source.coql(f"select Account_Name from Accounts where Account_Name = '{hostile}'")


def test_attach_is_idempotent_after_a_dropped_upload(box: ZohoSandbox) -> None:
    box.seed({"demo": {"count": 2, "seed": 1}})
    ref = box.dump_state()["Invoices"][0]["id"]
    source = make_source(box.url)
    doc = Document(name="facture-acquittee-F-2026-0001.pdf", content=b"%PDF-1.7\n%%EOF\n")
    box.faults.scripted = [{"kind": "drop", "method": "POST", "path": r"/Attachments$", "count": 1}]
    with pytest.raises(RetryableError):
        source.attach(ref, doc, may_exist=False)
    first = source.attach(ref, doc, may_exist=True)
    assert source.attach(ref, doc, may_exist=True) == first
    assert [a["File_Name"] for a in box.dump_state()["attachments"][ref]] == [doc.name]
    assert box.call_counts()["by_endpoint"]["attachments_upload"] == 1


@responses.activate
def test_calls_go_to_the_api_domain_of_the_token_answer() -> None:
    responses.post("https://accounts.zoho.eu/oauth/v2/token",
                   json={"access_token": "1000.abc", "api_domain": "https://www.zohoapis.eu", "token_type": "Bearer",
                         "expires_in": 3600})
    responses.post("https://www.zohoapis.eu/crm/v8/coql", status=204)
    source = make_source("https://accounts.zoho.eu")
    assert drain(source) == []
    token_call, coql_call = responses.calls
    assert "grant_type=refresh_token" in str(token_call.request.body)
    assert coql_call.request.headers["Authorization"] == "Zoho-oauthtoken 1000.abc"
    assert "order by Modified_Time asc, id asc" in coql_call.request.body.decode()


@pytest.mark.parametrize(("server", "expected"), [
    ("https://accounts.zohocloud.ca", "https://accounts.zohocloud.ca"),  # Canada: not accounts.zoho.*
    ("https://accounts.zoho.sa/", "https://accounts.zoho.sa"),
    ("https://accounts.zoho.com.cn", "https://accounts.zoho.com.cn"),
    ("https://accounts.zoho.evil.example", "https://accounts.zoho.eu"),  # never sent the secret: configured one
    ("https://accounts.zoho.ca", "https://accounts.zoho.eu"),  # no such data centre
])
def test_the_code_is_exchanged_at_a_real_zoho_data_centre_only(server: str, expected: str) -> None:
    ctx = fast_context(DictTokens(), SCALE)
    app = ZohoSource.oauth_app({"accounts_url": "https://accounts.zoho.eu", "client_id": "c",
                                "client_secret": {"env": "ZOHO_SECRET"}}, ctx)
    assert app.token_url_for is not None and app.notes is not None
    assert app.token_url_for({"accounts-server": server}) == f"{expected}/oauth/v2/token"
    if expected != "https://accounts.zoho.eu":
        assert any(expected in line for line in app.notes({"accounts-server": server}, {}))


@responses.activate
@pytest.mark.parametrize(("answer", "setting", "expected"), [
    ({"api_domain": "https://www.zohoapis.ca"}, "https://www.zohoapis.com", "https://www.zohoapis.ca"),
    ({}, "https://www.zohoapis.com", "https://www.zohoapis.com"),
    ({}, None, "https://www.zohoapis.ca"),  # the data centre table for accounts.zohocloud.ca
])
def test_the_token_answers_api_domain_wins(answer: dict[str, str], setting: str | None, expected: str) -> None:
    responses.post("https://accounts.zohocloud.ca/oauth/v2/token",
                   json={"access_token": "1000.abc", "token_type": "Bearer", "expires_in": 3600, **answer})
    responses.post(f"{expected}/crm/v8/coql", status=204)
    source = make_source("https://accounts.zohocloud.ca", api_domain=setting)
    assert drain(source) == []
    assert responses.calls[1].request.url == f"{expected}/crm/v8/coql"


@pytest.mark.parametrize(("status", "code", "expected"), [
    (401, "INVALID_TOKEN", AuthExpired), (401, "AUTHENTICATION_FAILURE", AuthExpired),
    (401, "OAUTH_SCOPE_MISMATCH", ConfigError), (400, "INVALID_DATA", BadRecord),
    (400, "INVALID_QUERY", ConfigError), (400, "SYNTAX_ERROR", PermanentError), (429, "TOO_MANY_REQUESTS", RateLimited),
    (500, "INTERNAL_ERROR", RetryableError), (503, "", RetryableError), (404, "INVALID_URL_PATTERN", PermanentError),
])
def test_error_table(status: int, code: str, expected: type) -> None:
    source = make_source("https://accounts.zoho.eu")
    assert type(source._classify(ZohoHttpError(status, code, "m"))) is expected


@responses.activate
def test_connection_errors_are_retryable() -> None:
    import requests

    responses.post("https://accounts.zoho.eu/oauth/v2/token", body=requests.ConnectionError("reset"))
    with pytest.raises(RetryableError):
        drain(make_source("https://accounts.zoho.eu"))
