"""The Xero sandbox over HTTP: identity, idempotency, limits, filters, and its
bodies (and the connector's) checked against Xero's official OpenAPI spec."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from pouracquit.sandbox.xero import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    DEMO_TENANT_ID,
    XeroSandbox,
)

TIME_FACTOR = 0.01
SPEC = Path(os.environ.get("POURACQUIT_XERO_SPEC", Path(__file__).resolve().parents[2] / "shared" /
                           "vendor-specs" / "xero" / "xero_accounting.yaml"))


@functools.cache
def _components() -> dict[str, Any]:
    """The spec's components, parsed once per test session (the file is close to 1 MB)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SPEC.read_text(encoding="utf-8"), Loader=loader)["components"]


@functools.cache
def validator(schema: str) -> Callable[[Any], Any]:
    """A compiled validator for ``#/components/schemas/<schema>``, $refs resolved in the spec."""
    fastjsonschema = pytest.importorskip("fastjsonschema")
    if not SPEC.exists():
        pytest.skip(f"Xero OpenAPI spec not found at {SPEC}")
    formats = {"uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
               "double": lambda _: True, "int32": lambda _: True, "byte": lambda _: True, "binary": lambda _: True}
    return fastjsonschema.compile({"$ref": f"#/components/schemas/{schema}", "components": _components()},
                                  formats=formats)


@pytest.fixture
def sandbox() -> Iterator[XeroSandbox]:
    with XeroSandbox(time_factor=TIME_FACTOR) as sb:
        yield sb  # type: ignore[misc]


def token(sb: XeroSandbox, refresh: str = DEMO_REFRESH_TOKEN) -> requests.Response:
    return requests.post(sb.url + "/connect/token", data={"grant_type": "refresh_token", "refresh_token": refresh},
                         auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), timeout=5)


def headers(sb: XeroSandbox, **extra: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(sb).json()["access_token"], "xero-tenant-id": DEMO_TENANT_ID,
            **extra}


def api(sb: XeroSandbox, method: str, path: str, hdrs: dict[str, str], **kwargs: Any) -> requests.Response:
    return requests.request(method, sb.api_url + path, headers=hdrs, timeout=5, **kwargs)


def invoice_body(contact_id: str, number: str = "S-1") -> dict[str, Any]:
    return {"Invoices": [{
        "Type": "ACCREC", "Status": "AUTHORISED", "InvoiceNumber": number, "Reference": f"pa-{number}",
        "Contact": {"ContactID": contact_id}, "Date": "2026-03-01", "DueDate": "2026-03-31",
        "LineAmountTypes": "Exclusive", "CurrencyCode": "EUR",
        "LineItems": [{"Description": "Conseil", "Quantity": 2, "UnitAmount": 100.0, "AccountCode": "706000",
                       "TaxType": "OUTPUT"}],
    }]}


def test_refresh_tokens_rotate_and_retire(sandbox: XeroSandbox) -> None:
    first = token(sandbox)
    assert first.status_code == 200
    pair = first.json()
    assert pair["expires_in"] == 1800 and pair["token_type"] == "Bearer"
    assert pair["refresh_token"] != DEMO_REFRESH_TOKEN
    again = token(sandbox)
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant"}
    assert token(sandbox, pair["refresh_token"]).status_code == 200
    bad_client = requests.post(sandbox.url + "/connect/token", auth=(DEMO_CLIENT_ID, "nope"), timeout=5,
                               data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert bad_client.json() == {"error": "invalid_client"}
    # The authorization-code grant, as a first connection gets its tokens.
    redirect = requests.get(sandbox.url + "/connect/authorize", allow_redirects=False, timeout=5, params={
        "client_id": DEMO_CLIENT_ID, "redirect_uri": "http://127.0.0.1/cb", "scope": "accounting.transactions"})
    code = redirect.headers["Location"].split("code=")[1].split("&")[0]
    exchanged = requests.post(sandbox.url + "/connect/token", auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), timeout=5,
                              data={"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": "http://127.0.0.1/cb"})
    assert exchanged.status_code == 200 and exchanged.json()["refresh_token"]


