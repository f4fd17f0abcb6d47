"""Company identifiers checked offline with python-stdnum: SIREN, SIRET, VAT numbers.

The seller's are checked when the config loads (core.document.settings), the
buyer's when a CRM record becomes an Invoice (core.model.Party): a typo is
caught with the field named, never printed on a legal document. Each check
returns the compact form (no spaces, dots or dashes; upper case) or raises
ValueError saying what is wrong. Nothing here calls VIES: a number can have
valid check digits and still not be registered.
"""

from __future__ import annotations

import re

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret
from stdnum.fr import tva as fr_tva

from .errors import BadRecord

_SEPARATORS = re.compile(r"[\s.\-/]+")
# Prefixes of EU VAT numbers (EL is Greece, XI Northern Ireland), as stdnum.eu.vat reads them.
EU_VAT_PREFIXES = frozenset({cc.upper() for cc in eu_vat.MEMBER_STATES} | {"EL"})
EU_COUNTRIES = frozenset((EU_VAT_PREFIXES - {"EL", "XI"}) | {"GR"})


def compact(value: str) -> str:
    """``value`` without the separators people paste from letterheads, upper case."""
    return _SEPARATORS.sub("", value).upper()


def siren(value: str, what: str = "siren") -> str:
    """A valid SIREN: 9 digits, Luhn check digit (INSEE)."""
    number = compact(value)
    if not fr_siren.is_valid(number):
        raise ValueError(f"{what} must be 9 digits with a valid Luhn check digit, got {value!r}")
    return number


def siret(value: str, what: str = "siret") -> str:
    """A valid SIRET: 14 digits, Luhn (La Poste's establishments: digit sum, as stdnum knows)."""
    number = compact(value)
    if not re.fullmatch(r"\d{14}", number):
        raise ValueError(f"{what} must be 14 digits, got {value!r}")
    if not fr_siret.is_valid(number):
        raise ValueError(f"{what} {value!r} fails its check digit")
    return number


def french_vat(value: str, what: str = "vat_number") -> str:
    """A valid French VAT number, FR + 2-character key + SIREN (Monaco: FRkk000...)."""
    number = compact(value)
    if not re.fullmatch(r"FR[0-9A-Z]{2}\d{9}", number):
        raise ValueError(f"{what} must be FR + 2-character key + SIREN, got {value!r}")
    body = number[4:]
    if not body.startswith("000") and not fr_siren.is_valid(body):
        raise ValueError(f"{what} {value!r} is not built on a valid SIREN ({body} fails its Luhn check digit)")
    if not fr_tva.is_valid(number):
        expected = f", expected FR{fr_siren.to_tva(body)[:2]}{body}" if number[2:4].isdigit() else ""
        raise ValueError(f"{what} {value!r} has a wrong key{expected}")
    return number


def buyer_vat(value: str, country: str, what: str = "vat_number") -> str:
    """A buyer's VAT number: French and other EU numbers must pass their country's
    format and check digits; another country's tax number is kept as given."""
    number = compact(value)
    prefix = number[:2]
    if prefix == "FR":
        return french_vat(value, what)
    if prefix in EU_VAT_PREFIXES:
        try:
            return eu_vat.validate(number)
        except ValidationError as err:
            raise ValueError(f"{what} {value!r} is not a valid {prefix} VAT number ({err.message})") from None
    if country.upper() in EU_COUNTRIES and not prefix.isalpha():
        raise ValueError(f"{what} {value!r} has no country prefix: an EU VAT number starts with its country code "
                         f"({'EL' if country.upper() == 'GR' else country.upper()}...)")
    return value.strip()


def vat_built_on(vat_number: str, siren_number: str) -> bool:
    """Whether a French VAT number (not Monaco's) carries this SIREN; True when either is absent."""
    if not (vat_number.startswith("FR") and siren_number) or vat_number[4:7] == "000":
        return True
    return vat_number[4:] == siren_number


def check_buyer_is_not_seller(seller_siren: str, buyer_siren: str, buyer_vat_number: str) -> None:
    """BadRecord when the buyer's SIREN (or French VAT number) is the seller's own:
    the CRM record names the issuing company as its customer."""
    if not seller_siren:
        return
    if buyer_siren == seller_siren:
        raise BadRecord(f"customer.siren {buyer_siren} is the seller's own SIREN: the CRM record names your "
                        "company as the buyer; link the customer's company (or correct its SIREN) in the CRM")
    if buyer_vat_number.startswith("FR") and buyer_vat_number[4:] == seller_siren:
        raise BadRecord(f"customer.vat_number {buyer_vat_number} is the seller's own VAT number: link the "
                        "customer's company (or correct its VAT number) in the CRM")
