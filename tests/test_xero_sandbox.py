"""The Xero sandbox over HTTP: identity, idempotency, limits, filters, credit
notes and refunds, currencies, attachments; every call checked against Xero's
official OpenAPI spec (``tests/xero_spec.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from xero_spec import identity_errors, violations

from pouracquit.sandbox.xero.emulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    DEMO_TENANT_ID,
    XeroSandbox,
)

TIME_FACTOR = 0.01


@pytest.fixture
def sandbox() -> Iterator[XeroSandbox]:
    """A sandbox whose every API call must match Xero's spec."""
    with XeroSandbox(time_factor=TIME_FACTOR) as sb:
        yield sb  # type: ignore[misc]
        assert violations(sb.exchanges) == []


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
    assert identity_errors("AccessToken", pair) == []
    assert pair["expires_in"] == 1800 and pair["token_type"] == "Bearer"
    assert "accounting.invoices" in pair["scope"] and "accounting.transactions" not in pair["scope"]
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
    assert [identity_errors("Connection", c) for c in connections] == [[]]
    assert identity_errors("Connection", {"tenantId": 7}) == ["7 is not of type 'string'"]


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
    from pouracquit.sandbox.xero.emulator import CONCURRENT

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


def contact_id(sb: XeroSandbox, hdrs: dict[str, str]) -> str:
    return str(api(sb, "GET", "/Contacts", hdrs).json()["Contacts"][0]["ContactID"])


def credit_note_body(contact: str, number: str = "AV-1", **extra: Any) -> dict[str, Any]:
    return {"CreditNotes": [{
        "Type": "ACCRECCREDIT", "Status": "AUTHORISED", "CreditNoteNumber": number, "Reference": "Facture S-1",
        "Contact": {"ContactID": contact}, "Date": "2026-04-02", "LineAmountTypes": "Exclusive",
        "LineItems": [{"Description": "Conseil", "Quantity": 2, "UnitAmount": 100.0, "AccountCode": "706000",
                       "TaxType": "OUTPUT"}], **extra,
    }]}


def test_the_sandbox_answers_as_the_spec_says(sandbox: XeroSandbox) -> None:
    """Lists, creates, payments, uploads and a paged list, all through the spec check of the fixture."""
    hdrs = headers(sandbox)
    for path in ("/Contacts", "/TaxRates", "/Accounts", "/Currencies"):
        assert api(sandbox, "GET", path, hdrs).status_code == 200
    contact = api(sandbox, "PUT", "/Contacts", hdrs, json={"Contacts": [{"Name": "Nouveau"}]}).json()
    created = api(sandbox, "PUT", "/Invoices", hdrs, json=invoice_body(contact["Contacts"][0]["ContactID"])).json()
    invoice_id = created["Invoices"][0]["InvoiceID"]
    api(sandbox, "PUT", "/Payments", hdrs, json={"Payments": [{
        "Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "512000"}, "Date": "2026-03-05",
        "Amount": 240.0, "Reference": "VIR-1"}]})
    api(sandbox, "PUT", f"/Invoices/{invoice_id}/Attachments/recu.pdf",
        {**hdrs, "Content-Type": "application/octet-stream"}, data=b"%PDF-1.7")
    api(sandbox, "GET", f"/Invoices/{invoice_id}/Attachments", hdrs)
    listed = api(sandbox, "GET", "/Invoices", hdrs, params={"page": 1}).json()
    assert listed["Invoices"][0]["Status"] == "PAID" and listed["pagination"]["itemCount"] == 1
    txn = api(sandbox, "PUT", "/BankTransactions", hdrs, json={"BankTransactions": [{
        "Type": "RECEIVE", "Contact": {"ContactID": contact["Contacts"][0]["ContactID"]},
        "BankAccount": {"Code": "512000"}, "LineItems": invoice_body("x")["Invoices"][0]["LineItems"]}]}).json()
    assert txn["BankTransactions"][0]["Total"] == 240
    assert created["Invoices"][0]["Date"].startswith("/Date(") and created["DateTimeUTC"].endswith("+0000)/")
    assert len(sandbox.exchanges) == 11