def test_bearer_and_tenant_are_required(sandbox: XeroSandbox) -> None:
    good = headers(sandbox)
    assert api(sandbox, "GET", "/TaxRates", {"xero-tenant-id": DEMO_TENANT_ID}).status_code == 401
    assert api(sandbox, "GET", "/TaxRates", {"Authorization": good["Authorization"]}).status_code == 403
    connections = requests.get(sandbox.url + "/connections", headers={"Authorization": good["Authorization"]},
                               timeout=5).json()
    assert [(c["tenantId"], c["tenantType"]) for c in connections] == [(DEMO_TENANT_ID, "ORGANISATION")]


def test_idempotency_key_replays_the_first_answer(sandbox: XeroSandbox) -> None:
    hdrs = headers(sandbox, **{"Idempotency-Key": "pa-1:invoice"})
    contact = api(sandbox, "GET", "/Contacts", hdrs).json()["Contacts"][0]["ContactID"]
    first = api(sandbox, "PUT", "/Invoices", hdrs, json=invoice_body(contact))
    second = api(sandbox, "PUT", "/Invoices", hdrs, json=invoice_body(contact))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert len(sandbox.books.invoices) == 1
    other = api(sandbox, "PUT", "/Invoices", {**hdrs, "Idempotency-Key": "pa-2:invoice"},
                json=invoice_body(contact))
    assert other.status_code == 400  # a new key is a new write: Xero's unique number refuses it
    body = other.json()
    assert body["Type"] == "ValidationException" and body["ErrorNumber"] == 10
    assert body["Elements"][0]["ValidationErrors"] == [{"Message": "Invoice # must be unique."}]
    validator("Error")(body)


def test_minute_limit_answers_429_with_xero_headers() -> None:
    with XeroSandbox(time_factor=1.0) as sb:
        hdrs = headers(sb)  # type: ignore[arg-type]
        seen = [api(sb, "GET", "/Accounts", hdrs) for _ in range(61)]  # type: ignore[arg-type]
        assert [r.status_code for r in seen[:60]] == [200] * 60
        assert seen[0].headers["X-MinLimit-Remaining"] == "59" and seen[59].headers["X-MinLimit-Remaining"] == "0"
        assert seen[0].headers["X-DayLimit-Remaining"] == "4999"
        assert int(seen[0].headers["X-AppMinLimit-Remaining"]) > 9000
        limited = seen[60]
        assert limited.status_code == 429 and limited.headers["X-Rate-Limit-Problem"] == "minute"
        assert 0 < int(limited.headers["Retry-After"]) <= 60


def test_concurrency_limit_names_itself(sandbox: XeroSandbox) -> None:
    from pouracquit.sandbox.xero import CONCURRENT

    response = sandbox.rate_limited(CONCURRENT, 1.0)
    assert response.status == 429 and response.headers == {"X-Rate-Limit-Problem": "concurrent"}


def test_where_filters_and_quotes(sandbox: XeroSandbox) -> None:
    hdrs = headers(sandbox)
    sandbox.seed({"Contacts": [{"Name": "L'Atelier d'O'Brien", "EmailAddress": "ob@x.fr"},
                               {"Name": 'Le "Bon" Coin'}]})

    def names(where: str) -> list[str]:
        response = api(sandbox, "GET", "/Contacts", hdrs, params={"where": where})
        assert response.status_code == 200, response.text
        return [c["Name"] for c in response.json()["Contacts"]]

    assert names('Name=="L\'Atelier d\'O\'Brien"') == ["L'Atelier d'O'Brien"]  # single quotes need nothing
    assert names('EmailAddress=="ob@x.fr" AND ContactStatus=="ACTIVE"') == ["L'Atelier d'O'Brien"]
    assert names('Name.StartsWith("Marie") OR Name.Contains("Dupont")') == ["Dupont & Fils SA", "Marie Curie"]
    # Xero has no escape for a double quote inside a literal: its parser refuses the filter.
    refused = api(sandbox, "GET", "/Contacts", hdrs, params={"where": 'Name=="Le \\"Bon\\" Coin"'})
    assert refused.status_code == 400
    assert refused.json() == {"ErrorNumber": 16, "Type": "QueryParseException", "Message": "Syntax error"}


