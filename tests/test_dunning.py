"""Dunning: the ladder and calendar, who is chased (stop conditions), and reminders
sent once over a real SMTP server (the sandbox mail catcher), crashes and retries included."""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import build_invoice
from engine_fakes import FakeLedger, FakeRenderer, FakeSource, wiring
from security_support import offline_settings
from sqlmodel import select

from pouracquit.app.cli import main
from pouracquit.app.daemon import build_scheduler
from pouracquit.app.dunning_cmd import dunning_command
from pouracquit.app.status import connection_status
from pouracquit.app.toml_out import dumps
from pouracquit.common.errors import ConfigError, RetryableError
from pouracquit.common.model import InvoiceStatus, Party
from pouracquit.common.money import Money
from pouracquit.connectors.base import SentEmail
from pouracquit.connectors.hubspot.mapping import HubSpotMapper
from pouracquit.connectors.salesforce.mapping import SalesforceMapper
from pouracquit.connectors.zoho.mapping import ZohoMapper
from pouracquit.core.credit import PARIS
from pouracquit.core.delivery.smtp import Mailer
from pouracquit.core.dunning.ladder import Due, day_off, step_due
from pouracquit.core.dunning.plan import DISPUTED, Chase, plan
from pouracquit.core.dunning.run import run_dunning
from pouracquit.core.dunning.send import _intent, reminder_id
from pouracquit.core.dunning.settings import DunningSettings, Step
from pouracquit.core.intake import snapshot_of
from pouracquit.core.service import Service
from pouracquit.sandbox.mail import MailCatcher, Reply
from pouracquit.state.tables import DunningReminder

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"
LADDER = DunningSettings(enabled=True).steps
DUE = date(2026, 11, 2)  # a Monday
PARIS_9AM = 8  # 09:00 in Paris is 08:00 UTC in winter


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, PARIS_9AM, tzinfo=UTC)


def unpaid(source_id: str = "inv-1", *, due: date | None = DUE, email: str = "compta@lefevre.example",
           **extra: Any) -> Any:
    extra.setdefault("number", f"F-{source_id}")
    invoice = build_invoice(source_id, paid=extra.pop("paid", None), due_date=due, **extra)
    return invoice.model_copy(update={"customer": Party(name="Lefèvre SARL", email=email)})


# -- the ladder and the calendar ---------------------------------------------------------------
def on(*days: int) -> dict[int, date]:
    """Steps 0, 1... written on these days after the due date."""
    return {step: DUE + timedelta(days=d) for step, d in enumerate(days)}


@pytest.mark.parametrize(("late", "written", "expected"), [
    (0, {}, None),                                   # due today: not late yet
    (1, {}, Due(0, "courtois", 1)),
    (3, on(1), None),                                # step 1 sent, step 2 not reached
    (7, on(1), Due(1, "ferme", 7)),
    (9, on(3), Due(1, "ferme", 9)),                  # step 1 went out late (a weekend): 6 days later
    (8, on(3), None),
    (9, {}, Due(0, "courtois", 9)),                  # found late: the courteous one first, never skipped
    (200, {}, Due(0, "courtois", 200)),
    (205, on(200), None), (206, on(200), Due(1, "ferme", 206)),
    (40, on(1, 7, 15, 30), None),                    # the ladder is over
])
def test_step_due(late: int, written: dict[int, date], expected: Due | None) -> None:
    assert step_due(DUE, DUE + timedelta(days=late), LADDER, written) == expected


def test_days_off() -> None:
    cfg = DunningSettings()
    assert day_off(date(2026, 11, 28), cfg) == "weekend"
    assert day_off(date(2026, 11, 11), cfg) == "public holiday (Armistice Day)"
    assert day_off(date(2026, 12, 26), cfg) == "weekend"
    assert day_off(date(2026, 4, 3), cfg) is None  # Good Friday: a holiday in Moselle only
    assert day_off(date(2026, 4, 3), DunningSettings(holidays_subdivision="57")) == "public holiday (Good Friday)"
    assert day_off(date(2026, 11, 11), DunningSettings(skip_holidays=False)) is None
    assert day_off(date(2026, 11, 28), DunningSettings(skip_weekends=False)) is None


