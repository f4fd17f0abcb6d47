"""The e-mail step against a real SMTP server (aiosmtpd, the sandbox's mail catcher):
delivery with the PDF and a stable Message-ID, test redirection, a 4xx then an
accept, a 5xx, no address, header injection, crashes around the send, TLS and login."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from engine_fakes import FakeLedger, FakeRenderer, FakeSource, wiring
from sqlalchemy import text, update

from pouracquit.common.errors import ConfigError, PermanentError, RetryableError
from pouracquit.common.model import Invoice, Party
from pouracquit.connectors.base import Document, SentEmail
from pouracquit.core.delivery.compose import Composer, Letter, Paper
from pouracquit.core.delivery.settings import EmailSettings
from pouracquit.core.delivery.smtp import Mailer
from pouracquit.core.delivery.step import EmailStep
from pouracquit.core.document.settings import DocumentSettings, Seller
from pouracquit.core.intake import IntakeReport, take_page
from pouracquit.core.pipeline import Pipeline
from pouracquit.sandbox.mail import MailCatcher, Reply, free_port
from pouracquit.sandbox.salesforce.tls import make_authority
from pouracquit.state.db import open_engine
from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt

Make = Callable[..., Invoice]
SELLER = Seller(name="Atelier Lumière SAS", email="facturation@atelier-lumiere.example", phone="+33 4 72 00 00 00")


@dataclass
class LoggingSource(FakeSource):
    """A CRM that logs sent e-mails, finding an earlier log by its key on a replay."""

    logged: list[tuple[str, SentEmail]] = field(default_factory=list)
    fail_log: int = 0

    def log_email(self, ref: str, email: SentEmail, *, may_exist: bool) -> str:
        if may_exist and (found := [i for i, (_, e) in enumerate(self.logged) if e.key == email.key]):
            return f"log-{found[0]}"
        if self.fail_log:
            self.fail_log -= 1
            raise RetryableError("CRM busy")
        self.logged.append((ref, email))
        return f"log-{len(self.logged) - 1}"


@dataclass
class BatchLoggingSource(LoggingSource):
    """A CRM that logs many e-mails per call; ``lose_answer`` plays a batch call whose
    answer was lost after the CRM wrote."""

    email_log_batch_size: int = 2
    batch_calls: int = 0
    lose_answer: int = 0

    def log_emails(self, entries: list[tuple[str, SentEmail]]) -> dict[str, str | PermanentError]:
        self.batch_calls += 1
        answer: dict[str, str | PermanentError] = {}
        for ref, email in entries:
            self.logged.append((ref, email))
            answer[email.key] = f"log-{len(self.logged) - 1}"
        if self.lose_answer:
            self.lose_answer -= 1
            raise RetryableError("connection reset after the batch was written")
        return answer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """SQLite, for speed; the store's e-mail queries run on PostgreSQL too (``pg_store`` below)."""
    engine = open_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    yield Store(engine)
    engine.dispose()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    engine = open_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE receipt, invoice_snapshot, connection_state, event_log, document, number_series"))
    yield Store(engine)
    engine.dispose()


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    box = MailCatcher().start()
    yield box
    box.stop()


def email_settings(box: MailCatcher, **extra: Any) -> EmailSettings:
    return EmailSettings(**{**box.email_settings(), "reply_to": "contact@atelier-lumiere.example",
                            "timeout_seconds": 5, **extra})


def run(store: Store, tmp: Path, source: FakeSource, settings: EmailSettings, *, drains: int = 1,
        ledger: FakeLedger | None = None, mailer: Mailer | None = None, until: str | None = None) -> Pipeline:
    w = wiring(store, tmp, source, ledger or FakeLedger(), FakeRenderer(), backoff_seconds=0.01, lease_seconds=0.05)
    w.email = EmailStep(settings, Composer(settings, SELLER, DocumentSettings()), source, mailer)
    for page in source.changes(None):
        with store.unit() as u:
            take_page(u, "conn", page, IntakeReport())
    pipeline = Pipeline(w, "me")
    for _ in range(drains):
        if until:
            for receipt in store.receipts():
                pipeline.process(receipt.id, until)
        else:
            pipeline.drain()
        time.sleep(0.05)  # past the short backoff
    return pipeline


