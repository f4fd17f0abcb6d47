"""``pouracquit doctor`` against the sandboxes: a healthy setup passes (exit 0); a
tax code, custom field or scope taken away, or a refused refresh token, fails
(exit 1) with a line naming it and its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pouracquit.app.cli import main
from pouracquit.sandbox.launch import secret_file


def doctor(rig, capsys) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = main(["doctor", "--config", str(rig.write_config())])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(("source", "ledger"), [("hubspot", "quickbooks"), ("zoho", "xero"),
                                                ("salesforce", "quickbooks")])
def test_doctor_passes_on_the_sandboxes(make_rig, capsys, source: str, ledger: str) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=4, source=source, ledger=ledger)
    rig.config["admin"]["public_url"] = "https://pouracquit.example.fr"
    code, out = doctor(rig, capsys)
    assert code == 0, out
    assert "✗" not in out
    assert out.rstrip().endswith("pouracquit doctor: every check passed")
    for line in (f"connection demo: source {source}", f"connection demo: ledger {ledger}", "✓ token refresh",
                 "✓ scopes", "✓ identifiers: SIREN 552100554"):
        assert line in out
    if ledger == "xero":
        assert "✓ tax rates" in out and "✓ accounts: revenue account 706000, bank account 512000" in out
    else:
        assert "✓ tax codes" in out and "✓ deposit account: bank account 'Banque'" in out
    if source == "hubspot":  # its webhook target is not readable with a connection's credentials: shown, not judged
        assert "· webhook: not checkable" in out and "https://pouracquit.example.fr/webhooks/hubspot" in out


def test_a_tax_code_removed_from_quickbooks_is_named_with_its_fix(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=4, source="hubspot", ledger="quickbooks")
    with rig.ledger.lock:  # made inactive in the company: QBO's queries no longer return it
        code_row = next(r for r in rig.ledger.books.entities["TaxCode"].values() if r["Name"] == "TVA 5,5 %")
        code_row["Active"] = False
    code, out = doctor(rig, capsys)
    assert code == 1
    assert "✗ tax code 'TVA 5,5 %': QuickBooks has no TaxCode named 'TVA 5,5 %' (mapping vat_rates.5.5)" in out
    assert ("fix: create or reactivate the TaxCode 'TVA 5,5 %' (Settings > Taxes in QuickBooks), or set mapping "
            "key vat_rates.5.5 to the name of the code to use") in out
    assert "✓ deposit account" in out  # the rest is still checked
    assert "pouracquit doctor: 1 check(s) failed" in out


def test_a_xero_tax_rate_archived_is_one_line_naming_every_key(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=4, source="zoho", ledger="xero")
    with rig.ledger.lock:  # Xero's "Exonéré": archived rates are not offered to sales any more
        for rate in rig.ledger.books.tax_rates:
            if rate["Name"].startswith("Exon"):
                rate["Status"] = "ARCHIVED"
    code, out = doctor(rig, capsys)
    assert code == 1
    failed = [line for line in out.splitlines() if "✗" in line]
    assert len(failed) == 1, out
    assert failed[0].startswith("  ✗ tax rate '^Exon': mapping vat_rates.0 = '^Exon' must match exactly one active")
    assert "also named by exemptions.VATEX-EU-132" in failed[0]
    assert "fix: add or activate the sales tax rate in Xero (Settings > Tax rates)" in out


def test_a_custom_field_removed_from_zoho_is_named(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=4, source="zoho", ledger="xero")
    with rig.source.lock:  # no record has it any more: the org's Invoices module lacks the field
        for record in rig.source.store.records["Invoices"].values():
            record.pop("Amount_Paid", None)
    code, out = doctor(rig, capsys)
    assert code == 1
    assert "✗ field Invoices.Amount_Paid: Invoices has no field Amount_Paid (mapping key invoice.amount_paid)" in out
    assert "fix: create the field Amount_Paid on Invoices (Setup > Customization > Modules and Fields)" in out
    assert "✓ fields of Accounts" in out


def test_a_salesforce_field_the_org_lacks_is_named(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=4, source="salesforce", ledger="quickbooks")
    rig.config["connections"][0]["mapping"] = {"source": {"account": {"siren": "Company_SIREN__c"}}}
    code, out = doctor(rig, capsys)
    assert code == 1
    assert "✗ field Invoice__c.Account__r.Company_SIREN__c: Invoice__c has no field Account__r.Company_SIREN__c" in out
    assert "✓ fields of Invoice_Line__c" in out


def test_a_grant_without_a_needed_xero_scope_fails_naming_it(make_rig, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=4, source="zoho", ledger="xero")
    client_id = rig.config["connections"][0]["ledger"]["client_id"]
    rig.ledger.issuer.add_refresh_token("narrow-grant", client_id,
                                        "offline_access accounting.invoices accounting.payments accounting.contacts")
    rig.config["connections"][0]["ledger"]["refresh_token"] = secret_file(tmp_path / "narrow", "rt", "narrow-grant")
    code, out = doctor(rig, capsys)
    assert code == 1
    assert ("✗ scopes: the grant lacks accounting.banktransactions, accounting.settings, accounting.attachments"
            in out)
    assert "fix: run `pouracquit connect xero`" in out
    assert "✗ accounts: " in out and "AuthorizationUnsuccessful" in out


def test_a_refused_refresh_token_fails_with_the_reconnect_fix(make_rig, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=4, source="hubspot", ledger="quickbooks")
    rig.config["connections"][0]["ledger"]["refresh_token"] = secret_file(tmp_path / "bad", "rt", "RT1-revoked")
    code, out = doctor(rig, capsys)
    assert code == 1
    assert "✗ token refresh: quickbooks refused the refresh token (invalid_grant)" in out
    assert "fix: run `pouracquit connect quickbooks`" in out
    assert "✓ token refresh: HubSpot issued a new access token" in out  # the other side is still checked


def test_a_configuration_error_is_exit_2(make_rig, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=4, source="hubspot", ledger="quickbooks")
    rig.config["connections"][0]["ledger"]["mode"] = "journal"
    code = main(["doctor", "--config", str(rig.write_config())])
    assert code == 2
    assert "connections.demo.ledger" in capsys.readouterr().err