def test_ladder_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing after_days"):
        DunningSettings(steps=[Step(after_days=7, template="ferme"), Step(after_days=1, template="courtois")])


def test_bad_dunning_settings_are_one_line_naming_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^test: dunning: template 'amical' has no file amical\.en\.txt in "):
        offline_settings(tmp_path, monkeypatch, dunning={"language": "en", "steps": [
            {"after_days": 3, "template": "amical"}]})
    (tmp_path / "amical.en.txt").write_text("Subject: Hello {{ number }}\n\nPlease pay {{ amount_due }}.\n")
    custom = offline_settings(tmp_path, monkeypatch, dunning={"language": "en", "template_dir": str(tmp_path),
                                                              "steps": [{"after_days": 3, "template": "amical"}]})
    assert custom.dunning.steps[0].template == "amical"
    with pytest.raises(ConfigError, match=r"dunning\.enabled needs email\.enabled"):
        offline_settings(tmp_path, monkeypatch, dunning={"enabled": True})
    with pytest.raises(ConfigError, match=r"dunning\.holidays_subdivision: unknown French subdivision '67'"):
        offline_settings(tmp_path, monkeypatch, dunning={"holidays_subdivision": "67"})


@pytest.mark.parametrize(("vendor", "mapper", "field", "raw"), [
    ("hubspot", HubSpotMapper, "pouracquit_disputed", "true"),
    ("salesforce", SalesforceMapper, "Disputed__c", True),
    ("zoho", ZohoMapper, "Disputed", True),
])
def test_each_mapping_carries_the_dispute_flag(vendor: str, mapper: Any, field: str, raw: Any) -> None:
    mapping = tomllib.loads((MAPPINGS / f"{vendor}.toml").read_text())
    assert mapping["invoice"]["disputed"] == ""  # off unless the user names a property
    assert mapper(mapping)._disputed({field: raw}) == {}
    mapping["invoice"]["disputed"] = field
    flag = mapper(mapping)._disputed({field: raw})
    assert flag.keys() == {DISPUTED} and flag[DISPUTED].lower() == "true"
    assert mapper(mapping)._disputed({field: None}) == {}


# -- who is chased --------------------------------------------------------------------------------
@pytest.fixture
def crm(store: Any) -> FakeSource:
    return FakeSource()


def seen(store: Any, source: FakeSource, *invoices: Any) -> None:
    """What a sync does for dunning: the CRM holds the record, the store its snapshot."""
    source.put(*invoices)
    with store.unit() as u:
        for invoice in invoices:
            u.put_snapshot(snapshot_of("conn", invoice, 0))


def test_plan_chases_and_says_why_not(store: Any, crm: FakeSource) -> None:
    seen(store, crm,
         unpaid("late"), unpaid("not-late", due=date(2026, 11, 30)), unpaid("no-due", due=None),
         unpaid("disputed", properties={DISPUTED: "true"}), unpaid("no-mail", email=""),
         unpaid("bad-mail", email="a@b.example\nBcc: x@evil.example"),
         build_invoice("paid", number="F-paid", due_date=DUE))
    # paid in the CRM since the last sync: the fresh read stops it
    seen(store, crm, unpaid("paid-since"))
    crm.put(unpaid("paid-since", status=InvoiceStatus.PAID, amount_paid=Money(amount="240.00", currency="EUR")))
    seen(store, crm, unpaid("voided"))
    crm.put(unpaid("voided", status=InvoiceStatus.VOID))
    chases = {c.source_id: c for c in plan(store, crm, "conn", DunningSettings(), date(2026, 11, 10))}
    assert chases["late"].reason == "" and chases["late"].due == Due(0, "courtois", 8)
    assert chases["late"].recipient == "compta@lefevre.example"
    assert str(chases["late"].amount_due) == "240.00" and chases["late"].currency == "EUR"
    assert "disputed" in chases["disputed"].reason
    assert "no e-mail address" in chases["no-mail"].reason
    assert "customer.email" in chases["bad-mail"].reason and "line break" in chases["bad-mail"].reason
    assert chases["paid-since"].reason == "invoice is paid in the CRM"
    assert chases["voided"].reason == "invoice is void in the CRM"
    assert {"not-late", "no-due", "paid"}.isdisjoint(chases)  # nothing due, or not open at all


