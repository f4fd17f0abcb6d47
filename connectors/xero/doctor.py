"""``pouracquit doctor`` for a Xero ledger: the token refresh and the scopes the
token answer grants, the organisation, the accounts and every tax rate rule of
the mapping, the currencies, and the webhook.

Everything is resolved by the ledger's own ``Directory`` (``references``,
``tax_type``), so what passes here is what a booking finds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pouracquit.connectors.base import Check
from pouracquit.connectors.doctor_checks import (
    granted_scopes,
    probe,
    scope_check,
    unresolved,
    vat_lines,
    webhook_unread,
)

if TYPE_CHECKING:
    from .ledger import XeroLedger

RECONNECT = "run `pouracquit connect xero` to authorise the app for the organisation again"
# The scopes are compared when the token answer names them ("scope", as the sandbox answers); Xero's identity
# OpenAPI (XeroAPI/Xero-OpenAPI xero-identity.yaml, AccessToken) lists no scope in the answer, so without one the
# line says so and the reads below show what the grant lacks (docs/vendors.md, Unverified). An app created before
# 2026-03-02 may hold the broad accounting.transactions instead of the granular ones (session.OAUTH_SCOPES).
BROAD = {"accounting.transactions": ("accounting.invoices", "accounting.payments", "accounting.banktransactions")}
WEBHOOK_PLACE = ("Xero keeps the delivery URL on the app's Webhooks page of the developer portal "
                 "(https://developer.xero.com/documentation/webhooks/configuring-your-server), which no API reads")


def _tax_rates(ledger: XeroLedger) -> list[Check]:
    lines = vat_lines(ledger.mapping)
    failed = []
    for pattern, (refusal, keys) in unresolved(lines, ledger.directory.tax_type).items():
        also = f"; also named by {', '.join(keys[1:])}" if len(keys) > 1 else ""
        failed.append(Check(f"tax rate {pattern!r}", False, refusal + also,
                            f"add or activate the sales tax rate in Xero (Settings > Tax rates), or change the "
                            f"pattern of mapping key {keys[0]} ([connections.mapping.ledger])"))
    return failed or [Check("tax rates", True, f"every [vat_rates] and [exemptions] rule matches one active "
                                               f"sales tax rate ({len(lines)} keys)")]


def diagnose(ledger: XeroLedger, public_url: str | None) -> list[Check]:
    """The checklist of one Xero ledger (``Diagnosable.diagnose``)."""
    with granted_scopes(ledger.api.session, "/connect/token") as answers:
        _, refused = probe("token refresh", ledger.api.refresh, RECONNECT)
    if refused:
        return [refused]
    checks = [Check("token refresh", True, "Xero issued a new access token; the rotated refresh token is stored"),
              scope_check("Xero", answers, ledger.settings.scopes, RECONNECT + " with the scopes of setting scopes",
                          covers=BROAD)]
    tenant, refused = probe("organisation", ledger.api.tenant, "set tenant_id to the organisation to book into")
    if tenant is None:
        return [*checks, refused] if refused else checks
    checks.append(Check("organisation", True, f"tenant {tenant}"))
    refs, refused = probe("accounts", ledger.directory.references, lambda exc: (
        RECONNECT + " with the scopes of setting scopes" if "AuthorizationUnsuccessful" in str(exc) else
        "create the account in Xero's chart of accounts, or set sales_account / bank_account (mapping [accounts]) "
        "to the Code of the one to use"))
    if refs is None:
        checks += [refused] if refused else []
        checks.append(Check("tax rates", None, "not checked until the accounts above are found"))
    else:
        checks.append(Check("accounts", True,
                            f"revenue account {refs.sales_account}, bank account {refs.bank_account}"))
        checks += _tax_rates(ledger)
    answer, refused = probe("currencies", lambda: ledger.api.request("doctor.currencies", "GET", "/Currencies"), "")
    if answer is not None:
        codes = sorted(str(r.get("Code")) for r in answer.get("Currencies") or [])
        checks.append(Check("currencies", None, f"added to the organisation: {', '.join(codes) or 'none'}"))
    elif refused:  # a fact to show, not a setup step of its own: whatever stops it is failed above
        checks.append(Check("currencies", None, f"not read: {refused.detail}"))
    checks.append(webhook_unread("xero", public_url, ledger.settings.webhook_key is not None, WEBHOOK_PLACE))
    return checks
