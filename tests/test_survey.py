"""The satisfaction survey: signed links (forgery, expiry), single use, scores per
customer, and the page over real HTTP on the admin server (CSP, escaping, refusals)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from security_support import offline_settings
from test_admin_page import Browser

from pouracquit.app.admin import AdminServer
from pouracquit.app.status import connection_status
from pouracquit.common.errors import ConfigError
from pouracquit.connectors.base import Document
from pouracquit.core.delivery.compose import Composer, Paper
from pouracquit.core.delivery.settings import EmailSettings
from pouracquit.core.document.settings import DocumentSettings, Seller
from pouracquit.core.service import Service
from pouracquit.core.survey import (
    SurveyRefused,
    SurveySettings,
    record_answer,
    sign,
    survey_counts,
    survey_link,
    survey_links,
    survey_scores,
    verify,
)
from pouracquit.sandbox.launch import DEMO_SELLER
from pouracquit.state.tables import Receipt

SECRET = "k" * 40
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
RID = "0123456789abcdef0123"
HOSTILE = '<script>alert(1)</script> & "x"'


def receipt(rid: str, customer: str = "Lefèvre SARL", connection: str = "c") -> Receipt:
    return Receipt(id=rid, connection=connection, source_id=f"s-{rid}", payment_version=1, invoice_json="{}",
                   amount=Decimal("240.00"), currency="EUR", customer=customer, status="done")


@pytest.fixture
def enabled(monkeypatch: pytest.MonkeyPatch) -> SurveySettings:
    monkeypatch.setenv("T_SURVEY_KEY", SECRET)
    return SurveySettings(enabled=True, secret={"env": "T_SURVEY_KEY"})  # type: ignore[arg-type]


def test_a_signed_token_opens_until_it_expires() -> None:
    token = sign(SECRET.encode(), RID, NOW + timedelta(days=30))
    assert verify(SECRET.encode(), token, NOW) == RID
    assert verify(SECRET.encode(), token, NOW + timedelta(days=29, hours=23)) == RID
    with pytest.raises(SurveyRefused) as refused:
        verify(SECRET.encode(), token, NOW + timedelta(days=30, seconds=1))
    assert refused.value.kind == "expired"


@pytest.mark.parametrize("tamper", [
    lambda t: t.replace(RID, "f" * 20),                                      # another receipt
    lambda t: ".".join([t.split(".")[0], "ffffffffff", t.split(".")[2]]),    # a later expiry
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),                       # a changed signature
    lambda t: t + "x", lambda t: "", lambda t: "../../etc/passwd",
])
def test_a_forged_or_altered_token_is_refused(tamper) -> None:  # type: ignore[no-untyped-def]
    token = sign(SECRET.encode(), RID, NOW + timedelta(days=30))
    with pytest.raises(SurveyRefused) as refused:
        verify(SECRET.encode(), tamper(token), NOW)
    assert refused.value.kind == "invalid"
    with pytest.raises(SurveyRefused):
        verify(b"another key of forty characters.........", token, NOW)


def test_links(enabled: SurveySettings) -> None:
    link = survey_link(enabled, "https://acquit.example.com/", RID, NOW)
    assert link and link.startswith("https://acquit.example.com/survey/" + RID + ".")
    assert verify(SECRET.encode(), link.rsplit("/", 1)[1], NOW + timedelta(days=29)) == RID
    outside = survey_link(enabled.model_copy(update={"external_url": "https://forms.example/s?id=4"}), None, RID, NOW)
    assert outside and urllib.parse.parse_qs(urllib.parse.urlsplit(outside).query)["id"] == ["4"]
    assert survey_link(SurveySettings(), "https://x.example", RID, NOW) is None
    with pytest.raises(ConfigError, match=r"survey\.public_url"):
        survey_link(enabled, None, RID, NOW)


def test_the_receipt_email_carries_the_survey_link(enabled: SurveySettings) -> None:
    assert survey_links(SurveySettings(), "https://acquit.example.com") is None
    with pytest.raises(ConfigError, match=r"survey\.public_url"):
        survey_links(enabled, None)  # found at start-up, not at the first e-mail
    composer = Composer(EmailSettings(enabled=True, sender="facturation@atelier-lumiere.example"),
                        Seller.model_validate(DEMO_SELLER), DocumentSettings(),
                        survey_links(enabled, "https://acquit.example.com"))
    paper = Paper(receipt_id=RID, kind="receipt", number="F-1", amount=Decimal("240.00"), currency="EUR",
                  issued_on=date(2026, 11, 30), buyer_name="Lefèvre SARL")
    pdf = Document(name="facture.pdf", content=b"%PDF-1.7")
    letter = composer.compose(paper, "compta@lefevre.example", pdf)
    found = re.search(r"https://acquit\.example\.com/survey/(\S+)", letter.text)
    assert found and verify(SECRET.encode(), found.group(1), datetime.now(UTC) + timedelta(days=29)) == RID
    html = letter.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'href="{found.group()}"' in html
    credit = composer.compose(replace(paper, kind="credit_note"), "compta@lefevre.example", pdf)
    assert "/survey/" not in credit.text  # a credit note asks nothing


def test_a_short_or_missing_secret_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SURVEY_KEY", "short")
    with pytest.raises(ConfigError, match=r"survey\.secret: .* shorter than 32"):
        survey_link(SurveySettings(enabled=True, secret={"env": "T_SURVEY_KEY"}), "https://x.example", RID, NOW)  # type: ignore[arg-type]
    monkeypatch.delenv("T_SURVEY_KEY")
    with pytest.raises(ConfigError, match=r"survey\.secret"):
        survey_link(SurveySettings(enabled=True, secret={"env": "T_SURVEY_KEY"}), "https://x.example", RID, NOW)  # type: ignore[arg-type]


def test_answers_are_single_use_and_averaged_per_customer(store) -> None:  # type: ignore[no-untyped-def]
    with store.unit() as u:
        for rid, who in ((RID, "Lefèvre SARL"), ("1" * 20, "Lefèvre SARL"), ("2" * 20, "Dupont SA")):
            u.session.add(receipt(rid, who))
    assert record_answer(store, RID, 5, "  Parfait  ", NOW)
    assert not record_answer(store, RID, 1, "second try", NOW)  # single use
    assert record_answer(store, "1" * 20, 4, "", NOW)
    assert record_answer(store, "2" * 20, 2, HOSTILE, NOW)
    with pytest.raises(SurveyRefused):
        record_answer(store, "9" * 20, 3, "", NOW)
    with pytest.raises(ValueError, match="score must be 1 to 5"):
        record_answer(store, "2" * 20, 6, "", NOW)
    scores = survey_scores(store)
    assert [(s.customer, s.answers, s.average) for s in scores] == [
        ("Lefèvre SARL", 2, Decimal("4.50")), ("Dupont SA", 1, Decimal("2.00"))]
    assert survey_scores(store, since=NOW + timedelta(seconds=1)) == []
    assert survey_counts(store) == {"c": {"answers": 3, "average": "3.67"}}


# -- the page over HTTP ------------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AdminServer, Service]]:
    monkeypatch.setenv("T_SURVEY_KEY", SECRET)
    monkeypatch.setenv("T_ADMIN_TOKEN", "admin-s3cret")  # public all the same, like the verify page
    settings = offline_settings(tmp_path, monkeypatch, survey={"enabled": True, "secret": {"env": "T_SURVEY_KEY"}},
                                admin={"bind": "127.0.0.1:0", "token": {"env": "T_ADMIN_TOKEN"}})
    service = Service.open(settings)
    with service.store.unit() as u:
        u.session.add(receipt(RID, HOSTILE))
    admin = AdminServer(service).start()
    yield admin, service
    admin.stop()
    service.close()


def call(admin: AdminServer, method: str, path: str, form: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """One request without cookies, through the admin page tests' bare client."""
    answer = Browser(admin).send(method, path, form, headers)
    return answer.status, {k.lower(): v for k, v in answer.headers}, answer.body


