"""The CRM's own exchange rate, read by each source mapping into Invoice.exchange_rate
(euros for one unit), in the direction each vendor quotes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import DictTokens, fast_context

from pouracquit.common.errors import BadRecord, ConfigError
from pouracquit.common.model import Invoice
from pouracquit.common.rates import with_exchange_rate
from pouracquit.connectors.base import CrmSource
from pouracquit.connectors.hubspot.mapping import HubSpotMapper
from pouracquit.connectors.hubspot.source import HubSpotSource
from pouracquit.connectors.salesforce.mapping import SalesforceMapper
from pouracquit.connectors.salesforce.source import SalesforceSource
from pouracquit.connectors.zoho.mapping import ZohoMapper
from pouracquit.connectors.zoho.source import ZohoSource
from pouracquit.mappings import load_mapping
from pouracquit.sandbox.demo_data import demo_invoices
from pouracquit.sandbox.hubspot.emulator import HubSpotSandbox
from pouracquit.sandbox.salesforce.emulator import SalesforceSandbox, connector_settings
from pouracquit.sandbox.server import Sandbox
from pouracquit.sandbox.zoho.emulator import ZohoSandbox

SCALE = 0.01

Build = Callable[[str, Any, Mapping[str, Any]], Invoice]


def hubspot(currency: str, rate: Any, overrides: Mapping[str, Any]) -> Invoice:
    props = {"hs_invoice_status": "paid", "hs_currency": currency, "hs_invoice_date": "2026-03-02T00:00:00.000Z",
             "hs_lastmodifieddate": "2026-03-05T10:00:00.000Z", "hs_amount_paid": "120.00",
             "hs_payment_date": "2026-03-05T00:00:00.000Z", "pouracquit_exchange_rate": rate}
    line = {"name": "Audit", "quantity": "1", "price": "100.00", "hs_tax_rate": "20"}
    contact = {"firstname": "Ada", "lastname": "Byron", "email": "ada@example.org"}
    return HubSpotMapper(load_mapping("hubspot", overrides)).invoice("1", props, [("10", line)], ("20", contact),
                                                                      None, "")


def zoho(currency: str, rate: Any, overrides: Mapping[str, Any]) -> Invoice:
    record = {"id": "5001", "Status": "Paid", "Currency": currency, "Exchange_Rate": rate,
              "Invoice_Date": "2026-03-02", "Modified_Time": "2026-03-05T10:00:00+01:00",
              "Contact_Name": {"name": "Ada Byron", "id": "7001"},
              "Invoiced_Items": [{"Description": "Audit", "Quantity": 1, "List_Price": 100.0,
                                  "Line_Tax": [{"percentage": 20.0, "name": "TVA 20"}]}]}
    contact = {"id": "7001", "First_Name": "Ada", "Last_Name": "Byron", "Email": "ada@example.org"}
    return ZohoMapper(load_mapping("zoho", overrides)).invoice(record, None, contact)


def salesforce(currency: str, rate: Any, overrides: Mapping[str, Any]) -> Invoice:
    record = {"Id": "a0B000000000001AAA", "Status__c": "Paid", "CurrencyIsoCode": currency,
              "Exchange_Rate__c": rate, "Issue_Date__c": "2026-03-02", "Amount_Paid__c": Decimal("120.00"),
              "SystemModstamp": "2026-03-05T10:00:00.000+0000", "Account__r": None,
              "Contact__r": {"FirstName": "Ada", "LastName": "Byron", "Email": "ada@example.org",
                             "attributes": {"url": "/services/data/v60.0/sobjects/Contact/003000000000001AAA"}}}
    line = {"Id": "a0C000000000001AAA", "Description__c": "Audit", "Quantity__c": Decimal(1),
            "Unit_Price__c": Decimal(100), "VAT_Rate__c": Decimal(20)}
    payment = {"Id": "a0D000000000001AAA", "Amount__c": Decimal("120.00"), "Payment_Date__c": "2026-03-05"}
    return SalesforceMapper(load_mapping("salesforce", overrides)).invoice(record, [line], [payment])


# (mapper, the vendor's value for 1 USD = 0.85 EUR, the rate field's name)
VENDORS = [
    pytest.param(hubspot, "0.85", "pouracquit_exchange_rate", id="hubspot"),  # EUR per unit
    pytest.param(zoho, 1.1764705882, "Exchange_Rate", id="zoho"),  # units per home-currency (EUR) unit
    pytest.param(salesforce, Decimal("1.1764705882"), "Exchange_Rate__c", id="salesforce"),  # units per EUR
]


@pytest.mark.parametrize(("build", "value", "field"), VENDORS)
def test_the_crm_rate_becomes_euros_per_unit(build: Build, value: Any, field: str) -> None:
    inv = build("USD", value, {})
    assert inv.exchange_rate is not None
    assert abs(inv.exchange_rate - Decimal("0.85")) < Decimal("1e-9")


@pytest.mark.parametrize(("build", "value", "field"), VENDORS)
def test_no_crm_rate_leaves_it_to_the_ecb(build: Build, value: Any, field: str) -> None:
    assert build("USD", None, {}).exchange_rate is None


@pytest.mark.parametrize(("build", "value", "field"), VENDORS)
def test_a_euro_invoice_ignores_the_crm_rate(build: Build, value: Any, field: str) -> None:
    assert build("EUR", 1, {}).exchange_rate is None


@pytest.mark.parametrize(("build", "value", "field"), VENDORS)
def test_an_unmapped_rate_field_is_never_read(build: Build, value: Any, field: str) -> None:
    assert build("USD", value, {"invoice": {"exchange_rate": ""}}).exchange_rate is None


@pytest.mark.parametrize(("build", "value", "field"), VENDORS)
def test_a_bad_crm_rate_quarantines_the_record_naming_the_field(build: Build, value: Any, field: str) -> None:
    with pytest.raises(BadRecord, match=rf"{field} must be a positive exchange rate.*invoice\.exchange_rate"):
        build("USD", "0", {})


@pytest.mark.parametrize(("build", "value", "field"), VENDORS)
def test_the_direction_can_be_turned_around(build: Build, value: Any, field: str) -> None:
    inv = build("USD", "2", {"defaults": {"exchange_rate_direction": "eur_per_unit"}})
    assert inv.exchange_rate == Decimal("2")
    inv = build("USD", "2", {"defaults": {"exchange_rate_direction": "units_per_eur"}})
    assert inv.exchange_rate == Decimal("0.5")


@pytest.mark.parametrize(("build", "value", "field"), VENDORS)
def test_an_unknown_direction_stops_at_start_up(build: Build, value: Any, field: str) -> None:
    with pytest.raises(ConfigError, match=r"defaults\.exchange_rate_direction"):
        build("USD", value, {"defaults": {"exchange_rate_direction": "usd_per_eur"}})


# -- the demo's dollar invoices, end to end through each sandbox and its connector -------------

def _hubspot_source(box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CrmSource:
    monkeypatch.setenv("HS_TOKEN", HubSpotSandbox.DEMO_PRIVATE_APP_TOKEN)
    return HubSpotSource.from_settings({"base_url": box.url, "access_token": {"env": "HS_TOKEN"}},
                                       fast_context(DictTokens(), SCALE))


def _zoho_source(box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CrmSource:
    monkeypatch.setenv("ZOHO_SECRET", ZohoSandbox.DEMO_CLIENT_SECRET)
    monkeypatch.setenv("ZOHO_REFRESH", ZohoSandbox.DEMO_REFRESH_TOKEN)
    return ZohoSource.from_settings({"accounts_url": box.url, "client_id": ZohoSandbox.DEMO_CLIENT_ID,
                                     "client_secret": {"env": "ZOHO_SECRET"},
                                     "refresh_token": {"env": "ZOHO_REFRESH"}}, fast_context(DictTokens(), SCALE))


def _salesforce_source(box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CrmSource:
    settings = connector_settings(box, tmp_path / "secrets")
    settings.pop("vendor")
    return SalesforceSource.from_settings(settings, fast_context(DictTokens(), SCALE))


@pytest.fixture(params=[(HubSpotSandbox, _hubspot_source), (ZohoSandbox, _zoho_source),
                        (SalesforceSandbox, _salesforce_source)], ids=["hubspot", "zoho", "salesforce"])
def seeded(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[CrmSource]:
    sandbox_class, make = request.param
    box = sandbox_class(time_factor=SCALE).start()
    try:
        box.seed({"demo": {"count": 60, "seed": 7}})
        yield make(box, tmp_path, monkeypatch)
    finally:
        box.stop()


def test_demo_dollar_invoices_carry_the_crm_rate_or_take_the_ecb_one(seeded: CrmSource) -> None:
    demo = [d for d in demo_invoices(60, 7) if d["currency"] == "USD"]
    crm_rates = sorted(Decimal(1) / Decimal(d["exchange_rate"]) for d in demo if d["exchange_rate"])
    assert len(crm_rates) >= 2 and len(demo) > len(crm_rates)  # both kinds are in the demo
    pages = list(seeded.changes(None))
    assert not [r for page in pages for r in page.rejected]
    dollars = [inv for page in pages for inv in page.invoices if inv.currency == "USD"]
    assert len(dollars) == len(demo)
    got = sorted(inv.exchange_rate for inv in dollars if inv.exchange_rate is not None)
    assert len(got) == len(crm_rates)
    assert all(abs(a - b) < Decimal("1e-6") for a, b in zip(got, crm_rates, strict=True))
    filled = [with_exchange_rate(inv) for inv in dollars]
    assert {inv.exchange_rate_source.split(",")[0] for inv in filled} == {"CRM", "BCE"}
    assert all(Decimal("0.7") < inv.exchange_rate < Decimal("1") for inv in filled if inv.exchange_rate)