def test_responses_match_the_openapi_spec(sandbox: XeroSandbox) -> None:
    hdrs = headers(sandbox)
    for path, schema in (("/Contacts", "Contacts"), ("/TaxRates", "TaxRates"), ("/Accounts", "Accounts")):
        validator(schema)(api(sandbox, "GET", path, hdrs).json())
    contact = api(sandbox, "PUT", "/Contacts", hdrs, json={"Contacts": [{"Name": "Nouveau"}]}).json()
    validator("Contacts")(contact)
    created = api(sandbox, "PUT", "/Invoices", hdrs, json=invoice_body(contact["Contacts"][0]["ContactID"])).json()
    validator("Invoices")(created)
    invoice_id = created["Invoices"][0]["InvoiceID"]
    paid = api(sandbox, "PUT", "/Payments", hdrs, json={"Payments": [{
        "Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "512000"}, "Date": "2026-03-05",
        "Amount": 240.0, "Reference": "VIR-1"}]}).json()
    validator("Payments")(paid)
    upload = api(sandbox, "PUT", f"/Invoices/{invoice_id}/Attachments/recu.pdf",
                 {**hdrs, "Content-Type": "application/pdf"}, data=b"%PDF-1.7").json()
    validator("Attachments")(upload)
    validator("Attachments")(api(sandbox, "GET", f"/Invoices/{invoice_id}/Attachments", hdrs).json())
    listed = api(sandbox, "GET", "/Invoices", hdrs, params={"page": 1}).json()
    validator("Invoices")(listed)
    assert listed["Invoices"][0]["Status"] == "PAID" and listed["pagination"]["itemCount"] == 1
    txn = api(sandbox, "PUT", "/BankTransactions", hdrs, json={"BankTransactions": [{
        "Type": "RECEIVE", "Contact": {"ContactID": contact["Contacts"][0]["ContactID"]},
        "BankAccount": {"Code": "512000"}, "LineItems": invoice_body("x")["Invoices"][0]["LineItems"]}]}).json()
    validator("BankTransactions")(txn)
    assert created["Invoices"][0]["Date"].startswith("/Date(") and created["DateTimeUTC"].endswith("+0000)/")


def test_the_connectors_requests_and_answers_match_the_openapi_spec(sandbox: XeroSandbox,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from test_xero_ledger import DictTokens, make_ledger, order

    from pouracquit.connectors.base import Document

    monkeypatch.setenv("XERO_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    monkeypatch.setenv("XERO_REFRESH_TOKEN", DEMO_REFRESH_TOKEN)
    ledger = make_ledger(sandbox, DictTokens())
    ref = ledger.record_receipt(order("V-1", name="Nouveau Client", email="n@c.fr", rates=("20", "0")),
                                may_exist=True)
    ledger.attach(ref, Document(name="V-1.pdf", content=b"%PDF-1.7"), may_exist=True)
    schemas = {"Contacts": "Contacts", "Invoices": "Invoices", "Payments": "Payments", "TaxRates": "TaxRates",
               "Accounts": "Accounts", "Attachments": "Attachments"}
    checked: set[tuple[str, str]] = set()
    for exchange in sandbox.exchanges:
        assert exchange["status"] == 200, exchange
        segments = exchange["path"].split("/")
        schema = schemas["Attachments" if "Attachments" in segments else segments[3]]
        if exchange["request"] is not None:
            validator(schema)(exchange["request"])
            checked.add(("request", schema))
        validator(schema)(exchange["response"])
        checked.add(("response", schema))
    assert {("request", s) for s in ("Contacts", "Invoices", "Payments")} <= checked
    assert {("response", s) for s in schemas.values()} <= checked


def test_spec_validation_catches_a_wrong_body() -> None:
    with pytest.raises(Exception, match="must be one of"):
        validator("Invoices")({"Invoices": [{"Type": "SALE"}]})
    with pytest.raises(Exception, match="must be number"):
        validator("Payments")({"Payments": [{"Amount": "12.00"}]})