def test_partly_paid_invoice_is_chased_for_what_is_left(store: Any, crm: FakeSource) -> None:
    seen(store, crm, unpaid("part", paid="100.00", status=InvoiceStatus.OPEN))
    (chase,) = plan(store, crm, "conn", DunningSettings(), date(2026, 11, 3))
    assert str(chase.amount_due) == "140.00"


def test_due_dates_are_read_again_only_after_a_change(store: Any, crm: FakeSource) -> None:
    seen(store, crm, unpaid("a", due=date(2026, 12, 20)))
    reads: list[str] = []
    get = crm.get
    crm.get = lambda ref: reads.append(ref) or get(ref)  # type: ignore[method-assign]
    for day in (date(2026, 11, 3), date(2026, 11, 4)):
        assert plan(store, crm, "conn", DunningSettings(), day) == []
    assert reads == ["a"]  # the second day used the due date read the first
    assert plan(store, crm, "conn", DunningSettings(), date(2026, 11, 4), dry_run=True) == []


def test_an_intent_is_taken_once(store: Any) -> None:
    chase = Chase("conn", "inv-1", Due(1, "ferme", 7), recipient="a@b.example", amount_due=Decimal("240.00"),
                  currency="EUR", due_date=DUE)
    rid = _intent(store, chase, at(DUE + timedelta(days=7)))
    assert rid == reminder_id("conn", "inv-1", 1)
    assert _intent(store, chase, at(DUE + timedelta(days=7))) is None  # a second process, a replayed run
    with store.unit() as u:  # the server answered 4xx: the step may be taken again, by one attempt
        row = u.session.get(DunningReminder, rid)
        assert row is not None and row.status == "sending"
        row.status = "retry"
    later = at(DUE + timedelta(days=8))
    assert _intent(store, chase, later) == rid and _intent(store, chase, later) is None


# -- sending over SMTP ------------------------------------------------------------------------------
@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    mail = MailCatcher().start()
    yield mail
    mail.stop()


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catcher: MailCatcher) -> Iterator[Service]:
    settings = offline_settings(tmp_path, monkeypatch, email={**catcher.email_settings(),
                                                              "reply_to": "compta@atelier-lumiere.example"},
                                dunning={"enabled": True})
    svc = Service.open(settings)
    svc._wirings["c"] = wiring(svc.store, tmp_path, FakeSource(), FakeLedger(), FakeRenderer())
    yield svc
    svc.close()


def source_of(service: Service) -> FakeSource:
    return service._wirings["c"].source  # type: ignore[return-value]


def put(service: Service, *invoices: Any) -> None:
    source_of(service).put(*invoices)
    with service.store.unit() as u:
        for invoice in invoices:
            u.put_snapshot(snapshot_of("c", invoice, 0))


def rows(service: Service) -> list[DunningReminder]:
    with service.store.session() as session:
        return list(session.exec(select(DunningReminder).order_by(DunningReminder.source_id, DunningReminder.step)))


def test_reminder_reaches_the_smtp_server_once(service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("inv-1"))
    run = run_dunning(service, now=at(DUE + timedelta(days=1)))
    assert [c.source_id for c in run.reports["c"].sent] == ["inv-1"]
    (msg,) = catcher.messages
    assert msg["rcpt_tos"] == ["compta@lefevre.example"] and msg["reply_to"] == "compta@atelier-lumiere.example"
    assert msg["subject"] == "Rappel : facture F-inv-1 arrivée à échéance le 02/11/2026"
    assert msg["message_id"] == f"<dunning.{reminder_id('c', 'inv-1', 0)}@atelier-lumiere.example>"
    parsed = BytesParser(policy=policy.default).parsebytes(catcher.raw[0])
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "240,00\u00a0€" in text
    assert "pénalités au taux de trois fois le taux d'intérêt légal" in text
    assert "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40,00\u00a0€" in text
    assert "la facture acquittée vous sera envoyée automatiquement" in text
    assert parsed["Auto-Submitted"] == "auto-generated"
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Atelier Lumière SAS" in html and "taux d&#39;intérêt légal" in html
    # the same day again, and a retried run: nothing more
    run_dunning(service, now=at(DUE + timedelta(days=1)) + timedelta(hours=3))
    run_dunning(service, now=at(DUE + timedelta(days=2)))
    assert len(catcher.messages) == 1
    (row,) = rows(service)
    assert row.status == "sent" and row.attempts == 1
    events = [e.kind for e in service.store.events(connection="c")]
    assert events.count("dunning_sent") == 1
    assert connection_status(service)["c"]["dunning"] == {"sent": 1}


