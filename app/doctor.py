"""``pouracquit doctor``: the setup checked against the live vendors, as a checklist.

For every connection, each side's own checks (``connectors.base.Diagnosable``:
token refresh and scopes, the ledger's tax codes, accounts and items, the CRM's
custom fields, the webhook subscription where a vendor lets it be read), then
the seller's identity. One line per check: ✓ passed, ✗ failed (with the fix on
the next line), · a fact to compare by eye. Exit 0 when nothing failed, 1 when
something did; a configuration error stops it before any check (exit 2, in the CLI).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from pouracquit.common.errors import PouracquitError, one_line
from pouracquit.connectors.base import Check, Diagnosable
from pouracquit.core.config import ConnectionSettings, Settings
from pouracquit.core.document.mentions import _company_form
from pouracquit.core.document.settings import Seller
from pouracquit.core.service import Service

MARKS = {True: "✓", False: "✗", None: "·"}


def seller_checks(seller: Seller) -> list[Check]:
    """The seller's identifiers (their check digits were verified when the config loaded:
    a wrong one is a configuration error) and the identity every document prints."""
    shown = [f"{label} {value}" for label, value in (("SIREN", seller.siren), ("SIRET", seller.siret),
                                                       ("VAT number", seller.vat_number), ("IBAN", seller.iban))
             if value]
    checks = [Check("identifiers", True, f"{', '.join(shown)}: check digits valid, SIRET and VAT number built on "
                                         f"the SIREN")] if shown else []
    required = {"name": seller.name, "legal_form": seller.legal_form, "address.line1": seller.address.line1,
                "address.postal_code": seller.address.postal_code, "address.city": seller.address.city,
                "siren": seller.siren, "siret": seller.siret, "ape": seller.ape}
    if _company_form(seller.legal_form):  # the mentions' own rule: sole traders print no RCS nor capital
        required |= {"rcs_city": seller.rcs_city, "share_capital": "" if seller.share_capital is None else "set"}
    for key, value in required.items():
        if not str(value).strip():
            checks.append(Check(f"seller.{key}", False, "missing: every document must print it",
                                f"set {key} under [seller] in the config"))
    if not seller.vat_number:
        checks.append(Check("seller.vat_number", None, "not set: only a seller under the VAT franchise "
                                                       "(art. 293 B du CGI) may leave it out"))
    if not seller.iban:
        checks.append(Check("seller.iban", None, "not set: invoices paid by transfer will stop until it is"))
    return checks


def connection_checks(service: Service, conn: ConnectionSettings) -> list[tuple[str, list[Check]]]:
    """Each side's checks, under a heading naming the connection, side and vendor."""
    wiring = service.wiring(conn)  # a bad setting is a ConfigError naming its key
    public_url = service.settings.admin.public_url
    found = []
    for role, part, endpoint in (("source", wiring.source, conn.source), ("ledger", wiring.ledger, conn.ledger)):
        heading = f"connection {conn.name}: {role} {endpoint.vendor}"
        if not isinstance(part, Diagnosable):
            found.append((heading, [Check("checks", None, f"the {endpoint.vendor} connector offers none")]))
            continue
        try:
            checks = part.diagnose(public_url)
        except PouracquitError as exc:  # a connector's checks end in Checks; this is the net under them
            checks = [Check("checks", False, one_line(str(exc)), "fix the problem above, then run doctor again")]
        found.append((heading, checks))
    return found


def print_checklist(sections: Iterable[tuple[str, list[Check]]], out: TextIO) -> int:
    """Print the checklist; the number of failed checks."""
    failed = 0
    for heading, checks in sections:
        print(heading, file=out)
        for check in checks:
            print(f"  {MARKS[check.ok]} {check.name}" + (f": {check.detail}" if check.detail else ""), file=out)
            if check.fix and check.ok is not True:
                print(f"      fix: {check.fix}", file=out)
            failed += check.ok is False
    return failed


def doctor_command(settings: Settings, connection: str | None = None, out: TextIO | None = None) -> int:
    """0 when every check passed, 1 when one failed."""
    out = out or sys.stdout
    service = Service.open(settings)
    try:
        sections = [("seller", seller_checks(settings.company))]
        for conn in service.connections(connection):
            sections += connection_checks(service, conn)
    finally:
        service.close()
    failed = print_checklist(sections, out)
    print(f"pouracquit doctor: {failed} check(s) failed" if failed else "pouracquit doctor: every check passed",
          file=out)
    return 1 if failed else 0
