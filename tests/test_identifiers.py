"""Identifiers through python-stdnum: a wrong seller identifier stops start-up naming
the key; a wrong buyer identifier quarantines the record naming the field and the fix."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError
from stdnum import luhn
from stdnum.fr import siren as fr_siren
from support import SELLER

from pouracquit.common.errors import BadRecord, ConfigError
from pouracquit.common.identifiers import buyer_vat, french_vat, siren, siret
from pouracquit.common.model import Address, Invoice, Party
from pouracquit.connectors.hubspot.mapping import HubSpotMapper
from pouracquit.core.config import parse_settings
from pouracquit.core.document import Seller
from pouracquit.core.document.mentions import require_mentions
from pouracquit.mappings import load_mapping
from pouracquit.sandbox.demo_data import demo_invoices

# -- the checks themselves ---------------------------------------------------------------------


def test_siren_and_siret_check_digits() -> None:
    assert siren("732 829 320") == "732829320"
    assert siret("732.829.320.00074") == "73282932000074"
    with pytest.raises(ValueError, match="siren must be 9 digits with a valid Luhn check digit"):
        siren("732829321")
    with pytest.raises(ValueError, match="siret must be 14 digits"):
        siret("7328293200007")
    with pytest.raises(ValueError, match="fails its check digit"):
        siret("73282932000075")


def test_la_poste_establishments_use_the_digit_sum() -> None:
    # La Poste's SIRETs (SIREN 356000000) fail Luhn but their digits sum to a multiple of 5
    assert siret("35600000049837") == "35600000049837"
    assert not luhn.is_valid("35600000049837")
    with pytest.raises(ValueError, match="fails its check digit"):
        siret("35600000049838")


def test_french_vat_key() -> None:
    assert french_vat("fr 44 732829320") == "FR44732829320"
    with pytest.raises(ValueError, match="wrong key, expected FR44732829320"):
        french_vat("FR45732829320")
    with pytest.raises(ValueError, match="not built on a valid SIREN"):
        french_vat("FR44732829321")
    with pytest.raises(ValueError, match="FR \\+ 2-character key \\+ SIREN"):
        french_vat("DE44732829320")


@pytest.mark.parametrize("number", ["DE136695976", "BE0403019261", "PL5260250274", "IT00743110157",
                                    "EL094259216", "NL004495445B01", "XI980780684"])
def test_other_eu_vat_numbers_pass_their_country_rules(number: str) -> None:
    assert buyer_vat(number, number[:2]) == number


@pytest.mark.parametrize("number", ["DE136695977", "BE0403019262", "PL5260250275", "IT00743110158"])
def test_other_eu_vat_numbers_with_a_wrong_check_digit(number: str) -> None:
    with pytest.raises(ValueError, match=f"not a valid {number[:2]} VAT number"):
        buyer_vat(number, number[:2])


def test_a_tax_number_from_outside_the_eu_is_kept_as_given() -> None:
    assert buyer_vat("CHE-116.281.710 MWST", "CH") == "CHE-116.281.710 MWST"
    assert buyer_vat("12-3456789", "US") == "12-3456789"
    with pytest.raises(ValueError, match=r"no country prefix.*DE"):
        buyer_vat("136695976", "DE")


# -- the seller: configuration errors at start-up ------------------------------------------------

@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("siren", "732829321", "siren must be 9 digits with a valid Luhn check digit"),
        ("siret", "73282932000075", "siret '73282932000075' fails its check digit"),
        ("vat_number", "FR45732829320", "vat_number 'FR45732829320' has a wrong key, expected FR44732829320"),
        ("iban", "FR7630006000011234567890188", "iban is not valid"),
        ("bic", "AGRIFRP", "bic is not valid"),
    ],
)
def test_a_wrong_seller_identifier_names_its_key(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        Seller(**(SELLER.model_dump() | {field: value}))
    assert err.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(("field", "value"), [("siren", "732829321"), ("siret", "73282932000075"),
                                            ("vat_number", "FR45732829320"), ("iban", "FR7630006000011234567890188")])
def test_a_wrong_seller_identifier_stops_the_config_with_one_line(field: str, value: str) -> None:
    data = tomllib.loads((Path(__file__).parents[1] / "config.example.toml").read_text(encoding="utf-8"))
    data["seller"][field] = value
    with pytest.raises(ConfigError, match=rf"seller\.{field}: ") as err:
        parse_settings(data)
    assert "\n" not in str(err.value)


# -- the buyer: bad records, through a real mapping ---------------------------------------------

def _hubspot(company: dict[str, str]) -> Invoice:
    props = {"hs_invoice_status": "paid", "hs_currency": "EUR", "hs_invoice_date": "2026-03-02T00:00:00.000Z",
             "hs_lastmodifieddate": "2026-03-05T10:00:00.000Z", "hs_amount_paid": "120.00",
             "hs_payment_date": "2026-03-05T00:00:00.000Z"}
    line = {"name": "Audit", "quantity": "1", "price": "100.00", "hs_tax_rate": "20"}
    buyer = {"name": "Client SA", "address": "2 rue B", "zip": "69001", "city": "Lyon", **company}
    return HubSpotMapper(load_mapping("hubspot")).invoice("1", props, [("10", line)], None, ("30", buyer), "")


@pytest.mark.parametrize(
    ("company", "message"),
    [
        ({"pouracquit_siren": "552100555"}, r"customer\.siren must be 9 digits with a valid Luhn check digit"),
        ({"pouracquit_vat_number": "FR22552100554"}, r"customer\.vat_number .* wrong key, expected FR96552100554"),
        ({"country": "DE", "pouracquit_vat_number": "DE136695977"}, r"customer\.vat_number .* not a valid DE VAT"),
        ({"pouracquit_siren": "732829320", "pouracquit_vat_number": "FR96552100554"},
         r"FR96552100554 is not built on customer\.siren 732829320"),
    ],
)
def test_a_wrong_buyer_identifier_quarantines_the_record(company: dict[str, str], message: str) -> None:
    with pytest.raises(BadRecord, match=f"(?s)HubSpot invoice 1 .*{message}.*in the CRM"):
        _hubspot(company)


def test_buyer_identifiers_are_stored_compact() -> None:
    buyer = _hubspot({"pouracquit_siren": "552 100 554", "pouracquit_vat_number": "fr96 552 100 554"}).customer
    assert (buyer.siren, buyer.vat_number) == ("552100554", "FR96552100554")


def test_the_sellers_own_siren_as_the_buyers_is_a_bad_record() -> None:
    paris = Address(line1="1 rue A", postal_code="75001", city="Paris")
    brussels = Address(line1="1 rue B", postal_code="1000", city="Bruxelles", country="BE")
    inv = _hubspot({"pouracquit_siren": "552100554"})
    require_mentions(SELLER, inv)  # another company is fine
    for buyer, field in ((Party(name="Moi-même", siren=SELLER.siren, address=paris), "customer.siren"),
                         (Party(name="Moi-même", vat_number=SELLER.vat_number, address=brussels),
                          "customer.vat_number")):
        with pytest.raises(BadRecord, match=rf"{field} .* is the seller's own .* in the CRM"):
            require_mentions(SELLER, inv.model_copy(update={"customer": buyer}))


# -- the demo's buyers ----------------------------------------------------------------------------

def test_every_demo_buyer_identifier_is_valid() -> None:
    companies = [i["customer"] for i in demo_invoices(60, 7) if i["customer"]["kind"] == "company"]
    assert companies
    for customer in companies:
        assert fr_siren.is_valid(customer["siren"])
        assert french_vat(customer["vat_number"]) == customer["vat_number"]
        Party(name=customer["name"], siren=customer["siren"], vat_number=customer["vat_number"])