@dataclass
class LoggingSource(FakeSource):
    """A CRM with the EmailLog capability; ``down`` refuses that many log writes."""

    logs: dict[str, SentEmail] = field(default_factory=dict)
    down: int = 0

    def log_email(self, ref: str, email: SentEmail, *, may_exist: bool) -> str:
        if may_exist and email.key in self.logs:
            return f"note-{email.key}"
        if self.down:
            self.down -= 1
            raise RetryableError("CRM unavailable")
        self.logs[email.key] = email
        return f"note-{email.key}"


def test_each_reminder_is_logged_on_the_crm_record_once(service: Service, catcher: MailCatcher) -> None:
    crm = LoggingSource(down=1)
    service._wirings["c"] = replace(service._wirings["c"], source=crm)
    put(service, unpaid("inv-1"))
    run_dunning(service, now=at(DUE + timedelta(days=1)))
    assert not crm.logs and rows(service)[0].crm_log_id is None  # the CRM refused: kept for the next run
    run_dunning(service, now=at(DUE + timedelta(days=2)))
    (email,) = crm.logs.values()
    assert email.key == f"dunning.{reminder_id('c', 'inv-1', 0)}" and email.to == "compta@lefevre.example"
    assert rows(service)[0].crm_log_id == f"note-{email.key}"
    run_dunning(service, now=at(DUE + timedelta(days=7)))
    assert len(crm.logs) == 2 and len(catcher.messages) == 2
    assert "Deuxième rappel" in [e.subject for e in crm.logs.values()][1]


def test_test_sends_go_to_redirect_to_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           catcher: MailCatcher) -> None:
    settings = offline_settings(tmp_path, monkeypatch, dunning={"enabled": True}, email={
        **catcher.email_settings(), "redirect_to": "me@atelier-lumiere.example", "bcc": ["expert@cabinet.example"]})
    svc = Service.open(settings)
    svc._wirings["c"] = wiring(svc.store, tmp_path, FakeSource(), FakeLedger(), FakeRenderer())
    put(svc, unpaid("inv-1"))
    run_dunning(svc, now=at(DUE + timedelta(days=1)))
    svc.close()
    (msg,) = catcher.messages
    assert msg["rcpt_tos"] == ["me@atelier-lumiere.example"]  # no Bcc copy in a test send
    assert msg["subject"].startswith("[test: compta@lefevre.example] Rappel : facture F-inv-1")


def test_private_customer_gets_no_professional_mentions(service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("p").model_copy(update={"customer": Party(name="Zoë Martin", kind="person",
                                                                    email="zoe@example.org")}))
    run_dunning(service, now=at(DUE + timedelta(days=1)))
    text = BytesParser(policy=policy.default).parsebytes(catcher.raw[0]).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Client non professionnel : pas d'indemnité forfaitaire" in text


def test_header_injection_in_crm_values_stays_in_the_body(service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("inj", number="F-1\nBcc: victim@evil.example <b>"))
    run_dunning(service, now=at(DUE + timedelta(days=1)))
    (msg,) = catcher.messages
    assert msg["rcpt_tos"] == ["compta@lefevre.example"]
    assert msg["subject"].startswith("Rappel : facture F-1 Bcc: victim@evil.example <b> arrivée")
    assert b"\nBcc:" not in catcher.raw[0]
    html = BytesParser(policy=policy.default).parsebytes(catcher.raw[0]).get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;b&gt;" in html and "<b>" not in html