def letter(settings: EmailSettings) -> Letter:
    paper = Paper("r1", "receipt", "F-1", Decimal("240.00"), "EUR", date(2026, 3, 1), "Lefèvre")
    return Composer(settings, SELLER, DocumentSettings()).compose(
        paper, "compta@lefevre.example", Document(name="F-1.pdf", content=b"%PDF"))


def only(store: Store) -> Receipt:
    (receipt,) = store.receipts()
    return receipt


def test_receipt_emailed_with_its_pdf_and_a_stable_message_id(store: Store, tmp_path: Path, catcher: MailCatcher,
                                                             make_invoice: Make) -> None:
    source = LoggingSource()
    source.put(make_invoice())
    run(store, tmp_path, source, email_settings(catcher, bcc=["comptable@cabinet.example"]))
    receipt = only(store)
    (mail,) = catcher.messages
    assert mail["rcpt_tos"] == ["compta@lefevre.example", "comptable@cabinet.example"]
    assert mail["message_id"] == f"<pouracquit.{receipt.id}@atelier-lumiere.example>" == receipt.email_message_id
    assert mail["attachments"] == [{"name": "Facture-F-2026-0001.pdf", "type": "application/pdf",
                                    "size": len(f"%PDF F-2026-0001 {receipt.id}")}]
    assert mail["subject"] == "Facture acquittée F-2026-0001 - Atelier Lumière SAS"
    assert "Bcc" not in catcher.raw[0].decode() and mail["reply_to"] == "contact@atelier-lumiere.example"
    assert "Lefèvre" in mail["to"] and "compta@lefevre.example" in mail["to"]
    assert (receipt.status, receipt.email_status, receipt.email_to) == ("done", "sent", "compta@lefevre.example")
    assert receipt.email_log_id == "log-0" and source.logged[0][1].key == receipt.email_message_id.strip("<>")
    assert [e.kind for e in store.events(receipt.id) if e.kind.startswith("email")] == ["email_sent", "email"]
    run(store, tmp_path, source, email_settings(catcher))  # a second sync sends nothing
    assert len(catcher.messages) == 1


def test_redirect_to_sends_every_email_to_the_test_address(store: Store, tmp_path: Path, catcher: MailCatcher,
                                                          make_invoice: Make) -> None:
    source = FakeSource()
    source.put(make_invoice())
    settings = email_settings(catcher, redirect_to="me@company.fr", bcc=["comptable@cabinet.example"])
    run(store, tmp_path, source, settings)
    (mail,) = catcher.messages
    assert mail["rcpt_tos"] == ["me@company.fr"] and mail["to"] == "me@company.fr"
    assert mail["subject"].startswith("[test: compta@lefevre.example] Facture acquittée")
    assert only(store).email_to == "compta@lefevre.example"


def test_a_4xx_is_retried_and_one_message_arrives(store: Store, tmp_path: Path, catcher: MailCatcher,
                                                  make_invoice: Make) -> None:
    catcher.script = [Reply("rcpt", 451, "4.7.1 Greylisted, try again later")]
    source = FakeSource()
    source.put(make_invoice())
    run(store, tmp_path, source, email_settings(catcher), drains=2)
    receipt = only(store)
    assert len(catcher.messages) == 1
    assert (receipt.status, receipt.email_status) == ("done", "sent")
    retried = [e for e in store.events(receipt.id) if e.kind == "email_sent"]
    assert len(retried) == 1