def test_spec_check_catches_what_xero_would_not_take(sandbox: XeroSandbox) -> None:
    hdrs = headers(sandbox)
    invoice_id = api(sandbox, "PUT", "/Invoices", hdrs, json=invoice_body(contact_id(sandbox, hdrs))).json()
    api(sandbox, "PUT", f"/Invoices/{invoice_id['Invoices'][0]['InvoiceID']}/Attachments/recu.pdf",
        {**hdrs, "Content-Type": "application/pdf"}, data=b"%PDF-1.7")  # the spec takes octet-stream only
    wrong = dict(sandbox.exchanges[1], body=b'{"Invoices": [{"Type": "SALE"}]}',
                 headers={**sandbox.exchanges[1]["headers"], "content-type": "application/json"})
    found = violations([*sandbox.exchanges, wrong])
    assert len(found) == 2 and "Attachments/recu.pdf request" in found[0] and "SALE" in found[1]
    sandbox.exchanges.clear()


def test_credit_note_and_its_cash_refund(sandbox: XeroSandbox) -> None:
    hdrs = headers(sandbox)
    note = api(sandbox, "PUT", "/CreditNotes", hdrs, json=credit_note_body(contact_id(sandbox, hdrs))).json()
    (row,) = note["CreditNotes"]
    assert row["Type"] == "ACCRECCREDIT" and row["Status"] == "AUTHORISED" and row["Total"] == 240
    assert row["RemainingCredit"] == 240 and "Attachments" not in row
    again = api(sandbox, "PUT", "/CreditNotes", hdrs, json=credit_note_body(contact_id(sandbox, hdrs)))
    assert again.status_code == 400
    assert again.json()["Elements"][0]["ValidationErrors"] == [{"Message": "Credit Note # must be unique."}]
    refund = {"Payments": [{"CreditNote": {"CreditNoteID": row["CreditNoteID"]}, "Account": {"Code": "512000"},
                            "Date": "2026-04-02", "Amount": 240.0, "Reference": "Virement REMB-1"}]}
    paid = api(sandbox, "PUT", "/Payments", hdrs, json=refund).json()["Payments"][0]
    assert paid["PaymentType"] == "ARCREDITPAYMENT" and paid["CreditNote"]["Status"] == "PAID"
    too_much = api(sandbox, "PUT", "/Payments", hdrs, json=refund)
    assert too_much.status_code == 400 and "AUTHORISED" in too_much.text  # a PAID note takes no more
    found = api(sandbox, "GET", "/CreditNotes", hdrs, params={"where": 'CreditNoteNumber=="AV-1"'}).json()
    (listed,) = found["CreditNotes"]
    assert listed["Status"] == "PAID" and listed["RemainingCredit"] == 0 and len(listed["Payments"]) == 1
    assert api(sandbox, "GET", f"/CreditNotes/{row['CreditNoteID']}", hdrs).json()["CreditNotes"][0] == listed
    discounted = credit_note_body(contact_id(sandbox, hdrs), "AV-2")
    discounted["CreditNotes"][0]["LineItems"][0]["DiscountAmount"] = 10.0
    refused = api(sandbox, "PUT", "/CreditNotes", hdrs, json=discounted)
    assert refused.status_code == 400 and "Discounts" in refused.text


def test_attachments_on_credit_notes_and_bank_transactions(sandbox: XeroSandbox) -> None:
    hdrs = headers(sandbox)
    contact = contact_id(sandbox, hdrs)
    note = api(sandbox, "PUT", "/CreditNotes", hdrs, json=credit_note_body(contact)).json()["CreditNotes"][0]
    txn = api(sandbox, "PUT", "/BankTransactions", hdrs, json={"BankTransactions": [{
        "Type": "RECEIVE", "Contact": {"ContactID": contact}, "BankAccount": {"Code": "512000"},
        "LineItems": invoice_body("x")["Invoices"][0]["LineItems"]}]}).json()["BankTransactions"][0]
    raw = {**hdrs, "Content-Type": "application/octet-stream"}
    for kind, ident in (("CreditNotes", note["CreditNoteID"]), ("BankTransactions", txn["BankTransactionID"])):
        (stored,) = api(sandbox, "PUT", f"/{kind}/{ident}/Attachments/avoir.pdf", raw, data=b"%PDF").json()[
            "Attachments"]
        assert stored["MimeType"] == "application/pdf" and stored["ContentLength"] == 4  # typed by its name
        assert api(sandbox, "GET", f"/{kind}/{ident}/Attachments", hdrs).json()["Attachments"] == [stored]
    assert api(sandbox, "GET", f"/CreditNotes/{txn['BankTransactionID']}/Attachments", hdrs).status_code == 404