def test_transient_smtp_error_is_retried_next_run_and_sent_once(service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("inv-1"))
    catcher.script = [Reply("data", 451, "4.3.0 Try again later")]
    run = run_dunning(service, now=at(DUE + timedelta(days=1)))
    assert run.reports["c"].retry and not catcher.messages
    assert rows(service)[0].status == "retry"
    run_dunning(service, now=at(DUE + timedelta(days=1)) + timedelta(hours=1))
    run_dunning(service, now=at(DUE + timedelta(days=2)))
    assert len(catcher.messages) == 1
    (row,) = rows(service)
    assert row.status == "sent" and row.attempts == 2


def test_smtp_server_down_sends_everything_once_when_back(service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("a"), unpaid("b"))
    catcher.stop()
    run = run_dunning(service, now=at(DUE + timedelta(days=1)))
    assert len(run.reports["c"].retry) == 2
    catcher.start()
    run_dunning(service, now=at(DUE + timedelta(days=1)) + timedelta(hours=1))
    assert sorted(m["rcpt_tos"][0] for m in catcher.messages) == ["compta@lefevre.example"] * 2
    assert [r.status for r in rows(service)] == ["sent", "sent"]


def test_permanent_rejection_stops_that_step_only(service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("a"), unpaid("b"))
    catcher.script = [Reply("rcpt", 550, "5.1.1 No such user")]
    run = run_dunning(service, now=at(DUE + timedelta(days=1)))
    assert len(run.reports["c"].failed) == 1 and len(run.reports["c"].sent) == 1
    run_dunning(service, now=at(DUE + timedelta(days=2)))
    assert len(catcher.messages) == 1
    failed = [r for r in rows(service) if r.status == "failed"]
    assert failed and "550 5.1.1 No such user" in (failed[0].last_error or "")


def test_a_crash_after_the_intent_never_sends_that_step_twice(service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("inv-1"))
    # a run killed after committing its intent, before the SMTP answer was recorded
    with service.store.unit() as u:
        u.session.add(DunningReminder(id=reminder_id("c", "inv-1", 0), connection="c", source_id="inv-1", step=0,
                                      template="courtois", status="sending", amount_due="240.00", currency="EUR",
                                      due_date=DUE, attempts=1, created_at=at(DUE + timedelta(days=1)),
                                      updated_at=at(DUE + timedelta(days=1)) - timedelta(hours=1)))
    run = run_dunning(service, now=at(DUE + timedelta(days=1)))
    assert run.interrupted == 1 and not catcher.messages
    assert rows(service)[0].status == "unknown"
    run_dunning(service, now=at(DUE + timedelta(days=7)))  # the next step still comes
    assert [m["subject"].split(":")[0] for m in catcher.messages] == ["Deuxième rappel "]


