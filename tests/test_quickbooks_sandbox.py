"""The official QuickBooks clients (intuitlib, python-quickbooks) against the sandbox, unchanged."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException, ValidationException
from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import AttachableRef, Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.payment import Payment as QboPayment
from quickbooks.objects.payment import PaymentLine
from quickbooks.objects.preferences import Preferences
from quickbooks.objects.refundreceipt import RefundReceipt
from quickbooks.objects.salesreceipt import SalesReceipt
from quickbooks.objects.tax import TaxLine, TaxLineDetail, TxnTaxDetail
from quickbooks.objects.taxcode import TaxCode
from quickbooks.objects.taxrate import TaxRate

from pouracquit.sandbox.quickbooks.emulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REALM_ID,
    DEMO_REFRESH_TOKEN,
    QuickBooksSandbox,
)

TIME_FACTOR = 0.01


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[QuickBooksSandbox]:
    # requests-oauthlib (python-quickbooks' default session) refuses plain http; the sandbox is local.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with QuickBooksSandbox(time_factor=TIME_FACTOR) as sb:
        yield sb  # type: ignore[misc]


def auth_client(sb: QuickBooksSandbox) -> AuthClient:
    return AuthClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, "http://127.0.0.1/callback", sb.discovery_url)


def connect(sb: QuickBooksSandbox) -> QuickBooks:
    auth = auth_client(sb)
    qb = QuickBooks(auth_client=auth, refresh_token=DEMO_REFRESH_TOKEN, company_id=DEMO_REALM_ID,
                    minorversion=75, use_decimal=True)
    qb.api_url_v3 = sb.api_url_v3
    return qb


def faults(sb: QuickBooksSandbox, **knobs: object) -> None:
    requests.post(sb.url + "/_sandbox/faults", json=knobs, timeout=5).raise_for_status()


def test_discovery_document_points_at_the_sandbox(sandbox: QuickBooksSandbox) -> None:
    auth = auth_client(sandbox)
    assert auth.token_endpoint == sandbox.url + "/oauth2/v1/tokens/bearer"
    assert auth.auth_endpoint.startswith(sandbox.url)
    assert auth.revoke_endpoint.startswith(sandbox.url)


def test_refresh_rotates_and_retires_the_old_token(sandbox: QuickBooksSandbox) -> None:
    auth = auth_client(sandbox)
    auth.refresh(refresh_token=DEMO_REFRESH_TOKEN)
    assert auth.access_token and auth.refresh_token != DEMO_REFRESH_TOKEN
    assert auth.x_refresh_token_expires_in == 8_726_400
    with pytest.raises(AuthClientError) as err:
        auth.refresh(refresh_token=DEMO_REFRESH_TOKEN)
    assert err.value.status_code == 400 and b"invalid_grant" in err.value.content
    second = auth.refresh_token
    auth.refresh()
    assert auth.refresh_token not in (second, DEMO_REFRESH_TOKEN)


def test_authorization_code_flow(sandbox: QuickBooksSandbox) -> None:
    auth = auth_client(sandbox)
    from intuitlib.enums import Scopes

    url = auth.get_authorization_url([Scopes.ACCOUNTING])
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith("http://127.0.0.1/callback?") and f"realmId={DEMO_REALM_ID}" in location
    code = location.split("code=")[1].split("&")[0]
    auth.get_bearer_token(code, realm_id=DEMO_REALM_ID)
    assert auth.access_token and auth.refresh_token


def test_query_paging_count_and_french_tax_codes(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    assert Customer.count(qb=qb) == 3
    first = Customer.all(start_position=1, max_results=2, qb=qb)
    rest = Customer.all(start_position=3, max_results=2, qb=qb)
    assert [c.DisplayName for c in first + rest] == ["Boulangerie Martin", "Dupont & Fils SA", "Marie Curie"]
    codes = {c.Name: c for c in TaxCode.all(qb=qb)}
    assert {"TVA 20 %", "TVA 10 %", "TVA 5,5 %", "TVA 2,1 %", "TVA 0 %", "Exonéré"} <= set(codes)
    rate_ref = codes["TVA 5,5 %"].SalesTaxRateList.TaxRateDetail[0].TaxRateRef.value
    assert str(TaxRate.get(rate_ref, qb=qb).RateValue) == "5.5"
    like = Customer.where("DisplayName LIKE 'Dupont%'", qb=qb)
    assert [c.DisplayName for c in like] == ["Dupont & Fils SA"]
    chosen = Customer.choose(["1", "3"], qb=qb)
    assert sorted(c.Id for c in chosen) == ["1", "3"]


def test_create_read_and_escaped_query(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    customer = Customer()
    customer.DisplayName = "L'Atelier \\ Nord"
    created = customer.save(qb=qb)
    assert Customer.get(created.Id, qb=qb).DisplayName == "L'Atelier \\ Nord"
    found = Customer.where("DisplayName = 'L\\'Atelier \\\\ Nord'", qb=qb)
    assert [c.Id for c in found] == [created.Id]
    with pytest.raises(ValidationException) as err:
        Customer.where("DisplayName = 'a' OR DisplayName = 'b'", qb=qb)
    assert err.value.error_code == 4000


def test_duplicate_name_is_fault_6240(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    customer = Customer()
    customer.DisplayName = "boulangerie martin"
    with pytest.raises(Exception) as err:
        customer.save(qb=qb)
    assert err.value.error_code == 6240  # type: ignore[attr-defined]


def test_upload_attachable_multipart(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    content = b"%PDF-1.7\n\x00\xff binary \r\n body"
    attachable = Attachable()
    link = AttachableRef()
    link.EntityRef = Ref()
    link.EntityRef.type, link.EntityRef.value = "Customer", "1"
    attachable.AttachableRef.append(link)
    attachable.FileName, attachable.ContentType = "recu.pdf", "application/pdf"
    attachable._FileBytes = content
    saved = attachable.save(qb=qb)
    listed = Attachable.where("AttachableRef.EntityRef.value = '1'", qb=qb)
    assert [a.Id for a in listed] == [saved.Id]
    state = requests.get(sandbox.url + "/_sandbox/state", timeout=5).json()
    (stored,) = state["Attachables"]
    assert stored["file"] == {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    assert stored["AttachableRef"][0]["EntityRef"]["value"] == "1"


def test_expired_token_is_401_then_refresh_works(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    qb.session.access_token = "expired"  # what an hour-old token looks like to QBO
    qb.session.token = {"access_token": "expired"}
    with pytest.raises(AuthorizationException) as err:
        Customer.count(qb=qb)
    assert err.value.error_code == 401
    qb.auth_client.refresh(refresh_token=qb.refresh_token)
    qb.refresh_token = qb._start_session()
    assert Customer.count(qb=qb) == 3


def test_throttle_fault_then_success(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    faults(sandbox, scripted=[{"kind": "rate_limit", "method": "POST", "path": "query", "count": 1}])
    raw = requests.post(f"{sandbox.api_url_v3}/company/{DEMO_REALM_ID}/query", data="select * from Item",
                        headers={"Authorization": f"Bearer {qb.session.access_token}"}, timeout=5)
    assert raw.status_code == 429 and "Retry-After" in raw.headers
    assert raw.json()["Fault"]["Error"][0]["code"] == "3001"
    assert len(Customer.all(qb=qb)) == 3


def test_rate_limit_per_realm_window() -> None:
    # Real-speed windows: 505 calls must land in one 60 s window to prove the 500/min limit;
    # 8 callers in parallel stay under the 10-concurrent cap and keep the test short.
    with QuickBooksSandbox(time_factor=1.0) as sb:
        auth = auth_client(sb)  # type: ignore[arg-type]
        auth.refresh(refresh_token=DEMO_REFRESH_TOKEN)
        url = f"{sb.api_url_v3}/company/{DEMO_REALM_ID}/query"  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {auth.access_token}"}

        def one(_: int) -> int:
            return requests.post(url, data="select count(*) from Item", headers=headers, timeout=5).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(one, range(505)))
    assert statuses.count(200) == 500 and statuses.count(429) == 5


def test_requestid_replay_returns_the_same_entity(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    first, second = Customer(), Customer()
    first.DisplayName = second.DisplayName = "Client Rejoué"
    a = first.save(qb=qb, request_id="req-42")
    b = second.save(qb=qb, request_id="req-42")
    assert a.Id == b.Id
    assert Customer.count("DisplayName = 'Client Rejoué'", qb=qb) == 1
    calls = requests.get(sandbox.url + "/_sandbox/calls", timeout=5).json()
    assert calls["requestid_replays"] == 1


def test_batch_and_cdc(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    answer = qb.batch_operation('{"BatchItemRequest": [{"bId": "a", "Query": "select * from PaymentMethod"},'
                                ' {"bId": "b", "operation": "create", "Customer": {"DisplayName": "Lot"}}]}')
    by_id = {item["bId"]: item for item in answer["BatchItemResponse"]}
    names = {m["Name"] for m in by_id["a"]["QueryResponse"]["PaymentMethod"]}
    assert names == {"Virement", "Carte bancaire", "Chèque", "Espèces", "Prélèvement"}
    assert by_id["b"]["Customer"]["DisplayName"] == "Lot"
    changes = qb.change_data_capture("Customer", "2000-01-01T00:00:00+00:00")
    assert len(changes["CDCResponse"][0]["QueryResponse"][0]["Customer"]) == 4


def _sale(kind: type, customer: str = "1", *, deposit: str | None = "1", amount: str = "100",
          **fields: object) -> object:
    doc = kind()
    line = SalesItemLine()
    line.Amount, line.SalesItemLineDetail = Decimal(amount), SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef, line.SalesItemLineDetail.TaxCodeRef = _ref("1"), _ref("1")
    line.SalesItemLineDetail.Qty = line.SalesItemLineDetail.UnitPrice = None
    doc.Line, doc.CustomerRef = [line], _ref(customer)
    if deposit:
        doc.DepositToAccountRef = _ref(deposit)
    for name, value in fields.items():
        setattr(doc, name, value)
    return doc


def _ref(value: str) -> Ref:
    made = Ref()
    made.value = value
    return made


def test_refund_receipt_and_credit_memo_as_quickbooks_serves_them(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    with pytest.raises(ValidationException) as err:
        _sale(RefundReceipt, deposit=None).save(qb=qb)  # type: ignore[attr-defined]
    assert err.value.error_code == 2020 and "DepositToAccountRef" in err.value.detail
    refund = _sale(RefundReceipt, DocNumber="AV-1").save(qb=qb)  # type: ignore[attr-defined]
    assert RefundReceipt.get(refund.Id, qb=qb).TotalAmt == Decimal("120")
    memo = _sale(CreditMemo, deposit=None, DocNumber="AV-2", ExchangeRate=None).save(qb=qb)  # type: ignore[attr-defined]
    assert memo.RemainingCredit == memo.TotalAmt == Decimal("120")
    assert [m.Id for m in CreditMemo.filter(DocNumber="AV-2", qb=qb)] == [memo.Id]
    with pytest.raises(QuickbooksException) as err:
        _sale(RefundReceipt, DocNumber="AV-1").save(qb=qb)  # type: ignore[attr-defined]
    assert err.value.error_code == 6140 and "TxnType=Refund" in err.value.detail
    link = AttachableRef()
    link.EntityRef = _ref(memo.Id)
    link.EntityRef.type = "CreditMemo"
    note = Attachable()
    note.AttachableRef, note.Note = [link], "avoir"
    assert note.save(qb=qb).Id


def test_supplied_tax_lines_override_the_computed_vat(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    detail = TxnTaxDetail()
    tax = TaxLine()
    tax.Amount, tax.DetailType, tax.TaxLineDetail = Decimal("20.01"), "TaxLineDetail", TaxLineDetail()
    tax.TaxLineDetail.TaxRateRef, tax.TaxLineDetail.TaxPercent = _ref("1"), Decimal("20")
    detail.TaxLine = [tax]
    receipt = _sale(SalesReceipt, TxnTaxDetail=detail).save(qb=qb)  # type: ignore[attr-defined]
    assert receipt.TotalAmt == Decimal("120.01")
    assert receipt.TxnTaxDetail.TaxLine[0].TaxLineDetail.OverrideDeltaAmount == Decimal("0.01")
    tax.TaxLineDetail.TaxRateRef = _ref("3")  # 5.5 %: no line carries it
    with pytest.raises(QuickbooksException) as err:
        _sale(SalesReceipt, TxnTaxDetail=detail).save(qb=qb)  # type: ignore[attr-defined]
    assert err.value.error_code == 6000


def test_multicurrency_customers_transactions_and_preferences(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    prefs = Preferences.get(qb=qb).CurrencyPrefs
    assert prefs.MultiCurrencyEnabled is True and prefs.HomeCurrency.value == "EUR"
    customer = Customer()
    customer.DisplayName, customer.CurrencyRef = "Acme (USD)", _ref("USD")
    acme = customer.save(qb=qb)
    sale = _sale(SalesReceipt, acme.Id, CurrencyRef=_ref("USD"), ExchangeRate=Decimal("0.9")).save(qb=qb)  # type: ignore[attr-defined]
    assert (sale.CurrencyRef.value, sale.ExchangeRate, sale.HomeTotalAmt) == ("USD", Decimal("0.9"), Decimal("108"))
    defaulted = _sale(SalesReceipt, acme.Id, CurrencyRef=_ref("USD"), ExchangeRate=None).save(qb=qb)  # type: ignore[attr-defined]
    assert defaulted.ExchangeRate == Decimal("0.92")  # the company's own rate
    with pytest.raises(QuickbooksException) as err:  # a EUR customer cannot be sold to in USD
        _sale(SalesReceipt, "1", CurrencyRef=_ref("USD"), ExchangeRate=Decimal("0.9")).save(qb=qb)  # type: ignore[attr-defined]
    assert err.value.error_code == 6000 and "customer's currency EUR" in err.value.detail


def test_multicurrency_off_refuses_foreign_currencies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with QuickBooksSandbox(time_factor=TIME_FACTOR, multicurrency=False) as box:
        qb = connect(box)
        assert Preferences.get(qb=qb).CurrencyPrefs.MultiCurrencyEnabled is False
        customer = Customer()
        customer.DisplayName, customer.CurrencyRef = "Acme (USD)", _ref("USD")
        with pytest.raises(QuickbooksException) as err:
            customer.save(qb=qb)
        assert err.value.error_code == 6000 and "multicurrency is off" in err.value.detail
        with pytest.raises(QuickbooksException):
            _sale(SalesReceipt, CurrencyRef=_ref("USD")).save(qb=qb)  # type: ignore[attr-defined]
        box.seed({"preferences": {"multicurrency": True}})
        assert customer.save(qb=qb).CurrencyRef.value == "USD"


def test_payments_apply_to_an_invoice_and_lower_its_balance(sandbox: QuickBooksSandbox) -> None:
    qb = connect(sandbox)
    invoice = _sale(Invoice, deposit=None, DocNumber="F-1").save(qb=qb)  # type: ignore[attr-defined]
    assert invoice.Balance == Decimal("120")

    def pay(amount: str, customer: str = "1") -> QboPayment:
        payment = QboPayment()
        payment.TotalAmt, payment.CustomerRef, payment.DepositToAccountRef = Decimal(amount), _ref(customer), _ref("1")
        line = PaymentLine()
        line.Amount, line.LinkedTxn = Decimal(amount), [invoice.to_linked_txn()]
        line.LinkedTxn[0].TxnLineId = None
        payment.Line = [line]
        return payment.save(qb=qb)

    first = pay("50")
    assert first.UnappliedAmt == 0
    with pytest.raises(QuickbooksException):
        pay("80")  # more than the 70 left
    with pytest.raises(QuickbooksException):
        pay("10", customer="2")  # someone else's invoice
    second = pay("70")
    read = Invoice.get(invoice.Id, qb=qb)
    assert read.Balance == 0
    assert [(link.TxnId, link.TxnType) for link in read.LinkedTxn] == [(first.Id, "Payment"), (second.Id, "Payment")]
    assert [p.Id for p in QboPayment.choose([first.Id, second.Id], qb=qb)] == [first.Id, second.Id]
