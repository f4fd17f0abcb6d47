"""The satisfaction survey page in a real browser (Debian's Chromium, headless, driven by
Playwright): the stylesheet passes the CSP with no violation, a score and a comment are
sent, the answer is stored once, and the link then says it was answered."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from security_support import offline_settings

from pouracquit.app.admin import AdminServer
from pouracquit.core.service import Service
from pouracquit.core.survey import survey_link, survey_scores
from pouracquit.state.tables import Receipt

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - playwright is a test dependency
    sync_playwright = None  # type: ignore[assignment]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.skipif(sync_playwright is None, reason="playwright (a test dependency) is not installed")
def test_survey_in_a_real_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SURVEY_KEY", "s" * 40)
    settings = offline_settings(tmp_path, monkeypatch, survey={"enabled": True, "secret": {"env": "T_SURVEY_KEY"}})
    service = Service.open(settings)
    with service.store.unit() as u:
        u.session.add(Receipt(id="ab" * 10, connection="c", source_id="s-1", payment_version=1, invoice_json="{}",
                              amount=Decimal("240.00"), currency="EUR", customer="Lefèvre <SARL>", status="done"))
    admin = AdminServer(service).start()
    try:
        link = survey_link(settings.survey, admin.url, "ab" * 10, datetime.now(UTC))
        assert link is not None
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))
            page.goto(link)
            expect(page.locator("h1")).to_have_text("Votre avis")
            assert page.evaluate("getComputedStyle(document.body).maxWidth") == "576px"  # the stylesheet loaded
            page.get_by_label("4").check()
            page.locator("#comment").fill("Très bien <b>merci</b>")
            page.get_by_role("button", name="Envoyer").click()
            expect(page.locator("#message")).to_have_text("Merci pour votre réponse !")
            page.goto(link)
            expect(page.locator("#message")).to_contain_text("déjà été enregistrée")
            assert page.locator("form").count() == 0
            browser.close()
        assert not [line for line in console if "Content Security Policy" in line], console
    finally:
        admin.stop()
        service.close()
    (score,) = survey_scores(service.store)
    assert (score.customer, score.answers, score.average) == ("Lefèvre <SARL>", 1, Decimal("4.00"))
