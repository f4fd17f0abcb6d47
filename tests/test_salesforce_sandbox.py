"""The Salesforce sandbox against simple-salesforce itself, over TLS with the generated CA."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from pouracquit.sandbox.salesforce.emulator import SalesforceSandbox
from pouracquit.sandbox.salesforce.soql import SoqlError, parse

HOSTILE = ["O'Brien \\ 100% a_b", 'quote " and \\\' mix', "ligne\nsuivante\tet tab", "Ça coûte 5 € _%"]


@pytest.fixture
def box() -> Iterator[SalesforceSandbox]:
    sb = SalesforceSandbox(time_factor=0.01).start()
    yield sb
    sb.stop()


def session_for(box: SalesforceSandbox, tmp_path: Path) -> requests.Session:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(box.ca_pem)
    session = requests.Session()
    session.verify, session.trust_env = str(ca), False  # trust_env off: REQUESTS_CA_BUNDLE would win
    return session


def login(box: SalesforceSandbox, session: requests.Session) -> Salesforce:
    answer = session.post(f"{box.api_url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": box.DEMO_CLIENT_ID, "client_secret": box.DEMO_CLIENT_SECRET,
        "refresh_token": box.DEMO_REFRESH_TOKEN})
    assert answer.status_code == 200
    body = answer.json()
    assert body["instance_url"] == box.api_url and body["token_type"] == "Bearer" and "refresh_token" not in body
    return Salesforce(session_id=body["access_token"], instance_url=body["instance_url"], session=session,
                      version=box.API_VERSION, parse_float=Decimal)


def test_tls_needs_the_generated_ca(box: SalesforceSandbox, tmp_path: Path) -> None:
    plain = requests.Session()
    plain.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        plain.post(f"{box.api_url}/services/oauth2/token", data={})
    assert box.api_url.startswith("https://") and box.url.startswith("http://")
    # the control plane answers over plain HTTP, the API does not
    with urllib.request.urlopen(f"{box.url}/_sandbox/calls", timeout=5) as resp:
        assert json.load(resp)["total"] == 0
    assert login(box, session_for(box, tmp_path)).session_id


def test_query_pages_with_next_records_url(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 450, "seed": 5}})
    sf = login(box, session_for(box, tmp_path))
    first = sf.query("SELECT Id, Account__r.Name, Amount_Paid__c FROM Invoice__c ORDER BY SystemModstamp, Id",
                     headers={"Sforce-Query-Options": "batchSize=200"})
    assert (first["totalSize"], first["done"], len(first["records"])) == (450, False, 200)
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-200")
    ids = [r["Id"] for r in first["records"]]
    answer = first
    while not answer["done"]:
        answer = sf.query_more(answer["nextRecordsUrl"], identifier_is_url=True)
        ids += [r["Id"] for r in answer["records"]]
    assert len(ids) == len(set(ids)) == 450 and ids == sorted(ids)
    assert isinstance(first["records"][0]["Amount_Paid__c"], Decimal)
    everything = sf.query("SELECT Id FROM Invoice__c")  # the default batch is 2,000
    assert everything["done"] and len(everything["records"]) == 450
    assert sf.api_usage["api-usage"].total == box.API_LIMIT


def test_relationships_dates_and_filters(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 20, "seed": 3}})
    sf = login(box, session_for(box, tmp_path))
    rows = sf.query("SELECT Id, Issue_Date__c, SystemModstamp, Contact__r.Email, Account__r.Name FROM Invoice__c "
                    "WHERE (Status__c = 'paid' OR Status__c IN ('Void')) AND Issue_Date__c >= 2026-01-01 "
                    "AND SystemModstamp > 2020-01-01T00:00:00Z ORDER BY Issue_Date__c DESC LIMIT 5")["records"]
    assert 0 < len(rows) <= 5
    assert [r["Issue_Date__c"] for r in rows] == sorted((r["Issue_Date__c"] for r in rows), reverse=True)
    assert rows[0]["SystemModstamp"].endswith(".000+0000")
    assert all(r["Account__r"] is None or "Name" in r["Account__r"] for r in rows)
    with pytest.raises(SalesforceMalformedRequest, match="MALFORMED_QUERY"):
        sf.query("SELECT Id FROM Invoice__c WHERE Status__c = 'Paid' AND Name = 'x' OR Name = 'y'")
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
        sf.query("SELECT Nope__c FROM Invoice__c")
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_TYPE"):
        sf.query("SELECT Id FROM Invoice__x")


@pytest.mark.parametrize("name", HOSTILE)
def test_format_soql_escapes_survive_the_parser(name: str) -> None:
    where = parse(format_soql("SELECT Id FROM ContentVersion WHERE Title = {} AND Title LIKE '{:like}'", name, name))
    assert where.where is not None
    (_, (equal, like)) = where.where
    assert equal[3] == name  # '=' compares the exact text back
    assert like[3].replace("\\%", "%").replace("\\_", "_") == name
    with pytest.raises(SoqlError):
        parse("SELECT Id FROM ContentVersion WHERE Title = 'O'Brien'")


def test_content_version_links_and_hostile_titles(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 3, "seed": 1}})
    sf = login(box, session_for(box, tmp_path))
    ref = box.dump_state()["Invoice__c"][0]["Id"]
    for name in HOSTILE:
        created = sf.ContentVersion.create({"Title": name, "PathOnClient": f"{name}.pdf", "VersionData": "JVBERg==",
                                            "FirstPublishLocationId": ref})
        found = sf.query(format_soql("SELECT Id FROM ContentVersion WHERE FirstPublishLocationId = {} AND Title = {}",
                                     ref, name))["records"]
        assert [r["Id"] for r in found] == [created["id"]]
    like = sf.query(format_soql("SELECT Id FROM ContentVersion WHERE Title LIKE '{:like}'", "Ça coûte 5 € _%"))
    assert like["totalSize"] == 1  # % and _ escaped: no wildcard match on the others
    state = box.dump_state()
    assert len(state["ContentDocument"]) == len(HOSTILE)
    assert {link["LinkedEntityId"] for link in state["ContentDocumentLink"]} == {ref}
    fetched = sf.ContentVersion.get(created["id"])
    assert fetched["ContentDocumentId"] and fetched["FileExtension"] == "pdf"


def test_injection_attempt_is_just_an_invalid_id(box: SalesforceSandbox, tmp_path: Path) -> None:
    box.seed({"demo": {"count": 3, "seed": 1}})
    sf = login(box, session_for(box, tmp_path))
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_QUERY_FILTER_OPERATOR"):
        sf.query(format_soql("SELECT Id FROM Invoice__c WHERE Id = {}", "x' OR Name != '"))


def test_session_expiry_and_refresh_rotation(tmp_path: Path) -> None:
    with SalesforceSandbox(time_factor=0.01, rotate_refresh_tokens=True) as box:
        session = session_for(box, tmp_path)
        answer = session.post(f"{box.api_url}/services/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": box.DEMO_CLIENT_ID, "client_secret": box.DEMO_CLIENT_SECRET,
            "refresh_token": box.DEMO_REFRESH_TOKEN}).json()
        assert answer["refresh_token"] != box.DEMO_REFRESH_TOKEN
        again = session.post(f"{box.api_url}/services/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": box.DEMO_CLIENT_ID, "client_secret": box.DEMO_CLIENT_SECRET,
            "refresh_token": box.DEMO_REFRESH_TOKEN})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # the old one is retired
        sf = Salesforce(session_id=answer["access_token"], instance_url=answer["instance_url"], session=session,
                        version="62.0")
        assert sf.query("SELECT Id FROM Invoice__c")["done"]
        box.expire_sessions()
        with pytest.raises(SalesforceExpiredSession, match="INVALID_SESSION_ID"):
            sf.query("SELECT Id FROM Invoice__c")


def test_request_limit_exceeded(tmp_path: Path) -> None:
    with SalesforceSandbox(time_factor=0.01, api_limit=3) as box:
        sf = login(box, session_for(box, tmp_path))
        for _ in range(3):
            sf.query("SELECT Id FROM Account")
        assert sf.api_usage["api-usage"].used == 3
        with pytest.raises(SalesforceRefusedRequest, match="REQUEST_LIMIT_EXCEEDED"):
            sf.query("SELECT Id FROM Account")