def test_killed_after_the_server_took_it_the_step_is_not_sent_again(service: Service, catcher: MailCatcher,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    put(service, unpaid("inv-1"))
    real_send = Mailer.send

    def send_then_die(self: Mailer, *args: Any, **kwargs: Any) -> Any:
        real_send(self, *args, **kwargs)  # the server has the message...
        raise SystemExit(137)  # ...and the process dies before recording it

    monkeypatch.setattr(Mailer, "send", send_then_die)
    with pytest.raises(SystemExit):
        run_dunning(service, now=at(DUE + timedelta(days=1)))
    monkeypatch.setattr(Mailer, "send", real_send)
    assert len(catcher.messages) == 1 and rows(service)[0].status == "sending"
    run_dunning(service, now=at(DUE + timedelta(days=1)) + timedelta(hours=2))  # restarted at once
    assert len(catcher.messages) == 1
    with service.store.unit() as u:  # a quarter of an hour later the step reads unknown
        row = u.session.get(DunningReminder, reminder_id("c", "inv-1", 0))
        assert row is not None
        row.updated_at -= timedelta(minutes=16)
    assert run_dunning(service, now=at(DUE + timedelta(days=2))).interrupted == 1
    assert len(catcher.messages) == 1 and rows(service)[0].status == "unknown"


def test_a_month_of_daily_runs_sends_each_step_once_and_none_after_payment(
        service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("paid-later"), unpaid("never-paid"))
    day = DUE
    while day <= DUE + timedelta(days=35):
        if day == DUE + timedelta(days=20):  # paid on day 20: a sync records it
            put(service, build_invoice("paid-later", number="F-paid-later", due_date=DUE))
        run_dunning(service, now=at(day))
        day += timedelta(days=1)
    sent = [(r.source_id, r.step, r.sent_at.date() if r.sent_at else None) for r in rows(service)]
    # weekends and 11 November pushed steps to the next working day
    assert sent == [
        ("never-paid", 0, date(2026, 11, 3)), ("never-paid", 1, date(2026, 11, 9)),
        ("never-paid", 2, date(2026, 11, 17)), ("never-paid", 3, date(2026, 12, 2)),
        ("paid-later", 0, date(2026, 11, 3)), ("paid-later", 1, date(2026, 11, 9)),
        ("paid-later", 2, date(2026, 11, 17)),
    ]
    assert len(catcher.messages) == 7


def test_day_off_sends_nothing(service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("inv-1"))
    run = run_dunning(service, now=at(date(2026, 11, 7)))  # a Saturday
    assert run.day_off == "weekend" and not catcher.messages and not rows(service)


def test_dry_run_writes_and_sends_nothing(service: Service, catcher: MailCatcher) -> None:
    put(service, unpaid("inv-1"))
    run = run_dunning(service, dry_run=True, now=at(DUE + timedelta(days=1)))
    assert [c.source_id for c in run.plans["c"]] == ["inv-1"] and not run.reports
    assert not catcher.messages and not rows(service)
    assert not [e for e in service.store.events(connection="c") if e.kind.startswith("dunning")]


# -- the command line -------------------------------------------------------------------------------
def test_dunning_command_lists_then_sends(service: Service, catcher: MailCatcher, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    put(service, unpaid("inv-1"), unpaid("no-mail", email=""))
    monkeypatch.setattr(Service, "open", classmethod(lambda cls, settings: service))
    monkeypatch.setattr(service, "close", lambda: None)
    today = at(DUE + timedelta(days=1))
    clock = type("Clock", (), {"now": staticmethod(lambda tz: today)})
    monkeypatch.setattr("pouracquit.core.dunning.run.datetime", clock)
    assert dunning_command(service.settings, dry_run=True) == 0
    out = capsys.readouterr().out
    assert "F-inv-1" in out and "1/4 courtois" in out and "compta@lefevre.example" in out
    assert "not chased: c F-no-mail: customer has no e-mail address" in out
    assert "dry run: 1 reminder(s) would be sent, nothing written" in out and not catcher.messages
    assert dunning_command(service.settings, dry_run=False) == 0
    assert "reminders sent: 1" in capsys.readouterr().out and len(catcher.messages) == 1


def test_dunning_off_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    settings = offline_settings(tmp_path, monkeypatch)
    config = tmp_path / "pouracquit.toml"
    config.write_text(dumps(settings.model_dump(mode="json", exclude_defaults=True, by_alias=True)))
    assert main(["dunning", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("dunning.enabled is false: set it to true to send reminders (--dry-run lists them)")
    assert "\n" not in err


def test_pouracquit_run_schedules_dunning_daily_at_its_hour_in_paris(service: Service) -> None:
    idle = {"c": SimpleNamespace(sync=lambda: None, drain=lambda: None, lock=threading.Lock())}
    job = build_scheduler(service, idle).get_job("dunning")  # type: ignore[arg-type]
    after = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 10:00 in Paris: today's run has passed
    assert job.trigger.get_next_fire_time(None, after) == datetime(2026, 12, 1, 9, 0, tzinfo=PARIS)
    off = service.settings.model_copy(update={"dunning": DunningSettings()})
    assert build_scheduler(Service(settings=off, store=service.store), idle).get_job("dunning") is None  # type: ignore[arg-type]
