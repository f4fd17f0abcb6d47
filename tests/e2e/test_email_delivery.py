"""E-mail on payment over the sandboxes: every receipt reaches its buyer once, with
its Factur-X PDF, logged on the CRM; a second sync sends nothing; `receipts send`
sends one again on demand, recorded in the audit trail; /status counts them."""

from __future__ import annotations

from collections.abc import Callable

from e2e.conftest import Rig, get_json

from pouracquit.app.cli import main
from pouracquit.app.status import connection_status


def test_each_receipt_is_emailed_once_with_its_pdf_and_logged_on_the_crm(make_rig: Callable[..., Rig],
                                                                         capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(count=6)
    mail = rig.launched.mail
    assert mail is not None
    rig.config["email"] = {**mail.email_settings(), "bcc": ["comptable@cabinet.example"]}
    service = rig.service()
    rig.sync_until_settled(service)
    done = service.store.receipts("demo", "done")
    assert done and {r.email_status for r in done} == {"sent"}
    listed = get_json(f"{mail.url}/_sandbox/mail")
    assert listed["count"] == len(done)
    assert sorted(m["message_id"] for m in listed["messages"]) == sorted(r.email_message_id for r in done)
    for message in listed["messages"]:
        assert message["rcpt_tos"][1:] == ["comptable@cabinet.example"]
        (pdf,) = message["attachments"]
        assert pdf["type"] == "application/pdf" and pdf["size"] > 10_000
    notes = [n for n in rig.source.dump_state()["notes"] if "[pouracquit:" in n["properties"]["hs_note_body"]]
    assert len(notes) == len(done) and {r.email_log_id for r in done} == {n["id"] for n in notes}

    rig.sync_until_settled(service)  # a second sync sends nothing
    assert len(mail.messages) == len(done)

    config = rig.write_config()
    target = done[0]
    assert main(["receipts", "send", target.id[:10], "--to", "me@company.fr", "--config", str(config)]) == 0
    assert "e-mail sent to me@company.fr" in capsys.readouterr().out
    resent = mail.messages[-1]
    assert resent["rcpt_tos"][0] == "me@company.fr"
    assert resent["message_id"] == target.email_message_id.replace("@", ".r1@", 1)
    kinds = [e.kind for e in service.store.events(target.id)]
    assert kinds[-2:] == ["email_send_requested", "email_resent"]

    status = connection_status(service)["demo"]
    assert status["emails"] == {"sent": len(done)} and status["email_problems"] == []
