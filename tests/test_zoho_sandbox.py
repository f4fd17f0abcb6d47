"""The Zoho sandbox answers raw HTTP the way Zoho CRM v8 and Zoho Accounts do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pouracquit.sandbox.server import RateRule
from pouracquit.sandbox.zoho.emulator import ZohoSandbox


@pytest.fixture
def box() -> Iterator[ZohoSandbox]:
    sb = ZohoSandbox(time_factor=0.01).start()
    sb.seed({"demo": {"count": 30, "seed": 5}})
    yield sb
    sb.stop()


def token(sb: ZohoSandbox, **override: str) -> dict[str, Any]:
    form = {"grant_type": "refresh_token", "client_id": sb.DEMO_CLIENT_ID, "client_secret": sb.DEMO_CLIENT_SECRET,
            "refresh_token": sb.DEMO_REFRESH_TOKEN, **override}
    return requests.post(f"{sb.url}/oauth/v2/token", data=form, timeout=5).json()


def api(sb: ZohoSandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Zoho-oauthtoken {token(sb)['access_token']}", **kwargs.pop("headers", {})}
    return requests.request(method, f"{sb.url}{path}", headers=headers, timeout=5, **kwargs)


def coql(sb: ZohoSandbox, query: str) -> requests.Response:
    return api(sb, "POST", "/crm/v8/coql", json={"select_query": query})


def test_token_names_the_sandbox_as_api_domain_and_refuses_with_http_200(box: ZohoSandbox) -> None:
    good = token(box)
    assert good["api_domain"] == box.url and good["expires_in"] == 3600 and good["token_type"] == "Bearer"
    assert "refresh_token" not in good  # Zoho does not rotate refresh tokens
    assert token(box, client_secret="nope") == {"error": "invalid_client"}
    assert token(box, refresh_token="1000.unknown") == {"error": "invalid_code"}


def test_auth_errors_have_zoho_shape(box: ZohoSandbox) -> None:
    missing = requests.get(f"{box.url}/crm/v8/Invoices?fields=Status", timeout=5)
    assert missing.status_code == 401 and missing.json()["code"] == "AUTHENTICATION_FAILURE"
    bad = requests.get(f"{box.url}/crm/v8/Invoices?fields=Status", timeout=5,
                       headers={"Authorization": "Zoho-oauthtoken stale"})
    assert bad.status_code == 401
    assert bad.json() == {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}


def test_coql_pages_with_limit_offset_and_more_records(box: ZohoSandbox) -> None:
    seen: list[str] = []
    for offset in range(0, 40, 12):
        answer = coql(box, f"select Status, Modified_Time from Invoices where id is not null "
                           f"order by Modified_Time asc, id asc limit {offset}, 12")
        if answer.status_code == 204:
            break
        body = answer.json()
        seen += [r["id"] for r in body["data"]]
        assert body["info"]["count"] == len(body["data"])
        assert body["info"]["more_records"] == (offset + 12 < 30)
    assert len(seen) == len(set(seen)) == 30 and seen == sorted(seen, key=int)  # one second: id order


@pytest.mark.parametrize(("query", "code"), [
    ("select id from Invoices where id is not null limit 2001", "LIMIT_EXCEEDED"),
    ("select id from Invoices where id is not null limit 99000, 2000", "LIMIT_EXCEEDED"),
    ("select id from Invoices where id > 1 and id > 2 and id > 3", "SYNTAX_ERROR"),
    ("select Nope from Invoices where id is not null", "INVALID_QUERY"),
    ("select Invoiced_Items from Invoices where id is not null", "INVALID_QUERY"),
    ("select id from Invoices where Status = 'O'Brien'", "SYNTAX_ERROR"),
    ("select id from Invoices where id is not null order by " + ", ".join(
        ["id", "Status", "Modified_Time", "Created_Time", "Owner", "Subject", "Grand_Total", "Due_Date",
         "Invoice_Date", "Invoice_Number", "Currency"]), "LIMIT_EXCEEDED"),  # 11 ORDER BY fields
    ("select id from Invoices where id is not null order by id, id", "DUPLICATE_DATA"),
])
def test_coql_refusals(box: ZohoSandbox, query: str, code: str) -> None:
    answer = coql(box, query)
    assert answer.status_code == 400 and answer.json()["code"] == code and answer.json()["status"] == "error"


def test_coql_escapes_and_204(box: ZohoSandbox) -> None:
    box.seed({"records": {"Accounts": [{"Account_Name": "L'Atelier \\ (d'en face)"}]}})
    found = coql(box, r"select Account_Name from Accounts where Account_Name = 'L\'Atelier \\ (d\'en face)'")
    assert [r["Account_Name"] for r in found.json()["data"]] == ["L'Atelier \\ (d'en face)"]
    assert coql(box, "select id from Invoices where Status = 'Nothing'").status_code == 204


def test_list_needs_fields_limits_ids_and_pages_by_token(box: ZohoSandbox) -> None:
    assert api(box, "GET", "/crm/v8/Invoices").json()["code"] == "REQUIRED_PARAM_MISSING"
    ids = [r["id"] for r in box.dump_state()["Invoices"]]
    too_many = api(box, "GET", "/crm/v8/Invoices", params={"fields": "Status", "ids": ",".join(ids * 4)})
    assert too_many.json()["code"] == "LIMIT_EXCEEDED"
    got = api(box, "GET", "/crm/v8/Invoices", params={"fields": "Status,Invoiced_Items", "ids": ",".join(ids[:3])})
    assert {r["id"] for r in got.json()["data"]} == set(ids[:3]) and got.json()["data"][0]["Invoiced_Items"]
    first = api(box, "GET", "/crm/v8/Invoices", params={"fields": "Status", "per_page": 20}).json()
    assert first["info"]["more_records"] and first["info"]["next_page_token"]
    rest = api(box, "GET", "/crm/v8/Invoices", params={"fields": "Status", "per_page": 20,
                                                        "page_token": first["info"]["next_page_token"]}).json()
    assert len(first["data"]) + len(rest["data"]) == 30 and not rest["info"]["more_records"]
    deep = api(box, "GET", "/crm/v8/Invoices", params={"fields": "Status", "page": 11})
    assert deep.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"


def test_if_modified_since_and_touch_route(box: ZohoSandbox) -> None:
    ref = box.dump_state()["Invoices"][4]
    since = ref["Modified_Time"]
    assert api(box, "GET", "/crm/v8/Invoices", params={"fields": "Status"},
               headers={"If-Modified-Since": since}).status_code == 304
    touched = requests.post(f"{box.url}/_sandbox/zoho/records/{ref['id']}", json={"fields": {"Status": "Paid"}},
                            timeout=5).json()["data"][0]
    assert touched["Modified_Time"] > since and touched["Status"] == "Paid"
    changed = api(box, "GET", "/crm/v8/Invoices", params={"fields": "Status"}, headers={"If-Modified-Since": since})
    assert [r["id"] for r in changed.json()["data"]] == [ref["id"]]
    assert "sandbox_zoho_touch" not in box.call_counts()["by_endpoint"]


def test_attachments_upload_then_list(box: ZohoSandbox) -> None:
    ref = box.dump_state()["Invoices"][0]["id"]
    path = f"/crm/v8/Invoices/{ref}/Attachments"
    assert api(box, "GET", path, params={"fields": "File_Name,id"}).status_code == 204
    up = api(box, "POST", path, files={"file": ("recu.pdf", b"%PDF-1.7", "application/pdf")}).json()["data"][0]
    assert up["code"] == "SUCCESS" and up["status"] == "success" and up["details"]["id"]
    listed = api(box, "GET", path, params={"fields": "File_Name,id"}).json()["data"]
    assert listed == [{"id": up["details"]["id"], "File_Name": "recu.pdf"}]
    assert api(box, "POST", "/crm/v8/Invoices/1/Attachments",
               files={"file": ("x.pdf", b"x")}).json()["code"] == "INVALID_DATA"


def test_credit_limit_answers_too_many_requests(box: ZohoSandbox) -> None:
    box.rate_rules = (RateRule("API_CREDITS", limit=2, window=60.0),)
    answers = [api(box, "GET", "/crm/v8/Invoices", params={"fields": "Status"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["code"] == "TOO_MANY_REQUESTS"
