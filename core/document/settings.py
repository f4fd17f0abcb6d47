"""The [seller] and [document] config sections, validated when the config loads.

Identifiers are checked for shape and check digits here (a typo in a SIREN is
caught at start-up, not by a customer).  Whether a mention is *present* is
decided per document by :mod:`.mentions`, because which mentions apply depends
on the invoice (an auto-entrepreneur has no share capital, a franchise seller
prints no VAT number).
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumError

from pouracquit.common import identifiers

# the templates shipped with pouracquit: documents, e-mails and reminder letters
TEMPLATES = Path(__file__).resolve().parent / "templates"


def _cores() -> int:
    """The cores this process may run on, at most 8 (more render workers than that only cost memory)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(usable, 8)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class SellerAddress(_Frozen):
    line1: str = ""
    line2: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "FR"

    @field_validator("country")
    @classmethod
    def _iso_country(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", v):
            raise ValueError(f"country must be an ISO 3166 alpha-2 code such as FR, got {v!r}")
        return v.upper()


class Seller(_Frozen):
    """The issuing company: every identity mention the invoice prints."""

    name: str = ""
    legal_form: str = ""
    share_capital: Decimal | None = None
    address: SellerAddress = SellerAddress()
    siren: str = ""
    siret: str = ""
    rcs_city: str = ""
    ape: str = ""
    vat_number: str = ""
    email: str = ""
    phone: str = ""
    iban: str = ""
    bic: str = ""
    late_penalty_rate: str = "trois fois le taux d'intérêt légal"
    recovery_indemnity: Decimal = Decimal("40")
    discount_terms: str = "Pas d'escompte pour paiement anticipé"
    vat_regime_note: str = ""

    @field_validator("siren", "siret", "iban", "vat_number", "bic", mode="before")
    @classmethod
    def _no_spaces(cls, v: object) -> object:
        # People paste "123 456 789" or "FR76 3000 ..." from letterheads.
        return re.sub(r"\s+", "", v).upper() if isinstance(v, str) else v

    # Every identifier goes through python-stdnum (core.identifiers): a typo stops the
    # program at start-up with the key named, never reaches a customer.
    @field_validator("siren")
    @classmethod
    def _siren(cls, v: str) -> str:
        return identifiers.siren(v) if v else v

    @field_validator("siret")
    @classmethod
    def _siret(cls, v: str) -> str:
        return identifiers.siret(v) if v else v

    @field_validator("ape")
    @classmethod
    def _ape(cls, v: str) -> str:
        v = v.replace(".", "").upper()
        if v and not re.fullmatch(r"\d{4}[A-Z]", v):
            raise ValueError(f"ape must look like 6201Z, got {v!r}")
        return v

    @field_validator("vat_number")
    @classmethod
    def _vat(cls, v: str) -> str:
        return identifiers.french_vat(v) if v else v

    @field_validator("iban")
    @classmethod
    def _iban(cls, v: str) -> str:
        if v:
            try:
                stdnum_iban.validate(v)
            except StdnumError as err:
                raise ValueError(f"iban is not valid: {err}") from None
        return v

    @field_validator("bic")
    @classmethod
    def _bic(cls, v: str) -> str:
        if v:
            try:
                stdnum_bic.validate(v)
            except StdnumError as err:
                raise ValueError(f"bic is not valid: {err}") from None
        return v

    @field_validator("share_capital", "recovery_indemnity")
    @classmethod
    def _not_negative(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and (not v.is_finite() or v < 0):
            raise ValueError(f"must be a non-negative amount, got {v}")
        return v

    @model_validator(mode="after")
    def _same_company(self) -> Seller:
        if self.siren and self.siret and not self.siret.startswith(self.siren):
            raise ValueError(f"siret {self.siret} does not start with siren {self.siren}")
        if self.siren and self.vat_number and self.vat_number[4:] != self.siren:
            raise ValueError(f"vat_number {self.vat_number} is not built on siren {self.siren}")
        return self


class DocumentSettings(_Frozen):
    """How documents look and which Factur-X profile they embed."""

    language: Literal["fr", "en"] = "fr"
    profile: Literal["en16931", "basic", "extended"] = "en16931"
    logo: Path | None = None
    primary_color: str = "#1f3a5f"
    font_family: str = "DejaVu Sans"
    thank_you: str = ""
    terms: str = ""
    footer: str = ""
    template_dir: Path | None = None
    verify_base_url: str = ""
    # 0: render in the service's own process; N >= 2: on N worker processes. By default one
    # per core (at most 8) when the machine has more than one: a page costs ~0.15 s of CPU
    # in WeasyPrint (docs/benchmarks.md), so one core of rendering bounds a large sync
    render_processes: int = Field(default_factory=lambda: _cores() if _cores() > 1 else 0, ge=0, le=64)
    # every document is checked against the official Factur-X rules before it leaves:
    # "schematron" (XSD + EN16931 + French CTC, ~50 ms), "xsd" (~3 ms) or "off";
    # the key is `validate` ("validate" would shadow a pydantic BaseModel method)
    validation: Literal["schematron", "xsd", "off"] = Field(default="schematron", alias="validate")

    @field_validator("primary_color")
    @classmethod
    def _color(cls, v: str) -> str:
        # The colour lands inside CSS: accept only a hex colour, nothing that could break out.
        if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", v):
            raise ValueError(f"primary_color must be a hex colour such as #1f3a5f, got {v!r}")
        return v

    @field_validator("font_family")
    @classmethod
    def _font(cls, v: str) -> str:
        if not re.fullmatch(r"[\w \-]+", v):
            raise ValueError(f"font_family must be a plain font name, got {v!r}")
        return v

    @field_validator("logo", "template_dir")
    @classmethod
    def _exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.expanduser().exists():
            raise ValueError(f"{v} does not exist")
        return v.expanduser().resolve() if v is not None else None

    @field_validator("verify_base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.fullmatch(r"https?://\S+", v):
            raise ValueError(f"verify_base_url must be an http(s) URL, got {v!r}")
        return v.rstrip("/")
