"""The CRM's own exchange rate, read by each source mapping into Invoice.exchange_rate
(euros for one unit), in the direction each vendor quotes it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest

from pouracquit.connectors.hubspot_mapping import HubSpotMapper
from pouracquit.connectors.salesforce_mapping import SalesforceMapper
from pouracquit.connectors.zoho_mapping import ZohoMapper
from pouracquit.core.errors import BadRecord, ConfigError
from pouracquit.core.model import Invoice
from pouracquit.mappings import load_mapping

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
