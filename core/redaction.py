"""Redaction of recorded vendor traffic: secrets and personal data become stable placeholders.

A recording (``pouracquit sync --record DIR``, core.recording) must be safe to commit and still replay. So
every sensitive value is replaced by a placeholder that is the same wherever the value appears in the
session: the customer's name the CRM answered and the same name in the ledger's contact query become one
placeholder, so a replay that reads the placeholder from the CRM answer sends exactly the recorded query.

Two passes over the whole session: ``collect`` learns the sensitive values (by the JSON or form key that
holds them, or by their shape: e-mail, IBAN, phone), ``apply`` replaces every occurrence of each, longest
first, in URLs, headers and bodies. docs/recording.md lists what is redacted and the limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

# Keys whose value is a credential; compared lower case with "_" and "-" removed.
SECRET_KEYS = frozenset({
    "accesstoken", "refreshtoken", "idtoken", "clientsecret", "password", "token", "apikey", "hapikey",
    "secret", "signature", "assertion", "codeverifier", "clientassertion",
})
# The OAuth authorization code travels in forms and redirect queries; in a JSON body "Code" is an
# account's or a tax rate's code (Xero), which a replay must keep.
FORM_SECRET_KEYS = SECRET_KEYS | {"code"}
# Headers that carry credentials or session state; their values are never written.
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key",
                            "x-hubspot-signature", "x-hubspot-signature-v3", "intuit-signature",
                            "x-xero-signature"})
# Fragments of keys that hold personal data (contact and company parties of every vendor's shape). Not
# QuickBooks' FullyQualifiedName: accounts and items have one too (a customer's repeats its DisplayName).
PERSONAL_KEY_PARTS = ("email", "phone", "mobile", "fax", "street", "city", "iban", "firstname", "lastname",
                      "fullname", "givenname", "familyname", "middlename", "displayname", "companyname",
                      "printoncheckname", "addressline", "accountname", "contactname",
                      "customername", "attentionto", "freeformnumber")
PERSONAL_KEYS = frozenset({"address", "address1", "address2", "line1", "line2", "line3", "line4", "line5"})
# A bare "name" is personal only inside a party: a parent key like these, or beside another personal key
# (an item's or a tax rate's Name stays, so queries naming them still match).
PARTY_PARENTS = ("contact", "customer", "company", "billto", "shipto", "owner", "person", "buyer")

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
PHONE = re.compile(r"(?<![\w.])\+?\d[\d .\-()]{7,}\d(?![\w.])")
# Values that look like a phone number but are the amounts, dates and identifiers vendors send.
_NOT_PHONE = re.compile(r"^[\d.]+$|^\d{4}-\d{2}-\d{2}")
MIN_SUBSTRING = 4  # shorter values are replaced only where they are a whole value


def _norm(key: str) -> str:
    return re.sub(r"[_\-\s]", "", key).lower()


def is_secret_key(key: str, form: bool = False) -> bool:
    return _norm(key) in (FORM_SECRET_KEYS if form else SECRET_KEYS)


def is_personal_key(key: str) -> bool:
    k = _norm(key)
    return k in PERSONAL_KEYS or any(part in k for part in PERSONAL_KEY_PARTS)


def _iban_placeholder(n: int) -> str:
    """A French IBAN with valid check digits, so a mapping that checks IBANs takes it."""
    bban = f"3000100000{n:011d}00"
    digits = "".join(str(int(c, 36)) for c in bban + "FR00")
    return f"FR{98 - int(digits) % 97:02d}{bban}"


def _iban_valid(text: str) -> bool:
    """ISO 13616: 15 to 34 characters whose mod-97 check is 1 (a VAT number or an id is not an IBAN)."""
    iban = text.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    return int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1


class Redactor:
    """The session's value → placeholder table, filled by ``collect`` and used by ``apply``."""

    def __init__(self) -> None:
        self.table: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    # -- learning ------------------------------------------------------------------------------
    def _add(self, value: str, kind: str) -> None:
        value = value.strip()
        if not value or value in self.table or value.startswith("redacted"):
            return
        n = self._counts[kind] = self._counts.get(kind, 0) + 1
        self.table[value] = {
            "secret": f"redacted-secret-{n}",
            "email": f"person{n}@redacted.invalid",
            "phone": f"+33 1 00 00 {n // 100:02d} {n % 100:02d}",
            "iban": _iban_placeholder(n),
        }.get(kind, f"Redacted {kind} {n}")

    def _kind_of_key(self, key: str) -> str:
        k = _norm(key)
        for part, kind in (("email", "email"), ("phone", "phone"), ("mobile", "phone"), ("fax", "phone"),
                           ("freeformnumber", "phone"), ("iban", "iban"), ("city", "city"),
                           ("street", "address"), ("address", "address"), ("line", "address")):
            if part in k:
                return kind
        return "name"

    def collect_text(self, text: str) -> None:
        for match in EMAIL.findall(text):
            self._add(match, "email")
        for match in IBAN.findall(text):
            if _iban_valid(match):
                self._add(match, "iban")
        for match in PHONE.findall(text):
            if not _NOT_PHONE.match(match.strip()) and sum(c.isdigit() for c in match) >= 9:
                self._add(match.strip(), "phone")

    def collect_json(self, value: Any, key: str = "", party: bool = False) -> None:
        if isinstance(value, dict):
            personal_here = party or any(is_personal_key(k) for k in value)
            for k, v in value.items():
                inner = party or any(p in _norm(k) for p in PARTY_PARENTS) or is_personal_key(k)
                if _norm(k) == "name" and personal_here and isinstance(v, str):
                    self._add(v, "name")
                else:
                    self.collect_json(v, k, inner and not isinstance(v, str))
            return
        if isinstance(value, list):
            for item in value:
                self.collect_json(item, key, party)
            return
        if isinstance(value, str):
            if key and is_secret_key(key):
                self._add(value, "secret")
            elif EMAIL.fullmatch(value.strip()):
                self._add(value, "email")
            elif key and is_personal_key(key) and not _norm(key).endswith(("id", "type", "code")):
                self._add(value, self._kind_of_key(key))
            elif party and _norm(key) in {"name", "value"} and not value.isdigit():
                self._add(value, "name")
            else:
                self.collect_text(value)

    def collect_pairs(self, pairs: list[tuple[str, str]]) -> None:
        for k, v in pairs:
            if is_secret_key(k, form=True):
                self._add(v, "secret")
            elif is_personal_key(k):
                self._add(v, self._kind_of_key(k))
            else:
                self.collect_text(v)

    # -- replacing -----------------------------------------------------------------------------
    def replacer(self) -> Callable[[str], str]:
        """A function that replaces every learnt value in a string (longest first)."""
        whole = dict(self.table)
        long = sorted((v for v in whole if len(v) >= MIN_SUBSTRING), key=len, reverse=True)
        # whole words only: a first name "Service" must not turn the line kind "Services" into a placeholder
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(v) for v in long) + r")(?!\w)") if long else None

        def replace(text: str) -> str:
            if text in whole:
                return whole[text]
            return pattern.sub(lambda m: whole[m.group(0)], text) if pattern else text

        return replace

    def apply_json(self, value: Any, replace: Callable[[str], str], key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.apply_json(v, replace, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.apply_json(v, replace, key) for v in value]
        if isinstance(value, str):
            return "redacted" if is_secret_key(key) and value else replace(value)
        return value

    def apply_pairs(self, pairs: list[tuple[str, str]], replace: Callable[[str], str]) -> list[tuple[str, str]]:
        return [(k, "redacted" if is_secret_key(k, form=True) and v else replace(v)) for k, v in pairs]


def parse_form(text: str) -> list[tuple[str, str]] | None:
    """``a=1&b=2`` as pairs, or None when the text is not a form."""
    if not text or "=" not in text or any(c in text for c in " {}\n"):
        return None
    return parse_qsl(text, keep_blank_values=True)


def form(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs)


def json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
