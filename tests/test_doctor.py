"""The parts of ``pouracquit doctor`` that need no vendor: the seller's identity
and how the checklist prints and counts."""

from __future__ import annotations

import io

from pouracquit.app.doctor import print_checklist, seller_checks
from pouracquit.connectors.base import Check
from pouracquit.connectors.doctor_checks import scope_check, webhook_unread
from pouracquit.core.document.settings import Seller
from pouracquit.sandbox.launch import DEMO_SELLER


def test_a_complete_seller_passes_with_its_identifiers_shown() -> None:
    checks = seller_checks(Seller.model_validate(DEMO_SELLER))
    assert [c.ok for c in checks] == [True]
    assert "SIREN 552100554" in checks[0].detail and "VAT number FR96552100554" in checks[0].detail


def test_a_missing_mention_fails_with_the_key_to_set() -> None:
    seller = Seller.model_validate({**DEMO_SELLER, "ape": "", "rcs_city": ""})
    failed = {c.name: c for c in seller_checks(seller) if c.ok is False}
    assert set(failed) == {"seller.ape", "seller.rcs_city"}
    assert failed["seller.ape"].fix == "set ape under [seller] in the config"


def test_a_sole_trader_needs_no_rcs_nor_share_capital_and_a_franchise_no_vat_number() -> None:
    seller = Seller.model_validate({**DEMO_SELLER, "legal_form": "EI", "rcs_city": "", "share_capital": None,
                                    "vat_number": ""})
    checks = seller_checks(seller)
    assert not [c for c in checks if c.ok is False]
    assert any(c.name == "seller.vat_number" and c.ok is None for c in checks)


def test_the_checklist_marks_each_line_and_counts_the_failures() -> None:
    out = io.StringIO()
    failed = print_checklist([("connection demo: ledger quickbooks", [
        Check("token refresh", True, "ok"),
        Check("tax code 'TVA 20 %'", False, "missing", "create it"),
        Check("webhook", None, "not checkable", "compare it"),
    ])], out)
    assert failed == 1
    assert out.getvalue().splitlines() == [
        "connection demo: ledger quickbooks",
        "  ✓ token refresh: ok",
        "  ✗ tax code 'TVA 20 %': missing",
        "      fix: create it",
        "  · webhook: not checkable",
        "      fix: compare it",
    ]


def test_scopes_compare_the_last_answer_and_broad_scopes_cover_narrow_ones() -> None:
    needed = ("accounting.invoices", "accounting.settings")
    assert scope_check("Xero", [], needed, "reconnect").ok is None  # the answer named none: not judged
    lacking = scope_check("Xero", [frozenset({"accounting.invoices"})], needed, "reconnect")
    assert lacking.ok is False and "lacks accounting.settings" in lacking.detail and lacking.fix == "reconnect"
    broad = scope_check("Xero", [frozenset({"accounting.transactions", "accounting.settings"})], needed, "x",
                        covers={"accounting.transactions": ("accounting.invoices",)})
    assert broad.ok is True


def test_webhook_lines_are_never_failures() -> None:
    assert webhook_unread("xero", None, True, "portal").ok is None
    assert webhook_unread("xero", "https://p.example", False, "portal").ok is None
    shown = webhook_unread("xero", "https://p.example/", True, "Xero keeps it in the portal")
    assert shown.ok is None and shown.detail.endswith("It must be https://p.example/webhooks/xero")