def test_currencies_the_organisation_has_added(sandbox: XeroSandbox) -> None:
    hdrs = headers(sandbox)
    codes = [c["Code"] for c in api(sandbox, "GET", "/Currencies", hdrs).json()["Currencies"]]
    assert codes == ["EUR", "USD"]  # the base currency is listed too
    body = invoice_body(contact_id(sandbox, hdrs), "USD-1")
    body["Invoices"][0].update(CurrencyCode="USD", CurrencyRate=1.085187)
    (usd,) = api(sandbox, "PUT", "/Invoices", hdrs, json=body).json()["Invoices"]
    assert usd["CurrencyCode"] == "USD" and Decimal(str(usd["CurrencyRate"])) == Decimal("1.085187")
    body = invoice_body(contact_id(sandbox, hdrs), "USD-2")
    body["Invoices"][0]["CurrencyCode"] = "USD"  # no rate: Xero's rate of the day
    assert api(sandbox, "PUT", "/Invoices", hdrs, json=body).json()["Invoices"][0]["CurrencyRate"] == 1.085
    body = invoice_body(contact_id(sandbox, hdrs), "GBP-1")
    body["Invoices"][0]["CurrencyCode"] = "GBP"
    refused = api(sandbox, "PUT", "/Invoices", hdrs, json=body)
    assert refused.status_code == 400
    assert refused.json()["Elements"][0]["ValidationErrors"] == [
        {"Message": "Organisation is not subscribed to currency GBP"}]
    txn = {"BankTransactions": [{"Type": "RECEIVE", "Contact": {"ContactID": contact_id(sandbox, hdrs)},
                                 "BankAccount": {"Code": "512000"}, "CurrencyCode": "USD",
                                 "LineItems": invoice_body("x")["Invoices"][0]["LineItems"]}]}
    mismatch = api(sandbox, "PUT", "/BankTransactions", hdrs, json=txn)
    assert mismatch.status_code == 400 and "bank account" in mismatch.text


def test_currencies_can_be_seeded(sandbox: XeroSandbox) -> None:
    requests.post(sandbox.url + "/_sandbox/seed", json={"Currencies": ["GBP"]}, timeout=5).raise_for_status()
    codes = [c["Code"] for c in api(sandbox, "GET", "/Currencies", headers(sandbox)).json()["Currencies"]]
    assert codes == ["EUR", "GBP"]


def test_an_organisation_without_the_currency() -> None:
    with XeroSandbox(time_factor=TIME_FACTOR, currencies=("EUR",)) as sb:
        hdrs = headers(sb)  # type: ignore[arg-type]
        assert [c["Code"] for c in api(sb, "GET", "/Currencies", hdrs).json()["Currencies"]] == ["EUR"]  # type: ignore[arg-type]
        body = invoice_body(contact_id(sb, hdrs), "USD-1")  # type: ignore[arg-type]
        body["Invoices"][0]["CurrencyCode"] = "USD"
        refused = api(sb, "PUT", "/Invoices", hdrs, json=body)  # type: ignore[arg-type]
        assert "not subscribed to currency USD" in refused.text
        assert violations(sb.exchanges) == []  # type: ignore[attr-defined]


def test_each_endpoint_needs_a_scope_that_opens_it(sandbox: XeroSandbox) -> None:
    sandbox.issuer.add_refresh_token("read-only", DEMO_CLIENT_ID, "accounting.settings accounting.invoices.read")
    hdrs = {**headers(sandbox), "Authorization": "Bearer " + token(sandbox, "read-only").json()["access_token"]}
    assert api(sandbox, "GET", "/Accounts", hdrs).status_code == 200
    assert api(sandbox, "GET", "/Invoices", hdrs).status_code == 200  # .read opens a GET
    for method, path in (("PUT", "/Invoices"), ("GET", "/Contacts"), ("PUT", "/Payments"),
                         ("GET", "/Invoices/x/Attachments")):
        refused = requests.request(method, sandbox.api_url + path, headers=hdrs, json={}, timeout=5)
        assert refused.status_code == 401, path
        assert refused.json()["Detail"] == "AuthorizationUnsuccessful" and refused.json()["Title"] == "Unauthorized"
