"""Dunning over the HubSpot sandbox and the mail catcher, a simulated month (clock
injected): each overdue invoice gets each step of the ladder once, on working days,
and nothing more after it is paid in the CRM; the paid one then gets its receipt."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from e2e.conftest import Rig

from pouracquit.core.dunning.plan import open_snapshots
from pouracquit.core.dunning.run import run_dunning
from pouracquit.core.dunning.send import reminder_id

DUE = date(2026, 11, 2)  # a Monday


def test_a_month_of_dunning_on_the_sandbox(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(count=6)
    mail = rig.launched.mail
    assert mail is not None
    rig.config["email"] = mail.email_settings()
    rig.config["dunning"] = {"enabled": True}
    service = rig.service()
    rig.sync_until_settled(service)
    overdue = open_snapshots(service.store, "demo")  # unpaid, or paid in part
    assert len(overdue) >= 2, "the demo set has open invoices"
    for snap in overdue:  # all due on one Monday, as a sync then sees them
        rig.source.touch(snap.source_id, {"hs_due_date": f"{DUE.isoformat()}T00:00:00.000Z"})  # type: ignore[attr-defined]
    rig.sync_until_settled(service)
    receipts_mailed = len(mail.messages)
    payer = overdue[0]
    day = DUE
    while day <= DUE + timedelta(days=35):
        if day == DUE + timedelta(days=20):  # paid in the CRM, as a person would mark it
            billed = rig.source.dump_state()["invoices"]  # type: ignore[attr-defined]
            total = next(r["properties"]["hs_amount_billed"] for r in billed if r["id"] == payer.source_id)
            rig.source.touch(payer.source_id, {  # type: ignore[attr-defined]
                "hs_invoice_status": "paid", "hs_amount_paid": total, "hs_balance_due": "0.00",
                "hs_payment_date": f"{day.isoformat()}T00:00:00.000Z", "pouracquit_payment_method": "transfer",
                "pouracquit_payment_reference": "VIR-DUNNING"})
            rig.sync_until_settled(service)
        run_dunning(service, now=datetime(day.year, day.month, day.day, 8, tzinfo=UTC))
        day += timedelta(days=1)
    ids = {f"<dunning.{reminder_id('demo', s.source_id, step)}@atelier-lumiere.example>": (s.source_id, step)
           for s in overdue for step in range(4)}
    reminders = [m for m in mail.messages if m["message_id"].startswith("<dunning.")]
    sent = Counter(ids[m["message_id"]] for m in reminders)
    assert set(sent.values()) == {1}  # never one step twice
    for snap in overdue:
        steps = sorted(step for sid, step in sent if sid == snap.source_id)
        # J+1, J+7, J+15 before the payment on J+20; J+30 too for the others
        assert steps == ([0, 1, 2] if snap is payer else [0, 1, 2, 3]), (snap.source_id, steps)
    # each reminder is logged once on its HubSpot invoice, as a note carrying its key
    notes = [n["properties"]["hs_note_body"] for n in rig.source.dump_state()["notes"]]  # type: ignore[attr-defined]
    assert sorted(m["message_id"] for m in reminders) == sorted(
        line.removeprefix("Message-ID : ") for body in notes for line in body.splitlines()
        if line.startswith("Message-ID : <dunning."))
    # the payer's receipt went out after its payment, through the same mail server
    assert len(mail.messages) - len(reminders) == receipts_mailed + 1
    paid = [r for r in service.store.receipts("demo", "done") if r.source_id == payer.source_id]
    assert paid and paid[0].amount == payer.gross_total and paid[0].email_status == "sent"