def test_a_5xx_stops_the_email_with_the_answer_and_the_receipt_stays_booked(
        store: Store, tmp_path: Path, catcher: MailCatcher, make_invoice: Make) -> None:
    catcher.script = [Reply("rcpt", 550, "5.1.1 <compta@lefevre.example>: Recipient address rejected")]
    source, ledger = FakeSource(), FakeLedger()
    source.put(make_invoice())
    run(store, tmp_path, source, email_settings(catcher, bcc=["comptable@cabinet.example"]), ledger=ledger)
    receipt = only(store)
    assert catcher.messages == []  # no Bcc copy of a message the buyer does not get
    assert (receipt.status, receipt.email_status, receipt.ledger_id) == ("done", "rejected", "L0")
    assert "550 5.1.1 <compta@lefevre.example>: Recipient address rejected" in (receipt.email_error or "")
    assert [r.id for r in store.email_problems("conn")] == [receipt.id]
    assert store.email_counts() == {("conn", "rejected"): 1}


@pytest.mark.parametrize(("email", "reason"), [
    ("", "no e-mail address for the buyer"),
    ("compta@lefevre.example\r\nBcc: victim@evil.example", "customer.email contains a line break"),
    ("Évil <a@b.fr>, c@d.fr", "customer.email 'Évil <a@b.fr>, c@d.fr' is not one plain e-mail address"),
])
def test_no_usable_address_skips_the_email_with_the_field_named(
        store: Store, tmp_path: Path, catcher: MailCatcher, make_invoice: Make, email: str, reason: str) -> None:
    source = FakeSource()
    invoice = make_invoice()
    source.put(invoice.model_copy(update={"customer": Party(name="Sans Mail SARL", email=email)}))
    run(store, tmp_path, source, email_settings(catcher))
    receipt = only(store)
    assert catcher.messages == []
    assert (receipt.status, receipt.email_status) == ("done", "skipped")
    assert reason in (receipt.email_error or "")
    assert store.email_problems("conn")[0].email_error == receipt.email_error


def test_a_name_with_a_line_break_and_markup_stays_one_header_and_is_escaped(
        store: Store, tmp_path: Path, catcher: MailCatcher, make_invoice: Make) -> None:
    source = FakeSource()
    source.put(make_invoice(customer="Lefèvre\r\nBcc: victim@evil.example <b>gras</b>"))
    run(store, tmp_path, source, email_settings(catcher))
    (mail,) = catcher.messages
    raw = catcher.raw[0].decode()
    assert mail["rcpt_tos"] == ["compta@lefevre.example"] and "\nBcc:" not in raw
    assert "&lt;b&gt;gras&lt;/b&gt;" in raw and "<b>gras</b>" not in raw.split("text/html", 1)[1]


def test_a_crash_after_the_intent_resumes_and_sends_once(store: Store, tmp_path: Path, catcher: MailCatcher,
                                                        make_invoice: Make) -> None:
    source = FakeSource()
    source.put(make_invoice())
    settings = email_settings(catcher)
    run(store, tmp_path, source, settings, until="email")
    with store.unit() as u:  # the intent committed, then the process died before the send
        u.session.exec(update(Receipt).values(intent="email"))  # type: ignore[call-overload]
    run(store, tmp_path, source, settings)
    assert len(catcher.messages) == 1 and only(store).email_status == "sent"


class CrashAfterData(Mailer):
    """The server took the message, then the process died before recording it."""

    crashed = False

    def send(self, *args: Any, **kwargs: Any) -> Any:
        answer = super().send(*args, **kwargs)
        if not self.crashed:
            self.crashed = True
            raise SystemError("killed between the DATA answer and the commit")
        return answer


def test_the_documented_window_a_crash_after_data_sends_again_with_the_same_message_id(
        store: Store, tmp_path: Path, catcher: MailCatcher, make_invoice: Make) -> None:
    source = FakeSource()
    source.put(make_invoice())
    settings = email_settings(catcher)
    run(store, tmp_path, source, settings, mailer=CrashAfterData(settings), drains=2)
    first, second = catcher.messages
    assert first["message_id"] == second["message_id"] == only(store).email_message_id


