"""The chaos rig: the real service, killed with SIGKILL at random moments.

The HubSpot and QuickBooks sandboxes run in this process; ``pouracquit run``
runs as a subprocess against them and is killed (SIGKILL) a random 0.05 to
1.5 s after its admin API answers, then restarted, over and over. At the end
it runs undisturbed until no receipt is pending and is stopped with SIGTERM.
Then the sandboxes' state, the archive directory and the state store are
checked for the exactly-once invariants (see ``check``).

Used by ``test_chaos.py`` (small size, CI) and runnable by hand for the
large size::

    .venv/bin/python tests/chaos/run_chaos.py --size large            # both phases
    .venv/bin/python tests/chaos/run_chaos.py --size large --phase faults --seed 1234

Two processes side by side on one PostgreSQL store: ``run_duo.py``. The rig
itself is in ``rig.py``, sizes and helpers in ``common.py``; this module holds
the invariants (``check``) and the phases.

Sizes come from ``SIZES`` and can be overridden by environment variables:
``POURACQUIT_CHAOS`` (small|large), ``POURACQUIT_CHAOS_INVOICES``,
``POURACQUIT_CHAOS_KILLS``, ``POURACQUIT_CHAOS_SEED``, ``POURACQUIT_CHAOS_TIME_FACTOR``.
The seed drives the kill delays, the demo data and the sandboxes' fault
rolls, so a failing run can be replayed (process scheduling still varies).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``chaos.*`` importable as under pytest
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.common import (
    ALLOCATED,
    FAULT_CLIENT_TIMEOUT,
    FAULTS,
    KILL_DELAY,
    SIZES,
    Size,
    cli,
    fetch,
    free_port,
    seed_from_env,
    size_from_env,
    tail,
    wait_until,
)
from chaos.rig import ChaosReport, ChaosRig, KillRecord

# what the other chaos modules and tests import from here
__all__ = ["ALLOCATED", "FAULTS", "FAULT_CLIENT_TIMEOUT", "KILL_DELAY", "ChaosReport", "ChaosRig", "KillRecord",
           "check", "cli", "fetch", "free_port", "run_phase", "seed_from_env", "size_from_env", "tail", "wait_until"]

# ---------------------------------------------------------------------------
# the invariants


def check(rig: ChaosRig) -> dict[str, Any]:
    """Assert the exactly-once invariants; returns what was measured."""
    paid = rig.paid_ids()
    receipts = rig.rows("SELECT id, source_id, status, number, ledger_id, document_sha256, crm_attachment_id, "
                        "ledger_attachment_id, step, intent, staged_path FROM receipt")
    by_status = Counter(r[2] for r in receipts)
    assert by_status == Counter({"done": len(paid)}), f"receipts by status {dict(by_status)}, paid {len(paid)}"
    done = {r[1]: r for r in receipts}
    assert set(done) == paid, f"receipts for {sorted(set(done) ^ paid)[:10]} differ from the paid invoices"
    numbers = {r[1]: r[3] for r in receipts}

    # ledger: one SalesReceipt per paid invoice (by DocNumber), one Attachable per SalesReceipt
    books = rig.ledger.dump_state()
    by_doc = Counter(sr["DocNumber"] for sr in books.get("SalesReceipts", []))
    duplicates = {n: c for n, c in by_doc.items() if c > 1}
    assert not duplicates, f"SalesReceipts booked more than once: {duplicates}"
    assert set(by_doc) == set(numbers.values()), f"DocNumbers differ: {sorted(set(by_doc) ^ set(numbers.values()))}"
    ids = {sr["Id"] for sr in books.get("SalesReceipts", [])}
    att = Counter(link["EntityRef"]["value"] for a in books.get("Attachables", [])
                  for link in a.get("AttachableRef", []))
    assert att == Counter({i: 1 for i in ids}), f"Attachables per SalesReceipt: {dict(att)}"
    assert {r[4] for r in receipts} == ids
    customers = Counter(c["DisplayName"] for c in books.get("Customers", []))

    # CRM: one note and one file per paid invoice
    crm = rig.source.dump_state()
    notes = Counter(ref for note in crm["notes"] for ref in note.get("associations", {}).get("invoices", []))
    assert notes == Counter({sid: 1 for sid in paid}), f"notes per invoice: {dict(notes)}"
    files = [f for f in crm["files"] if not f.get("archived")]
    file_names = Counter(f.get("name") for f in files)
    assert len(files) == len(paid) and all(n == 1 for n in file_names.values()), f"files: {dict(file_names)}"

    # archive: one PDF per receipt; staging leftovers only for receipts not past archive
    pdfs = sorted(rig.archive.glob("??/??/*.pdf"))
    assert len(pdfs) == len(paid), f"{len(pdfs)} archived PDFs for {len(paid)} receipts"
    assert {p.stem for p in pdfs} == {r[5] for r in receipts}
    # A staged PDF may only belong to a receipt not past archive (none, here: all
    # are done). Half-written ".<name>.<pid>.tmp" files of a killed atomic write
    # are reported, not failed: nothing refers to them (see docs/reliability.md).
    staged = sorted((rig.archive / "staging").glob("*.pdf"))
    tmp_leftovers = sorted(str(p.relative_to(rig.archive)) for p in rig.archive.rglob(".*.tmp"))
    archived = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.pdf")
    others = sorted(name for p in rig.archive.rglob("*") if p.is_file() and p.suffix != ".tmp"
                    and not archived.fullmatch(name := str(p.relative_to(rig.archive))))
    assert not staged, f"staged PDFs left for finished receipts: {[p.name for p in staged]}"
    assert not others, f"unexpected files in the archive: {others}"
    documents = rig.rows("SELECT sha256, receipt_id FROM document")
    assert len(documents) == len(paid) and len({d[1] for d in documents}) == len(paid)

    # numbering: what pouracquit allocated is 1..N with no gap and no repeat
    allocated = sorted(int(m.group(1)) for n in numbers.values() if n and (m := ALLOCATED.match(n)))
    assert allocated == list(range(1, len(allocated) + 1)), f"allocated numbers {allocated}"
    series = rig.rows("SELECT series, last FROM number_series")
    assert [last for _, last in series] == ([len(allocated)] if allocated else []), series
    events = rig.rows("SELECT data FROM event_log WHERE kind = 'number'")
    numbered = Counter(json.loads(d)["number"] for (d,) in events)
    assert all(c == 1 for c in numbered.values()) and len(numbered) == len(paid), "a number event repeats"

    # the audit chain and every archived document verify
    verify = cli(rig.config, "archive", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not any(r[9] for r in receipts), "an intent is left on a finished receipt"
    return {
        "receipts_done": len(done), "duplicates_in_ledger": len(duplicates), "receipts_lost": len(paid - set(done)),
        "salesreceipts": sum(by_doc.values()), "attachables": sum(att.values()), "crm_notes": sum(notes.values()),
        "crm_files": len(files), "archived_pdfs": len(pdfs), "allocated_numbers": len(allocated),
        "staging_leftovers": len(staged), "archive_tmp_leftovers": tmp_leftovers,
        "duplicate_customer_names": {n: c for n, c in customers.items() if c > 1},
        "archive_verify": verify.stdout.strip().splitlines()[-1],
        "requestid_replays": rig.ledger.call_counts()["requestid_replays"],
    }


# ---------------------------------------------------------------------------
# one phase


def run_phase(root: Path, *, phase: str, size_name: str, size: Size, seed: int,
              echo: Callable[[str], None] = print) -> ChaosReport:
    """Kill the service ``size.kills`` times, let it finish, check the invariants."""
    faulty = phase == "faults"
    echo(f"chaos {phase}: size={size_name} invoices={size.invoices} kills={size.kills} seed={seed} "
         f"(replay: POURACQUIT_CHAOS={size_name} POURACQUIT_CHAOS_SEED={seed})")
    started = time.monotonic()
    rig = ChaosRig(root, invoices=size.invoices, seed=seed, time_factor=size.time_factor,
                   client_timeout=FAULT_CLIENT_TIMEOUT if faulty else None)
    try:
        paid = rig.paid_ids()
        report = ChaosReport(phase=phase, seed=seed, size=size_name, invoices=size.invoices, paid=len(paid))
        if faulty:
            rig.set_faults(FAULTS)
        for life in range(size.kills):
            record = rig.kill(life)
            report.kills.append(record)
            echo(f"  {phase} kill {life + 1}/{size.kills}: {record.anchor}+{record.delay:.2f}s "
                 f"done={record.done_before} leased={record.leased} intents={dict(Counter(record.intents))} "
                 f"staged={record.staged_unarchived}")
        report.findings["sigterm_seconds"] = round(rig.settle(size.settle_seconds, len(paid)), 2)
        if faulty:
            rig.set_faults({})
        report.faults = {vendor: dict(t.by_kind) for vendor, t in rig.tallies.items()}
        report.fault_routes = {f"{vendor} {kind} {route}": n for vendor, t in rig.tallies.items()
                               for (kind, route), n in t.by_route.items()}
        report.service_errors = rig.service_retries()
        report.findings.update(check(rig))
        report.seconds = time.monotonic() - started
        echo(json.dumps(report.summary(), indent=1, default=str))
        return report
    finally:
        rig.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default=None, help="default $POURACQUIT_CHAOS or small")
    p.add_argument("--phase", choices=["clean", "faults", "both"], default="both")
    p.add_argument("--seed", type=int, default=None, help="default $POURACQUIT_CHAOS_SEED or random")
    p.add_argument("--json", help="write the reports to this file")
    args = p.parse_args(argv)
    size_name, size = size_from_env(args.size)
    seed = args.seed if args.seed is not None else seed_from_env()
    reports = []
    for phase in (("clean", "faults") if args.phase == "both" else (args.phase,)):
        with tempfile.TemporaryDirectory(prefix=f"chaos-{phase}-") as tmp:
            reports.append(run_phase(Path(tmp), phase=phase, size_name=size_name, size=size, seed=seed).summary())
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
