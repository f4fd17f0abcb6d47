"""``pouracquit doctor`` for a QuickBooks Online ledger: the token refresh, the
accounting scope, every TaxCode, account, item and payment method the mapping
names, the company's currencies, and the webhook endpoint.

Read-only: the reference data comes in one /batch of queries like the ledger's
own (``refs.py``), but a missing item is reported, not created. Tax
codes are resolved by the ledger's own ``Builder.tax_code``, so a code the
doctor passes is a code a booking finds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pouracquit.common.errors import ConfigError
from pouracquit.connectors.base import Check
from pouracquit.connectors.doctor_checks import probe, unresolved, vat_lines, webhook_unread

from .docs import Builder
from .refs import MULTICURRENCY_SETTING, Refs, TaxCode, reference_rows

if TYPE_CHECKING:
    from .ledger import QuickBooksLedger

RECONNECT = "run `pouracquit connect quickbooks` to authorise the app for this company again"
# Intuit's token answer holds access_token, refresh_token, expires_in, x_refresh_token_expires_in and
# token_type, no scope (https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0,
# "Step 8: refresh access tokens"); the grant's scope shows in what the accounting API lets it read.
WEBHOOK_PLACE = ("Intuit keeps the webhook endpoint on the app's Webhooks page of the developer portal "
                 "(https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks), which no API reads")
TAXES_FIX = "Settings > Taxes in QuickBooks"


def _rows(ledger: QuickBooksLedger) -> dict[str, list[dict[str, Any]]]:
    """The reference data queries of ``Directory.references``, as one /batch."""
    return reference_rows(ledger.api, str(ledger.mapping["item"]), "doctor.references")


def _refs(rows: dict[str, list[dict[str, Any]]]) -> Refs:
    """The part of ``Refs`` the tax code lookup reads (tax codes, currency preferences)."""
    rates = {str(r["Id"]): Decimal(str(r["RateValue"])) for r in rows["TaxRate"]}
    codes = {}
    for code in rows["TaxCode"]:
        ids = [str(d["TaxRateRef"]["value"]) for d in (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []]
        codes[str(code["Name"]).lower()] = TaxCode(str(code["Id"]), str(code["Name"]),
                                                   [(i, rates[i]) for i in ids if i in rates])
    prefs = (rows["Preferences"] or [{}])[0].get("CurrencyPrefs") or {}
    home = str((prefs.get("HomeCurrency") or {}).get("value") or "EUR")
    return Refs(codes, "", {}, "", home, bool(prefs.get("MultiCurrencyEnabled")))


def _tax_codes(ledger: QuickBooksLedger, refs: Refs) -> list[Check]:
    lines = vat_lines(ledger.mapping)
    failed = []
    for name, (refusal, keys) in unresolved(lines, Builder(ledger.mapping, refs).tax_code).items():
        also = f"; also named by {', '.join(keys[1:])}" if len(keys) > 1 else ""
        todo = ("create or reactivate" if name.lower() not in refs.tax_codes else "give the rate of its key to")
        failed.append(Check(f"tax code {name!r}", False, refusal + also,
                            f"{todo} the TaxCode {name!r} ({TAXES_FIX}), or set mapping key {keys[0]} to the name "
                            f"of the code to use ([connections.mapping.ledger])"))
    return failed or [Check("tax codes", True, f"every [vat_rates] and [exemptions] key resolves to a TaxCode "
                                               f"of its rate ({len(lines)} keys)")]


def _accounts(ledger: QuickBooksLedger, rows: dict[str, list[dict[str, Any]]]) -> list[Check]:
    m = ledger.mapping
    accounts = {str(a["Name"]).lower(): a for a in rows["Account"]}
    checks = []
    deposit = str(m["deposit_account"])
    if accounts.get(deposit.lower(), {}).get("AccountType") == "Bank":
        checks.append(Check("deposit account", True, f"bank account {deposit!r}"))
    else:
        checks.append(Check("deposit account", False, f"QuickBooks has no active bank account named {deposit!r}",
                            "create it in the chart of accounts (type Bank), or set deposit_account to the "
                            "name of the account receipts are paid into"))
    item, income = str(m["item"]), str(m.get("item_income_account", ""))
    if rows["Item"]:
        checks.append(Check("item", True, f"service item {item!r}"))
    elif income.lower() in accounts:
        checks.append(Check("item", True, f"no item {item!r} yet: the first booking creates it on the income "
                                          f"account {income!r}"))
    else:
        checks.append(Check("item", False, f"QuickBooks has no item {item!r} nor the income account {income!r} "
                                           f"to create it with",
                            f"create the service item {item!r} (Products and services), or set item / "
                            f"item_income_account to names the company has"))
    methods = {str(r["Name"]).lower() for r in rows["PaymentMethod"]}
    for key, name in m.get("payment_methods", {}).items():
        if name and str(name).lower() not in methods:
            checks.append(Check(f"payment method {name!r}", False,
                                f"QuickBooks has no payment method {name!r} (mapping payment_methods.{key})",
                                f"add it under Payment methods in QuickBooks, or set payment_methods.{key} to "
                                f"one the company has (\"\" books without a method)"))
    return checks


def diagnose(ledger: QuickBooksLedger, public_url: str | None) -> list[Check]:
    """The checklist of one QuickBooks ledger (``Diagnosable.diagnose``)."""
    _, refused = probe("token refresh", ledger._conn.refresh, RECONNECT)
    if refused:
        return [refused]
    checks = [Check("token refresh", True, "Intuit issued a new access token; the rotated refresh token is stored")]
    rows, refused = probe("scopes", lambda: _rows(ledger), lambda exc: (
        "authorise the app for this company with the scope com.intuit.quickbooks.accounting "
        "(`pouracquit connect quickbooks`)" if isinstance(exc, ConfigError) else
        "QuickBooks did not answer the reference data reads: run doctor again"))
    if rows is None:
        return [*checks, refused] if refused else checks
    checks.append(Check("scopes", True, "com.intuit.quickbooks.accounting: the accounting reads succeeded "
                                        "(Intuit's token answer names no scopes)"))
    refs = _refs(rows)
    checks += _tax_codes(ledger, refs) + _accounts(ledger, rows)
    currencies = f"home currency {refs.home_currency}, multicurrency {'on' if refs.multicurrency else 'off'}"
    if not refs.multicurrency:
        currencies += f": invoices in other currencies will stop ({MULTICURRENCY_SETTING})"
    checks.append(Check("currencies", None, currencies))
    checks.append(webhook_unread("quickbooks", public_url, ledger.settings.webhook_verifier_token is not None,
                                       WEBHOOK_PLACE))
    return checks
