"""SIGKILL chaos through the e-mail step: every receipt e-mailed, duplicates only in
the window docs/delivery.md names.

The chaos rig (``rig.py``) with ``[email]`` pointed at the sandbox's mail catcher,
which answers DATA after ``--smtp-delay`` seconds (a relay scanning content) and
keeps only what it could acknowledge. Most lives are killed while the live process
holds a receipt at step ``email``, a random 0 to ``--kill-window`` seconds after it
is seen there; the others as the rig does. Then the service runs undisturbed until
every paid invoice is done, and the invariants are checked: the rig's own
(``run_chaos.check``, with the e-mail notes set aside from the attachment notes), and

* every receipt e-mailed (``email_status = 'sent'``, its Message-ID received);
* Message-IDs received more than once counted as duplicates, each with the kill
  that left its receipt at step ``email``: the window between the server's answer
  to DATA and the commit of the send;
* one e-mail note per receipt on the HubSpot invoice (looked up before written again).

    .venv/bin/python tests/chaos/run_email_chaos.py --invoices 170 --kills 12 --seed 2044
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.common import wait_until
from chaos.rig import ChaosRig
from chaos.run_chaos import check

MARKER = "[pouracquit:"


class EmailChaos(ChaosRig):
    def __init__(self, root: Path, *, smtp_delay: float, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        mail = self.launched.mail
        assert mail is not None
        mail.data_delay = smtp_delay
        self.mail = mail
        self.config_data["email"] = mail.email_settings()
        self.write_config()

    def at_email(self) -> list[str]:
        rows = self.rows("SELECT id FROM receipt WHERE status = 'pending' AND step = 'email' AND lease_owner LIKE ?",
                         self._owner())
        return [r for (r,) in rows]

    def kill_in_send(self, life: int, window: float) -> dict[str, Any]:
        self.spawn()
        self.wait_alive()
        anchor = "ready"
        if self.rng.random() < 0.8:
            anchor = "email"
            try:
                wait_until(lambda: bool(self.at_email()) or self.all_done(), 60, "the e-mail step", step=0.01)
            except AssertionError:
                anchor = "email-timeout"
        time.sleep(self.rng.uniform(0, window))
        proc = self.proc
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        left = [r for (r,) in self.rows("SELECT id FROM receipt WHERE status = 'pending' AND intent = 'email'")]
        return {"life": life, "anchor": anchor, "email_intents_left": left,
                "received": len(self.mail.messages), "done": self.counts().get("done", 0)}


def email_check(rig: EmailChaos, kills: list[dict[str, Any]]) -> dict[str, Any]:
    receipts = rig.rows("SELECT id, source_id, email_status, email_message_id, email_log_id FROM receipt")
    unsent = [r[0] for r in receipts if r[2] != "sent"]
    assert not unsent, f"receipts without an e-mail: {unsent[:10]}"
    received = Counter(m["message_id"] for m in rig.mail.messages)
    missing = [r[0] for r in receipts if received[r[3]] == 0]
    assert not missing, f"receipts whose Message-ID never arrived: {missing[:10]}"
    by_id = {r[3]: r[0] for r in receipts}
    assert set(received) == set(by_id), f"messages for no receipt: {sorted(set(received) - set(by_id))[:5]}"
    duplicated = {by_id[mid]: n for mid, n in received.items() if n > 1}
    in_window = {rid for k in kills for rid in k["email_intents_left"]}
    outside = sorted(set(duplicated) - in_window)
    assert not outside, f"duplicates of receipts no kill left at step email: {outside}"
    notes = Counter(ref for n in rig.source.dump_state()["notes"] if MARKER in n["properties"]["hs_note_body"]
                    for ref in n["associations"].get("invoices", []))
    assert notes == Counter({r[1]: 1 for r in receipts}), f"e-mail notes per invoice: {dict(notes)}"
    return {"receipts": len(receipts), "messages_received": sum(received.values()),
            "receipts_without_email": len(unsent), "duplicate_messages": sum(n - 1 for n in duplicated.values()),
            "duplicated_receipts": sorted(duplicated), "kills_leaving_an_email_intent": sum(
                1 for k in kills if k["email_intents_left"]), "email_notes": sum(notes.values())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--invoices", type=int, default=170)
    p.add_argument("--kills", type=int, default=12)
    p.add_argument("--seed", type=int, default=2044)
    p.add_argument("--smtp-delay", type=float, default=0.05)
    p.add_argument("--kill-window", type=float, default=0.3)
    p.add_argument("--json", help="write the report to this file")
    args = p.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chaos-email-") as tmp:
        rig = EmailChaos(Path(tmp), smtp_delay=args.smtp_delay, invoices=args.invoices, seed=args.seed,
                         time_factor=0.05)
        try:
            paid = rig.paid_ids()
            kills = []
            for life in range(args.kills):
                kills.append(rig.kill_in_send(life, args.kill_window))
                print(json.dumps(kills[-1]), flush=True)
            settle = rig.settle(900, len(paid))
            crm_state = rig.source.dump_state
            # the rig's invariant counts one note (the PDF's) per invoice: the e-mail notes are checked above
            rig.source.dump_state = lambda: {**(s := crm_state()), "notes": [  # type: ignore[method-assign]
                n for n in s["notes"] if MARKER not in n["properties"]["hs_note_body"]]}
            report = {"seed": args.seed, "invoices": args.invoices, "paid": len(paid), "kills": len(kills),
                      "smtp_delay": args.smtp_delay, "sigterm_seconds": round(settle, 2), **check(rig)}
            rig.source.dump_state = crm_state  # type: ignore[method-assign]
            report.update(email_check(rig, kills))
            report["seconds"] = round(time.monotonic() - started, 1)
        finally:
            rig.stop()
    print(json.dumps(report, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