def test_a_crash_after_the_send_was_recorded_only_logs_on_the_crm(store: Store, tmp_path: Path,
                                                                  catcher: MailCatcher, make_invoice: Make) -> None:
    source = LoggingSource(fail_log=1)
    source.put(make_invoice())
    run(store, tmp_path, source, email_settings(catcher), drains=2)
    receipt = only(store)
    assert len(catcher.messages) == 1 and len(source.logged) == 1
    assert (receipt.status, receipt.email_status, receipt.email_log_id) == ("done", "sent", "log-0")


def test_credit_notes_are_emailed_too(store: Store, tmp_path: Path, catcher: MailCatcher, make_invoice: Make) -> None:
    source = FakeSource()
    source.put(make_invoice())
    settings = email_settings(catcher, language="en")
    run(store, tmp_path, source, settings)
    source.put(make_invoice(paid="0", modified_at=datetime(2026, 4, 2, 8, 0, tzinfo=UTC)))
    run(store, tmp_path, source, settings, drains=2)
    subjects = [m["subject"] for m in catcher.messages]
    assert subjects[0] == "Paid invoice F-2026-0001 - Atelier Lumière SAS"
    assert subjects[1].startswith("Credit note AV-") and len(subjects) == 2
    assert catcher.messages[1]["attachments"][0]["name"].startswith("Avoir-AV-")


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_and_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, security: str) -> None:
    authority = make_authority()
    ca = tmp_path / "ca.pem"
    ca.write_bytes(authority.ca_pem)
    box = MailCatcher(login=("relay-user", "s3cret"),
                      **{"tls" if security == "tls" else "starttls": authority.context}).start()
    try:
        monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
        settings = EmailSettings(enabled=True, host="localhost", port=box.smtp_port, security=security,
                                 username="relay-user", password={"env": "SMTP_PASSWORD"}, ca_file=ca)
        mail = letter(settings)
        sent = Mailer(settings).send(mail.message, mail.sender, mail.to)
        assert sent.answer.startswith("250") and len(box.messages) == 1
        monkeypatch.setenv("SMTP_PASSWORD", "wrong")
        with pytest.raises(ConfigError, match=r"email\.username/password refused"):
            Mailer(settings).send(mail.message, mail.sender, mail.to)
    finally:
        box.stop()


def test_a_server_that_is_down_is_retryable(tmp_path: Path) -> None:
    settings = EmailSettings(enabled=True, host="127.0.0.1", port=free_port(), security="none", timeout_seconds=2)
    mail = letter(settings)
    with pytest.raises(RetryableError, match="unreachable"):
        Mailer(settings).send(mail.message, mail.sender, mail.to)


