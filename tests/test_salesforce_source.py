"""SalesforceSource against the Salesforce sandbox: change feed, mapping, auth, limits, attach."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import DictTokens

from pouracquit.common.calls import CallMeter, RetryPolicy
from pouracquit.common.errors import ConfigError, PermanentError, RateLimited, RetryableError
from pouracquit.common.model import InvoiceStatus, PaymentMethod
from pouracquit.connectors.base import CrmSource, Document, Page
from pouracquit.connectors.registry import ConnectorContext
from pouracquit.connectors.salesforce.source import SalesforceSource
from pouracquit.sandbox.salesforce.emulator import SalesforceSandbox, connector_settings

SCALE = 0.01


@pytest.fixture
def box() -> Iterator[SalesforceSandbox]:
    sb = SalesforceSandbox(time_factor=SCALE).start()
    yield sb
    sb.stop()


def make_source(sb: SalesforceSandbox, tmp_path: Path, tokens: DictTokens | None = None,
                mapping: dict[str, Any] | None = None, **settings: Any) -> SalesforceSource:
    ctx = ConnectorContext(connection="t", meter=CallMeter(), tokens=tokens or DictTokens(),
                           retry=RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.05),
                           window_scale=SCALE, mapping=mapping or {})
    base = connector_settings(sb, tmp_path / "secrets")
    base.pop("vendor")
    base.update(settings)
    return SalesforceSource.from_settings(base, ctx)


def ids_of(pages: list[Page]) -> list[str]:
    return [inv.source_id for page in pages for inv in page.invoices]


def test_every_seeded_invoice_is_mapped(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 60, "seed": 7}})
    source = make_source(box, tmp_path)
    assert isinstance(source, CrmSource)
    pages = list(source.changes(None))
    invoices = [inv for page in pages for inv in page.invoices]
    assert len(invoices) == len({i.source_id for i in invoices}) == 60
    assert not [r for page in pages for r in page.rejected]
    names = {inv.customer.name for inv in invoices}
    assert "Société Générale d'Équipements Lefèvre & Fils" in names and "Zoë Bréhaut" in names
    assert {Decimal("20"), Decimal("10"), Decimal("5.5"), Decimal("2.1"), Decimal("0")} <= {
        line.vat_rate for inv in invoices for line in inv.lines}
    assert all(isinstance(line.unit_price, Decimal) for inv in invoices for line in inv.lines)
    paid = [inv for inv in invoices if inv.status is InvoiceStatus.PAID]
    assert paid and all(inv.fully_paid for inv in paid)
    assert any(len(inv.payments) == 2 for inv in paid)
    assert {p.method for inv in paid for p in inv.payments} >= {PaymentMethod.CHECK, PaymentMethod.TRANSFER}
    assert all("CGI" in line.vat_exemption for inv in invoices for line in inv.lines if line.vat_rate == 0)
    companies = [inv for inv in invoices if inv.customer.kind == "company"]
    assert companies and all(len(inv.customer.siren) == 9 for inv in companies)
    assert {inv.status for inv in invoices} == set(InvoiceStatus)
    assert all(inv.modified_at.tzinfo is not None for inv in invoices)
    # one page: token + invoice query + one line query + one payment query
    assert source._ctx.meter.snapshot()["salesforce"] == 4


def test_shared_stamp_across_batches_resumes_exactly(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 7, "seed": 1}})
    box.seed({"demo": {"count": 230, "seed": 2}})  # one transaction: 230 records, one SystemModstamp
    box.seed({"demo": {"count": 6, "seed": 4}})
    all_ids = sorted(r["Id"] for r in box.dump_state()["Invoice__c"])
    source = make_source(box, tmp_path, page_size=200)
    pages = list(source.changes(None))
    assert [len(p.invoices) for p in pages] == [200, 43]
    assert sorted(ids_of(pages)) == all_ids
    for n, page in enumerate(pages):
        assert ids_of(list(source.changes(page.cursor))) == ids_of(pages[n + 1:])
    target = pages[0].invoices[3].source_id
    box.touch(target, {"Status__c": "Paid"})
    changed = list(source.changes(pages[-1].cursor))
    assert ids_of(changed) == [target]
    assert list(source.changes(changed[-1].cursor)) == []


def test_a_record_stamped_again_in_the_cursor_second_is_not_missed(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 5, "seed": 1}})
    source = make_source(box, tmp_path)
    page = next(iter(source.changes(None)))
    first = page.invoices[0].source_id
    stamp = page.invoices[-1].modified_at
    box.seed({"records": {"Invoice__c": [{"Status__c": "Draft"}]}, "modstamp": stamp.isoformat()})
    box.touch(first, at=stamp)  # same second as the cursor, smaller id: still not new
    late = list(source.changes(page.cursor))
    assert [rid for p in late for rid, _ in p.rejected] == [box.dump_state()["Invoice__c"][-1]["Id"]]


def test_unknown_picklist_value_is_rejected_naming_the_key(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 4, "seed": 2}})
    target = box.dump_state()["Invoice__c"][1]["Id"]
    box.touch(target, {"Status__c": "Encaissée"})
    pages = list(make_source(box, tmp_path).changes(None))
    assert [rid for p in pages for rid, _ in p.rejected] == [target]
    assert "[status]" in pages[0].rejected[0][1] and "Encaissée" in pages[0].rejected[0][1]
    assert len(ids_of(pages)) == 3


def test_wrong_field_in_mapping_is_a_config_error(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 2, "seed": 2}})
    source = make_source(box, tmp_path, mapping={"invoice": {"number": "Numero_Facture__c"}})
    with pytest.raises(ConfigError, match="INVALID_FIELD"):
        list(source.changes(None))
    with pytest.raises(ConfigError, match=r"invoice\.status"):
        make_source(box, tmp_path, mapping={"invoice": {"status": "Status__c) OR (Name"}})


def test_settings_errors_name_the_key(box: SalesforceSandbox, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"salesforce\.page_size"):
        make_source(box, tmp_path, page_size=50)
    with pytest.raises(ConfigError, match=r"salesforce\.ca_bundle"):
        make_source(box, tmp_path, ca_bundle=str(tmp_path / "missing.pem"))


def test_expired_session_refreshes_and_persists_a_rotated_token(tmp_path: Path) -> None:
    with SalesforceSandbox(time_factor=SCALE, rotate_refresh_tokens=True) as box:
        box.seed({"demo": {"count": 3, "seed": 1}})
        tokens = DictTokens()
        source = make_source(box, tmp_path, tokens=tokens)
        ref = box.dump_state()["Invoice__c"][0]["Id"]
        assert source.get(ref).source_id == ref
        box.expire_sessions()
        assert source.get(ref).source_id == ref
        assert len(tokens.puts) == 2 and tokens.puts[0][1] != tokens.puts[1][1]
        assert all(name == "salesforce.t.refresh_token" for name, _ in tokens.puts)


def test_limit_exceeded_is_rate_limited(tmp_path: Path) -> None:
    with SalesforceSandbox(time_factor=SCALE, api_limit=2) as box:
        box.seed({"demo": {"count": 3, "seed": 1}})
        with pytest.raises(RateLimited, match="REQUEST_LIMIT_EXCEEDED"):
            list(make_source(box, tmp_path).changes(None))


def test_get_with_a_hostile_id_is_refused_not_injected(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 3, "seed": 1}})
    with pytest.raises(PermanentError, match="invalid ID"):
        make_source(box, tmp_path).get("x' OR Name != '")


@pytest.mark.parametrize("name", ["facture O'Brien \\ 100% a_b.pdf", "facture-acquittée F-2026-0001.pdf"])
def test_attach_is_idempotent_after_a_lost_response(box: SalesforceSandbox, tmp_path: Path, name: str) -> None:
    import json
    import urllib.request

    box.seed({"demo": {"count": 3, "seed": 1}})
    ref = box.dump_state()["Invoice__c"][0]["Id"]
    other = box.dump_state()["Invoice__c"][1]["Id"]
    source = make_source(box, tmp_path)
    decoy = source.attach(other, Document(name=name, content=b"%PDF-1.7 decoy"), may_exist=False)
    knobs = {"scripted": [{"kind": "drop", "method": "POST", "path": "/sobjects/ContentVersion"}]}
    request = urllib.request.Request(f"{box.url}/_sandbox/faults", data=json.dumps(knobs).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()
    document = Document(name=name, content=b"%PDF-1.7 receipt")
    with pytest.raises(RetryableError):
        source.attach(ref, document, may_exist=False)
    first = source.attach(ref, document, may_exist=True)
    assert source.attach(ref, document, may_exist=True) == first != decoy
    versions = [v for v in box.dump_state()["ContentVersion"] if v["FirstPublishLocationId"] == ref]
    assert [(v["Id"], v["PathOnClient"], v["Title"]) for v in versions] == [(first, name, name)]
