"""The admin page in a real browser (Debian's Chromium, headless, driven by
Playwright): a wrong token refused, logging in, finding a receipt by its
number, downloading its PDF, retrying a failed receipt and seeing it done,
the two reports (reconciliation in step, payments with its plots).

With POURACQUIT_SCREENSHOTS=<directory> it also saves the screenshots
docs/admin-page.md shows (``POURACQUIT_SCREENSHOTS=docs/img pytest
tests/e2e/test_admin_page_browser.py``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pouracquit.app.admin import AdminServer
from pouracquit.app.admin_page import data
from pouracquit.core.sync import sync_connection

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "browser-admin-token"
SHOTS = os.environ.get("POURACQUIT_SCREENSHOTS")

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - playwright is a test dependency
    sync_playwright = None  # type: ignore[assignment]


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"admin-{name}.png"), full_page=True)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.skipif(sync_playwright is None, reason="playwright (a test dependency) is not installed")
def test_admin_page_in_a_real_browser(make_rig: Callable, tmp_path: Path,  # type: ignore[type-arg]
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_ADMIN_TOKEN", TOKEN)
    rig = make_rig(count=4)
    rig.config["admin"]["token"] = {"env": "T_ADMIN_TOKEN"}
    # the ledger refuses every booking: each receipt stops at ledger_record, its PDF archived
    rig.faults(rig.ledger, scripted=[{"kind": "error", "method": "POST", "path": "salesreceipt|/batch$",
                                      "count": 1000}])
    service = rig.service(max_attempts=1, vendor_retry_attempts=1)
    sync_connection(service, "demo")
    failed = service.store.receipts("demo", "failed")
    assert len(failed) >= 2, [(r.status, r.last_error) for r in service.store.receipts("demo")]
    rig.faults(rig.ledger)
    *fixed, broken = failed
    assert {data.retry(service, r.id) for r in fixed} == {"done"}
    done = service.store.receipt(fixed[0].id)
    assert done is not None and done.number
    admin = AdminServer(service).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            # JavaScript off: the page must work without it
            context = browser.new_context(accept_downloads=True, locale="fr-FR", java_script_enabled=False,
                                          viewport={"width": 1200, "height": 800})
            page = context.new_page()
            refused: list[str] = []  # what the Content-Security-Policy blocked
            page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)

            page.goto(f"{admin.url}/admin/")
            expect(page).to_have_url(f"{admin.url}/admin/login")
            _shot(page, "login")
            page.fill("#token", "not-the-token")
            page.click("button[type=submit]")
            expect(page.locator("#error")).to_contain_text("Jeton refusé")

            page.fill("#token", TOKEN)
            page.click("form.login button[type=submit]")
            expect(page).to_have_url(f"{admin.url}/admin/connections")
            card = page.locator("#connection-demo")
            expect(card).to_contain_text(broken.id)  # the failed receipt, with its reason and a retry button
            _shot(page, "connections")

            page.click("nav >> text=Factures acquittées")
            page.fill("input[name=q]", done.number or "")
            page.click("form.search button")
            rows = page.locator("table.receipts tbody tr")
            expect(rows).to_have_count(1)
            _shot(page, "receipts")
            rows.first.locator("td").first.locator("a").click()
            expect(page.locator("#number")).to_have_text(done.number or "")
            expect(page.locator("#status")).to_have_text("done")
            expect(page.locator(".payment").first).to_contain_text(json.loads(done.invoice_json)["payments"][0]["reference"])
            _shot(page, "receipt")
            with page.expect_download() as caught:
                page.click("#pdf")
            pdf = caught.value.path().read_bytes()
            assert pdf.startswith(b"%PDF")
            assert page.locator("#verify").get_attribute("href") == f"/receipts/{done.id}/verify"

            page.goto(f"{admin.url}/admin/receipts?status=failed")
            expect(rows).to_have_count(1)
            rows.first.locator("td").first.locator("a").click()
            expect(page.locator("#status")).to_have_text("failed")
            expect(page.locator("#reason")).to_contain_text("503")
            page.click("#retry")
            expect(page.locator("#retried")).to_contain_text("done")
            expect(page.locator("#status")).to_have_text("done")
            expect(page.locator("table.trail")).to_contain_text("retry_requested")

            page.click("nav >> text=Rapports")
            page.select_option("select[name=kind]", "reconcile")
            page.click("form.report-form button")
            expect(page.locator("section.reconcile")).to_contain_text("En accord")  # all booked (in the page's French)
            page.select_option("select[name=kind]", "payments")
            page.click("form.report-form button")
            expect(page.locator("section.payments svg")).to_have_count(3)  # the plots, inline SVG
            _shot(page, "reports")
            assert not refused, refused  # the page needs nothing its CSP forbids
            browser.close()
    finally:
        admin.stop()
        service.close()
    assert service.store.receipt(broken.id).status == "done"  # type: ignore[union-attr]
