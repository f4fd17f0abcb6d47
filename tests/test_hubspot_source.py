"""HubSpotSource against a real HubSpot sandbox: change feed, mapping, attach, errors."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from support import DictTokens, fast_context

from pouracquit.common.errors import ConfigError, RetryableError
from pouracquit.common.model import InvoiceStatus, PaymentMethod
from pouracquit.connectors.base import CrmSource, Document, Page
from pouracquit.connectors.hubspot.auth import OAUTH_SCOPES
from pouracquit.connectors.hubspot.source import HubSpotSource
from pouracquit.sandbox.hubspot.emulator import HubSpotSandbox

SCALE = 0.01


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    sb = HubSpotSandbox(time_factor=SCALE).start()
    yield sb
    sb.stop()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HS_TOKEN", HubSpotSandbox.DEMO_PRIVATE_APP_TOKEN)
    monkeypatch.setenv("HS_SECRET", HubSpotSandbox.DEMO_CLIENT_SECRET)
    monkeypatch.setenv("HS_REFRESH", HubSpotSandbox.DEMO_REFRESH_TOKEN)
    monkeypatch.setenv("HS_BAD", "pat-eu1-wrong")


def make_source(sb: HubSpotSandbox, tokens: DictTokens | None = None, **settings: Any) -> HubSpotSource:
    ctx = fast_context(tokens or DictTokens(), SCALE)
    base: dict[str, Any] = {"base_url": sb.url, "access_token": {"env": "HS_TOKEN"}}
    base.update(settings)
    return HubSpotSource.from_settings({k: v for k, v in base.items() if v is not None}, ctx)


def drain(source: HubSpotSource, cursor: str | None = None) -> list[Page]:
    return list(source.changes(cursor))


def ids_of(pages: list[Page]) -> list[str]:
    return [inv.source_id for page in pages for inv in page.invoices]


def test_changes_returns_every_seeded_invoice_mapped(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 60, "seed": 7}})
    source = make_source(sandbox, page_size=25)
    assert isinstance(source, CrmSource)
    pages = drain(source)
    invoices = [inv for page in pages for inv in page.invoices]
    assert len(invoices) == len({i.source_id for i in invoices}) == 60
    assert not [r for page in pages for r in page.rejected]
    names = {inv.customer.name for inv in invoices}
    assert "Société Générale d'Équipements Lefèvre & Fils" in names and "Zoë Bréhaut" in names
    rates = {line.vat_rate for inv in invoices for line in inv.lines}
    assert {Decimal("20"), Decimal("10"), Decimal("5.5"), Decimal("2.1"), Decimal("0")} <= rates
    assert all(isinstance(line.unit_price, Decimal) for inv in invoices for line in inv.lines)
    paid = [inv for inv in invoices if inv.status is InvoiceStatus.PAID]
    assert paid and all(inv.fully_paid for inv in paid)
    assert any(len(inv.payments) == 2 for inv in paid)
    assert {p.method for inv in paid for p in inv.payments} - {PaymentMethod.OTHER}
    exempt = [line for inv in invoices for line in inv.lines if line.vat_rate == 0]
    assert exempt and all("CGI" in line.vat_exemption for line in exempt)
    companies = [inv for inv in invoices if inv.customer.kind == "company"]
    assert all(len(inv.customer.siren) == 9 and inv.customer.vat_number.startswith("FR") for inv in companies)
    assert {inv.status for inv in invoices} == set(InvoiceStatus)
    assert all(inv.modified_at.tzinfo is not None for inv in invoices)
    # Search pages are read together: one search per 25, then four association reads and
    # one object read per kind (per 100 records) for all 60 invoices.
    searches = 60 // 25 + 1
    line_items = sum(len(inv.lines) for inv in invoices)
    assert source._ctx.meter.snapshot()["hubspot"] <= searches + 4 + 2 + -(-line_items // 100) + 1


def test_resume_returns_nothing_and_a_touch_returns_exactly_that_invoice(
        sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 20, "seed": 3}})
    source = make_source(sandbox, page_size=10)
    cursor = drain(source)[-1].cursor
    assert drain(source, cursor) == []
    target = sandbox.dump_state()["invoices"][4]["id"]
    sandbox.touch(target, {"hs_invoice_status": "paid"})
    pages = drain(source, cursor)
    assert ids_of(pages) == [target]
    assert drain(source, pages[-1].cursor) == []


def test_shared_timestamp_across_pages_no_miss_no_duplicate(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 7, "seed": 1}})
    shared = int(time.time() * 1000) + 5_000
    sandbox.seed({"demo": {"count": 23, "seed": 2, "timestamp_ms": shared}})
    sandbox.seed({"demo": {"count": 6, "seed": 4}})
    all_ids = {r["id"] for r in sandbox.dump_state()["invoices"]}
    source = make_source(sandbox, page_size=10)
    pages = drain(source)
    assert sorted(ids_of(pages)) == sorted(all_ids)
    # Resuming from any page's cursor yields exactly what came after it.
    for n, page in enumerate(pages):
        later = ids_of(pages[n + 1:])
        assert sorted(ids_of(drain(source, page.cursor))) == sorted(later)


class LowCapSandbox(HubSpotSandbox):
    SEARCH_CAP = 15


def test_window_moves_past_the_search_cap(env: None) -> None:
    with LowCapSandbox(time_factor=SCALE) as sb:
        sb.seed({"demo": {"count": 45, "seed": 5}})
        source = make_source(sb, page_size=10)
        ids = ids_of(drain(source))
        assert len(ids) == len(set(ids)) == 45


def test_unmapped_status_is_rejected_not_fatal(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 3, "seed": 1}})
    good = sandbox.dump_state()["invoices"][0]
    sandbox.seed({"objects": {"invoices": [{"properties": {**{k: v for k, v in good["properties"].items()
                                                               if not k.startswith("hs_object")},
                                                            "hs_invoice_status": "disputed"},
                                             "associations": good["associations"]}]}})
    pages = drain(make_source(sandbox))
    assert len(ids_of(pages)) == 3
    [(bad_id, reason)] = [r for page in pages for r in page.rejected]
    assert bad_id not in ids_of(pages) and "disputed" in reason and "[status]" in reason


def test_get_one_invoice(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 5, "seed": 7}})
    record = sandbox.dump_state()["invoices"][0]
    invoice = make_source(sandbox).get(record["id"])
    assert invoice.source_id == record["id"]
    assert len(invoice.lines) == len(record["associations"]["line_items"])


def doc(name: str) -> Document:
    return Document(name=name, content=b"%PDF-1.7 facture acquittee " + name.encode())


def notes_for(sb: HubSpotSandbox, file_id: str) -> list[dict[str, Any]]:
    return [n for n in sb.dump_state()["notes"] if n["properties"]["hs_attachment_ids"] == file_id]


def test_attach_is_two_calls_and_idempotent(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 10, "seed": 7}})
    source = make_source(sandbox)
    invoices = [inv for page in drain(source) for inv in page.invoices if inv.deal_id]
    invoice = invoices[0]
    sandbox.calls.clear()
    note_id = source.attach(invoice.source_id, doc("F-2026-0001-acquittee.pdf"), may_exist=False)
    # The note -> invoice association type is read once per process, then upload + note.
    assert sandbox.call_counts()["by_endpoint"] == {"assoc_labels": 1, "files_upload": 1, "crm_create": 1}
    sandbox.calls.clear()
    source.attach(invoices[1].source_id, doc("F-2026-0009-acquittee.pdf"), may_exist=False)
    assert sandbox.call_counts()["total"] == 2
    assert source.attach(invoice.source_id, doc("F-2026-0001-acquittee.pdf"), may_exist=True) == note_id
    state = sandbox.dump_state()
    file = next(f for f in state["files"] if f["path"].endswith("F-2026-0001-acquittee.pdf"))
    [note] = notes_for(sandbox, file["id"])
    assert note["id"] == note_id
    assert note["associations"] == {"invoices": [invoice.source_id], "deals": [invoice.deal_id]}
    # A fresh process has no cached deal: it reads the association once more.
    again = make_source(sandbox)
    again.attach(invoice.source_id, doc("F-2026-0001-duplicata.pdf"), may_exist=False)
    assert [n["associations"]["deals"] for n in sandbox.dump_state()["notes"]
            if n["associations"]["invoices"] == [invoice.source_id]] == [[invoice.deal_id]] * 2


def test_dropped_upload_then_replay_makes_one_file_one_note(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 4, "seed": 7}})
    source = make_source(sandbox)
    invoice = ids_of(drain(source))[0]
    sandbox.faults.scripted = [{"kind": "drop", "method": "POST", "path": "^/files/v3/files$", "count": 1}]
    with pytest.raises(RetryableError):
        source.attach(invoice, doc("F-2026-0002-acquittee.pdf"), may_exist=False)
    assert len(sandbox.dump_state()["files"]) == 1 and not sandbox.dump_state()["notes"]
    note_id = source.attach(invoice, doc("F-2026-0002-acquittee.pdf"), may_exist=True)
    sandbox.faults.scripted = [{"kind": "drop", "method": "POST", "path": "^/crm/v3/objects/notes$", "count": 1}]
    with pytest.raises(RetryableError):
        source.attach(invoice, doc("F-2026-0003-acquittee.pdf"), may_exist=False)
    other = source.attach(invoice, doc("F-2026-0003-acquittee.pdf"), may_exist=True)
    state = sandbox.dump_state()
    assert len(state["files"]) == 2 and len(state["notes"]) == 2
    assert {note_id, other} == {n["id"] for n in state["notes"]}


def test_server_errors_exhaust_retries_as_retryable(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 3, "seed": 7}})
    sandbox.faults.error_rate = 1.0
    source = make_source(sandbox)
    with pytest.raises(RetryableError):
        drain(source)
    assert sandbox.call_counts()["by_endpoint"]["crm_search"] == 4


def test_rate_limit_is_retried_after_retry_after(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 3, "seed": 7}})
    sandbox.faults.scripted = [{"kind": "rate_limit", "path": "/search$", "count": 2}]
    source = make_source(sandbox)
    assert len(ids_of(drain(source))) == 3
    assert source._ctx.meter.errors[("hubspot", "RateLimited")] == 2


def test_bad_private_token_is_a_config_error(sandbox: HubSpotSandbox, env: None) -> None:
    source = make_source(sandbox, access_token={"env": "HS_BAD"})
    with pytest.raises(ConfigError, match="access_token"):
        drain(source)


def test_settings_errors_name_the_key(sandbox: HubSpotSandbox, env: None) -> None:
    with pytest.raises(ConfigError, match="page_size"):
        make_source(sandbox, page_size=500)
    with pytest.raises(ConfigError, match="client_secret"):
        make_source(sandbox, access_token=None, client_id="x", refresh_token={"env": "HS_REFRESH"})


def test_oauth_refresh_on_start_and_after_expiry(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 5, "seed": 7}})
    tokens = DictTokens()
    source = make_source(sandbox, tokens, access_token=None, client_id=HubSpotSandbox.DEMO_CLIENT_ID,
                         client_secret={"env": "HS_SECRET"}, refresh_token={"env": "HS_REFRESH"})
    assert len(ids_of(drain(source))) == 5
    assert tokens.values == {"hubspot.t.refresh_token": HubSpotSandbox.DEMO_REFRESH_TOKEN}
    sandbox.expire_access_tokens()
    assert len(ids_of(drain(source))) == 5
    assert sandbox.call_counts()["by_endpoint"]["oauth_token"] == 2


def test_refused_refresh_token_is_a_config_error(sandbox: HubSpotSandbox, env: None) -> None:
    tokens = DictTokens()
    tokens.put("hubspot.t.refresh_token", "revoked-token")
    source = make_source(sandbox, tokens, access_token=None, client_id=HubSpotSandbox.DEMO_CLIENT_ID,
                         client_secret={"env": "HS_SECRET"}, refresh_token={"env": "HS_REFRESH"})
    with pytest.raises(ConfigError, match="invalid_grant"):
        drain(source)
    assert "oauth_token_v1" not in sandbox.call_counts()["by_endpoint"]  # only the 2026-03 endpoint


def test_token_parameters_travel_in_the_body_only(sandbox: HubSpotSandbox) -> None:
    form = {"grant_type": "refresh_token", "client_id": HubSpotSandbox.DEMO_CLIENT_ID,
            "client_secret": HubSpotSandbox.DEMO_CLIENT_SECRET, "refresh_token": HubSpotSandbox.DEMO_REFRESH_TOKEN}
    ok = requests.post(f"{sandbox.url}/oauth/2026-03/token", data=form, timeout=5)
    assert ok.status_code == 200 and set(ok.json()) >= {"access_token", "refresh_token", "expires_in", "scopes"}
    leaked = requests.post(f"{sandbox.url}/oauth/2026-03/token", params=form, timeout=5)
    assert leaked.status_code == 400 and leaked.json()["error"] == "invalid_request"
    bad = requests.post(f"{sandbox.url}/oauth/2026-03/token", data={**form, "client_secret": "x"}, timeout=5)
    assert (bad.status_code, bad.json()["error"], bad.json()["status"]) == (400, "invalid_client", "BAD_CLIENT_ID")


def test_the_requested_scopes_cover_every_call(sandbox: HubSpotSandbox, env: None) -> None:
    """A grant of exactly OAUTH_SCOPES reads, uploads and notes; one without ``files`` is refused."""
    sandbox.seed({"demo": {"count": 3, "seed": 7}})
    for scopes, works in ((OAUTH_SCOPES, True), (tuple(s for s in OAUTH_SCOPES if s != "files"), False)):
        refresh = f"granted-{len(scopes)}"
        sandbox.tokens.add_refresh_token(refresh, HubSpotSandbox.DEMO_CLIENT_ID, " ".join(scopes))
        tokens = DictTokens()
        tokens.put("hubspot.t.refresh_token", refresh)
        source = make_source(sandbox, tokens, access_token=None, client_id=HubSpotSandbox.DEMO_CLIENT_ID,
                             client_secret={"env": "HS_SECRET"}, refresh_token={"env": "HS_REFRESH"})
        invoice = ids_of(drain(source))[0]
        if works:
            source.attach(invoice, doc(f"F-scope-{len(scopes)}.pdf"), may_exist=True)
        else:
            with pytest.raises(ConfigError, match="403"):
                source.attach(invoice, doc(f"F-scope-{len(scopes)}.pdf"), may_exist=True)


def test_unknown_note_label_is_a_config_error(sandbox: HubSpotSandbox, env: None) -> None:
    sandbox.seed({"demo": {"count": 2, "seed": 7}})
    ctx = fast_context(DictTokens(), SCALE)
    ctx = dataclasses.replace(ctx, mapping={"associations": {"note_to_invoice_label": "Receipt"}})
    source = HubSpotSource.from_settings({"base_url": sandbox.url, "access_token": {"env": "HS_TOKEN"}}, ctx)
    invoice = ids_of(drain(source))[0]
    with pytest.raises(ConfigError, match="note_to_invoice_label"):
        source.attach(invoice, doc("F-label.pdf"), may_exist=False)
    assert not sandbox.dump_state()["notes"]