def test_the_survey_page_over_http(server: tuple[AdminServer, Service]) -> None:
    admin, service = server
    link = survey_link(service.settings.survey, admin.url, RID, datetime.now(UTC))
    assert link is not None
    path = urllib.parse.urlsplit(link).path
    token = path.rsplit("/", 1)[1]
    status, headers, page = call(admin, "GET", path)
    assert status == 200
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "'unsafe-inline'" not in csp
    assert "<script" not in page and " style=" not in page
    assert f'<input type="hidden" name="token" value="{token}">' in page
    assert 'action="/survey/answer"' in page and "Atelier Lumière SAS" in page
    assert call(admin, "GET", "/survey/style.css")[0] == 200
    assert call(admin, "GET", "/status")[0] == 401  # the token is configured: the API stays closed
    # no score: the form again, the comment kept and escaped
    status, _, page = call(admin, "POST", "/survey/answer", {"token": token, "comment": HOSTILE})
    assert status == 400 and "Choisissez une note" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;x&#34;" in page
    # refused from another site
    status, _, _ = call(admin, "POST", "/survey/answer", {"token": token, "score": "4"},
                        headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _, page = call(admin, "POST", "/survey/answer", {"token": token, "score": "4", "comment": HOSTILE})
    assert status == 200 and "Merci pour votre réponse" in page
    # single use: a second answer and the link itself say it is recorded
    status, _, page = call(admin, "POST", "/survey/answer", {"token": token, "score": "1"})
    assert status == 409 and "déjà été enregistrée" in page
    status, _, page = call(admin, "GET", path)
    assert status == 200 and "déjà été enregistrée" in page and 'name="token"' not in page
    assert [(s.customer, s.average) for s in survey_scores(service.store)] == [(HOSTILE, Decimal("4.00"))]
    assert connection_status(service)["c"]["survey"] == {"answers": 1, "average": "4.00"}


def test_bad_links_over_http(server: tuple[AdminServer, Service]) -> None:
    admin, _ = server
    expired = sign(SECRET.encode(), RID, datetime.now(UTC) - timedelta(seconds=1))
    status, _, page = call(admin, "GET", f"/survey/{expired}")
    assert status == 404 and "a expiré" in page and 'name="token"' not in page
    forged = sign(b"x" * 40, RID, datetime.now(UTC) + timedelta(days=1))
    status, _, page = call(admin, "GET", f"/survey/{forged}")
    assert status == 404 and "n&#39;est pas valide" in page
    status, _, page = call(admin, "POST", "/survey/answer", {"token": forged, "score": "5"})
    assert status == 400
    unknown = sign(SECRET.encode(), "e" * 20, datetime.now(UTC) + timedelta(days=1))
    status, _, page = call(admin, "POST", "/survey/answer", {"token": unknown, "score": "5"})
    assert status == 404 and "n&#39;existe pas" in page
    status, _, _ = call(admin, "POST", "/survey/answer", {"token": "t", "comment": "x" * 9000})
    assert status == 403  # the body is over the form limit