@pytest.mark.parametrize(("extra", "message"), [
    ({"username": "u"}, "username is set without password"),
    ({"username": "u", "password": {"env": "X"}, "security": "none", "host": "smtp.example.fr"},
     "would send the SMTP password in clear"),
    ({"sender": "Nom <a@b.fr>"}, "not one plain e-mail address"),
    ({"bcc": ["a@b.fr\nCc: c@d.fr"]}, "line break"),
])
def test_bad_email_settings_are_refused_with_the_key(extra: dict[str, Any], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        EmailSettings(**extra)


def test_the_sellers_logo_travels_inline_and_the_html_names_it(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    settings = EmailSettings(enabled=True, host="127.0.0.1", security="none")
    composer = Composer(settings, SELLER, DocumentSettings(logo=logo))
    mail = composer.compose(Paper("r1", "receipt", "F-1", Decimal("240.00"), "EUR", date(2026, 3, 1), "Lefèvre"),
                            "compta@lefevre.example", Document(name="F-1.pdf", content=b"%PDF"))
    parts = {part.get_content_type(): part for part in mail.message.walk()}
    assert parts["image/png"]["Content-ID"] == "<logo@pouracquit>"
    assert 'src="cid:logo@pouracquit"' in parts["text/html"].get_content()
    assert "240,00" in parts["text/plain"].get_content()


def test_a_server_down_loses_nothing_and_each_email_goes_once_when_it_returns(
        store: Store, tmp_path: Path, make_invoice: Make) -> None:
    port = free_port()
    settings = EmailSettings(enabled=True, host="127.0.0.1", port=port, security="none", timeout_seconds=2)
    source = FakeSource()
    source.put(*(make_invoice(f"s{i}", number=f"F-{i}") for i in range(3)))
    run(store, tmp_path, source, settings, drains=2)  # nobody listens: every send is refused, to retry
    assert {(r.status, r.step, r.email_status) for r in store.receipts()} == {("pending", "email", None)}
    assert all("unreachable" in (r.last_error or "") for r in store.receipts())
    box = MailCatcher(smtp_port=port).start()
    try:
        run(store, tmp_path, source, settings, drains=2)
        assert sorted(m["rcpt_tos"][0] for m in box.messages) == ["compta@lefevre.example"] * 3
        assert len({m["message_id"] for m in box.messages}) == 3
        assert {r.email_status for r in store.receipts()} == {"sent"}
    finally:
        box.stop()


def test_a_crm_that_logs_in_batches_gets_the_emails_after_the_drain_once_even_when_an_answer_is_lost(
        store: Store, tmp_path: Path, catcher: MailCatcher, make_invoice: Make) -> None:
    source = BatchLoggingSource(lose_answer=1)
    source.put(*(make_invoice(f"s{i}", number=f"F-{i}") for i in range(3)))
    run(store, tmp_path, source, email_settings(catcher))
    # the first batch was written but its answer lost: claimed, left for a lookup
    assert len(source.logged) == 2 and {r.email_log_id for r in store.receipts()} >= {None}
    time.sleep(0.15)  # past the claim's staleness (two leases)
    run(store, tmp_path, source, email_settings(catcher))
    receipts = store.receipts()
    assert len(catcher.messages) == 3 and len(source.logged) == 3  # the lost batch was found, not written again
    assert sorted(r.email_log_id or "" for r in receipts) == ["log-0", "log-1", "log-2"]
    assert len([e for e in store.events(kind="email_logged")]) == 3


def test_a_refused_quit_after_the_accepted_data_is_still_one_message(tmp_path: Path, catcher: MailCatcher) -> None:
    catcher.script = [Reply("quit", 421, "4.3.2 shutting down")]
    settings = email_settings(catcher)
    mail = letter(settings)
    sent = Mailer(settings).send(mail.message, mail.sender, mail.to)
    assert sent.answer.startswith("250 2.0.0 Ok: queued as catcher-1") and len(catcher.messages) == 1


@pytest.mark.postgres
def test_the_email_queries_and_claims_on_postgresql(pg_store: Store, tmp_path: Path, catcher: MailCatcher,
                                                    make_invoice: Make) -> None:
    catcher.script = [Reply("rcpt", 550, "5.1.1 no such user")]
    source = BatchLoggingSource(lose_answer=1)
    source.put(*(make_invoice(f"s{i}", number=f"F-{i}") for i in range(3)))
    run(pg_store, tmp_path, source, email_settings(catcher))
    assert pg_store.email_counts() == {("conn", "rejected"): 1, ("conn", "sent"): 2}
    assert [r.email_status for r in pg_store.email_problems("conn")] == ["rejected"]
    time.sleep(0.15)
    run(pg_store, tmp_path, source, email_settings(catcher))
    assert len(source.logged) == 2 and sorted(r.email_log_id or "" for r in pg_store.receipts()) == [
        "", "log-0", "log-1"]


def test_an_empty_smtp_password_is_refused_when_the_step_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    from pouracquit.core.config import parse_settings

    monkeypatch.setenv("SMTP_PASSWORD", "  ")
    settings = parse_settings({"seller": {"name": "X", "email": "a@b.fr"}, "connections": [
        {"name": "c", "source": {"vendor": "hubspot"}, "ledger": {"vendor": "quickbooks"}}],
        "email": {"enabled": True, "username": "u", "password": {"env": "SMTP_PASSWORD"}}})
    with pytest.raises(ConfigError, match="secret password is empty"):
        EmailStep.of(settings, FakeSource())
