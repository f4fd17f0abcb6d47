"""The HubSpot sandbox answers the official hubspot-api-client as HubSpot does."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import hubspot
import pytest
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.objects import (
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.exceptions import ApiException

from pouracquit.sandbox.demo_data import demo_invoices, invoice_total, luhn_ok, vat_number
from pouracquit.sandbox.hubspot.emulator import HubSpotSandbox
from pouracquit.sandbox.server import RateRule


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    sb = HubSpotSandbox(time_factor=0.01).start()
    sb.seed({"demo": {"count": 60, "seed": 7}})
    yield sb
    sb.stop()


def sdk(sb: HubSpotSandbox, token: str = HubSpotSandbox.DEMO_PRIVATE_APP_TOKEN) -> hubspot.Client:
    return hubspot.Client.create(access_token=token, host=sb.url, retry=False)


def search(client: hubspot.Client, after: str | None = None, limit: int = 25) -> object:
    request = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}],
        sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        properties=["hs_number", "hs_invoice_status"], limit=limit, after=after)
    return client.crm.objects.search_api.do_search("invoices", request)


def test_demo_data_is_french_consistent_and_deterministic() -> None:
    invoices = demo_invoices()
    assert invoices == demo_invoices() and len(invoices) >= 50
    statuses = {i["status"] for i in invoices}
    assert statuses == {"paid", "partially_paid", "open", "voided", "draft"}
    assert sum(i["status"] == "paid" for i in invoices) > len(invoices) / 2
    rates = {line["vat_rate"] for i in invoices for line in i["lines"]}
    assert {"20", "10", "5.5", "2.1", "0"} <= rates
    for inv in invoices:
        customer = inv["customer"]
        if customer["kind"] == "company":
            assert luhn_ok(customer["siren"]) and customer["vat_number"] == vat_number(customer["siren"])
        if inv["status"] == "paid":
            assert sum(float(p["amount"]) * 100 for p in inv["payments"]) == pytest.approx(
                float(invoice_total(inv["lines"])) * 100)
    names = {i["customer"]["name"] for i in invoices}
    assert "Société Générale d'Équipements Lefèvre & Fils" in names and "Zoë Bréhaut" in names
    assert any(len(i["payments"]) == 2 for i in invoices) and any(not i["number"] for i in invoices)


def test_search_pages_with_after_and_total(sandbox: HubSpotSandbox) -> None:
    client = sdk(sandbox)
    first = search(client)
    assert first.total == 60 and len(first.results) == 25 and first.paging.next.after == "25"
    ids = [r.id for r in first.results]
    after = first.paging.next.after
    while after:
        page = search(client, after)
        ids += [r.id for r in page.results]
        after = page.paging.next.after if page.paging else None
    assert len(ids) == len(set(ids)) == 60
    stamps = [r.properties["hs_lastmodifieddate"] for r in first.results]
    assert stamps == sorted(stamps) and stamps[0].endswith("Z")


def test_search_cap_is_a_400(sandbox: HubSpotSandbox) -> None:
    with pytest.raises(ApiException) as caught:
        search(sdk(sandbox), after="10000")
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"


def test_batch_reads_and_v4_associations(sandbox: HubSpotSandbox) -> None:
    client = sdk(sandbox)
    ids = [r.id for r in search(client, limit=10).results]
    links = client.crm.associations.v4.batch_api.get_page(
        "invoices", "line_items", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": i} for i in ids]))
    assert {str(r._from.id) for r in links.results} == set(ids)
    line_ids = [t.to_object_id for r in links.results for t in r.to]
    read = client.crm.objects.batch_api.read("line_items", BatchReadInputSimplePublicObjectId(
        inputs=[{"id": i} for i in line_ids], properties=["name", "price", "quantity", "hs_tax_rate"]))
    assert len(read.results) == len(line_ids)
    assert all(r.properties["hs_tax_rate"] in {"20", "10", "5.5", "2.1", "0"} for r in read.results)
    one = client.crm.objects.basic_api.get_by_id("invoices", ids[0], associations=["line_items", "contacts"])
    assert one.associations["contacts"].results


def test_file_upload_search_and_note_with_associations(sandbox: HubSpotSandbox, tmp_path: Path) -> None:
    client = sdk(sandbox)
    invoice = search(client, limit=1).results[0].id
    pdf = tmp_path / "F-2026-0001-acquittee.pdf"
    pdf.write_bytes(b"%PDF-1.7 receipt")
    uploaded = client.files.files_api.upload(file=str(pdf), folder_path="/pouracquit",
                                             file_name=pdf.name, options=json.dumps({"access": "PRIVATE"}))
    assert uploaded.path == "/pouracquit/F-2026-0001-acquittee.pdf" and uploaded.access == "PRIVATE"
    found = client.files.files_api.do_search(name="F-2026-0001-acquittee")
    assert [f.id for f in found.results] == [uploaded.id]
    # HubSpot publishes no note -> invoice id: the portal's comes from the labels endpoint.
    [label] = client.crm.associations.v4.schema.definitions_api.get_all("notes", "invoices").results
    assert (label.category, label.label) == ("HUBSPOT_DEFINED", None) and label.type_id != 1282
    note = client.crm.objects.basic_api.create("notes", SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": "2026-03-01T10:00:00Z", "hs_attachment_ids": uploaded.id, "hs_note_body": "x"},
        associations=[{"to": {"id": invoice}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": label.type_id}]}]))
    state = sandbox.dump_state()
    assert [n["associations"] for n in state["notes"] if n["id"] == note.id] == [{"invoices": [invoice]}]
    assert state["files"][0]["size"] == len(b"%PDF-1.7 receipt")
    with pytest.raises(ApiException) as caught:
        client.crm.objects.basic_api.create("notes", SimplePublicObjectInputForCreate(
            properties={"hs_timestamp": "2026-03-01T10:00:00Z"},
            associations=[{"to": {"id": invoice}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 999}]}]))
    assert caught.value.status == 400


def test_published_labels_and_the_default_association(sandbox: HubSpotSandbox) -> None:
    client = sdk(sandbox)
    [deal] = client.crm.associations.v4.schema.definitions_api.get_all("notes", "deals").results
    assert (deal.category, deal.type_id, deal.label) == ("HUBSPOT_DEFINED", 214, None)
    with pytest.raises(Exception) as caught:  # the schema module's own ApiException
        client.crm.associations.v4.schema.definitions_api.get_all("notes", "unicorns")
    assert getattr(caught.value, "status", None) == 400
    invoice = search(client, limit=1).results[0].id
    note = client.crm.objects.basic_api.create("notes", SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": "2026-03-01T10:00:00Z", "hs_note_body": "x"}))
    linked = client.crm.associations.v4.basic_api.create_default("notes", note.id, "invoices", invoice)
    assert linked.status == "COMPLETE" and {(r._from.id, r.to.id) for r in linked.results} == {
        (note.id, invoice), (invoice, note.id)}
    [row] = [n for n in sandbox.dump_state()["notes"] if n["id"] == note.id]
    assert row["associations"] == {"invoices": [invoice]}


def test_expired_token_is_401_then_refresh_works(sandbox: HubSpotSandbox) -> None:
    oauth = hubspot.Client.create(host=sandbox.url, retry=False).oauth.tokens_api
    grant = oauth.create(grant_type="refresh_token", client_id=sandbox.DEMO_CLIENT_ID,
                         client_secret=sandbox.DEMO_CLIENT_SECRET, refresh_token=sandbox.DEMO_REFRESH_TOKEN)
    assert grant.expires_in == 1800 and grant.refresh_token == sandbox.DEMO_REFRESH_TOKEN
    search(sdk(sandbox, grant.access_token), limit=1)
    sandbox.expire_access_tokens()
    with pytest.raises(ApiException) as caught:
        search(sdk(sandbox, grant.access_token), limit=1)
    body = json.loads(caught.value.body)
    assert caught.value.status == 401 and body["category"] == "INVALID_AUTHENTICATION"
    fresh = oauth.create(grant_type="refresh_token", client_id=sandbox.DEMO_CLIENT_ID,
                         client_secret=sandbox.DEMO_CLIENT_SECRET, refresh_token=grant.refresh_token)
    assert search(sdk(sandbox, fresh.access_token), limit=1).total == 60
    with pytest.raises(Exception) as refused:
        oauth.create(grant_type="refresh_token", client_id=sandbox.DEMO_CLIENT_ID,
                     client_secret=sandbox.DEMO_CLIENT_SECRET, refresh_token="not-a-token")
    # the legacy v1 endpoint (served until 2027-02-16) answers RFC 6749 errors too, status kept
    assert {k: json.loads(refused.value.body)[k] for k in ("error", "status")} == {
        "error": "invalid_grant", "status": "BAD_REFRESH_TOKEN"}


def test_authorize_redirects_with_a_code_that_exchanges(sandbox: HubSpotSandbox) -> None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    url = f"{sandbox.url}/oauth/authorize?client_id={sandbox.DEMO_CLIENT_ID}&redirect_uri=http://127.0.0.1:1/cb&state=s1"
    with pytest.raises(urllib.request.HTTPError) as caught:
        opener.open(url)
    location = caught.value.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["s1"]
    oauth = hubspot.Client.create(host=sandbox.url, retry=False).oauth.tokens_api
    grant = oauth.create(grant_type="authorization_code", code=query["code"][0], redirect_uri="http://127.0.0.1:1/cb",
                         client_id=sandbox.DEMO_CLIENT_ID, client_secret=sandbox.DEMO_CLIENT_SECRET)
    assert grant.access_token and grant.refresh_token


class TightSandbox(HubSpotSandbox):
    rate_rules = (RateRule("TEN_SECONDLY_ROLLING", limit=3, window=10.0),)


def test_burst_limit_429_then_retry_after_succeeds() -> None:
    with TightSandbox(time_factor=0.02) as sb:
        sb.seed({"demo": {"count": 5, "seed": 1}})
        client = sdk(sb)
        ok = client.crm.objects.basic_api.get_page("invoices")
        for _ in range(2):
            client.crm.objects.basic_api.get_page("invoices")
        assert ok.results
        with pytest.raises(ApiException) as caught:
            client.crm.objects.basic_api.get_page("invoices")
        error = caught.value
        body = json.loads(error.body)
        assert error.status == 429 and body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["errorType"] == "RATE_LIMIT" and error.headers["X-HubSpot-RateLimit-Max"] == "3"
        time.sleep(float(error.headers["Retry-After"]))
        assert client.crm.objects.basic_api.get_page("invoices").results


def test_search_is_limited_per_second() -> None:
    with HubSpotSandbox(time_factor=1.0) as sb:
        client = sdk(sb)
        for _ in range(HubSpotSandbox.SEARCH_PER_SECOND):
            search(client, limit=1)
        with pytest.raises(ApiException) as caught:
            search(client, limit=1)
        assert caught.value.status == 429
        assert json.loads(caught.value.body)["message"] == "You have reached your secondly limit."


def test_touch_route_bumps_modified_date(sandbox: HubSpotSandbox) -> None:
    invoice = sandbox.dump_state()["invoices"][0]
    request = urllib.request.Request(
        f"{sandbox.url}/_sandbox/hubspot/invoices/{invoice['id']}", method="POST",
        data=json.dumps({"properties": {"hs_invoice_status": "paid"}}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        touched = json.loads(answer.read())
    assert touched["properties"]["hs_invoice_status"] == "paid"
    assert touched["properties"]["hs_lastmodifieddate"] > invoice["properties"]["hs_lastmodifieddate"]
    assert "sandbox_hubspot_touch" not in sandbox.call_counts()["by_endpoint"]
