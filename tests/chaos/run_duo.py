"""Two ``pouracquit run`` processes on one PostgreSQL store, killed at random.

Both processes serve the same connection against the same in-process HubSpot
and QuickBooks sandboxes and share the data directory (its archive) and one
PostgreSQL database made for the run. Leases are short (``--lease-seconds``,
3 s by default), so a killed worker's receipts are taken up by the other one
within seconds, while it still runs. Every kill picks one of the two at
random, SIGKILLs it a random moment after it answers ``/healthz`` or after it
is seen holding a receipt at a vendor step, and restarts it at once, so the
two are usually both working. After the last kill both run undisturbed until
nothing is pending, then get SIGTERM. ``tally.tally`` counts duplicates,
losses and gaps over everything both wrote, and ``run_chaos.check`` asserts
the exactly-once invariants (exit status 1 when one is broken).

By hand (the acceptance size of issue 10: >= 200 paid invoices, >= 20 kills)::

    .venv/bin/python tests/chaos/run_duo.py --invoices 340 --kills 24 --seed 2040 --pace --json duo.json

PostgreSQL: ``$POURACQUIT_TEST_PG`` (default postgresql://postgres@127.0.0.1:5432/test) is the
administrative URL the run creates its throwaway database from (dropped at the end unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``chaos.run_chaos`` importable as under pytest
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.run_chaos import (
    FAULT_CLIENT_TIMEOUT,
    FAULTS,
    KILL_DELAY,
    ChaosRig,
    KillRecord,
    check,
    fetch,
    free_port,
    seed_from_env,
    tail,
    wait_until,
)
from chaos.tally import tally
from cryptography.fernet import Fernet
from support import fresh_database

from pouracquit.app.toml_out import dumps
from pouracquit.connectors.quickbooks.session import TOKEN_NAME
from pouracquit.sandbox.quickbooks.emulator import DEMO_CLIENT_ID
from pouracquit.state.credentials import CredentialStore
from pouracquit.state.store import Store

PG_ADMIN_URL = os.environ.get("POURACQUIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SLOTS = ("a", "b")
PACE_WAIT = 20.0
RECONNECT_GRACE = 20.0
# log events that show the two processes meeting: a worker that lost a lease
# stops before its next vendor write; a sync or drain job that crashed says why
WATCHED_EVENTS = ("lease lost", "lease lost: another worker goes on with this receipt", "lease renewal failed, "
                  "will try again", "sync job crashed", "drain job crashed", "batch booking failed, receipts go "
                  "one by one", "receipt will retry", "unexpected error, will retry",
                  "ledger unusable, receipt waits for it",
                  "CRM attach ahead of the ledger failed, it comes in its turn")


def throwaway_database(keep: bool = False) -> AbstractContextManager[str]:
    """A fresh PostgreSQL database (like tests/conftest.py's pg_url), dropped afterwards."""
    return fresh_database(PG_ADMIN_URL, "pouracquit_chaos", keep=keep)


class DuoRig(ChaosRig):
    """Two service processes ("a" and "b"), each with its own admin port and
    config file, on one PostgreSQL store and one data directory."""

    def __init__(self, root: Path, *, store_url: str, invoices: int, seed: int, time_factor: float,
                 lease_seconds: float, workers: int, client_timeout: float | None = None) -> None:
        self.ports = {slot: free_port() for slot in SLOTS}
        self.procs: dict[str, Any] = dict.fromkeys(SLOTS)
        self.reconnections: list[str] = []  # when each grant the operator renewed was lost
        super().__init__(root, invoices=invoices, seed=seed, time_factor=time_factor,
                         client_timeout=client_timeout, lease_seconds=lease_seconds, store_url=store_url)
        self.config_data["pipeline"]["workers"] = workers
        self.write_config()

    def config_of(self, slot: str) -> Path:
        return self.root / f"pouracquit-{slot}.toml"

    def base_of(self, slot: str) -> str:
        return f"http://127.0.0.1:{self.ports[slot]}"

    def write_config(self) -> None:
        super().write_config()  # the one ``check`` runs ``archive verify`` with
        for slot in SLOTS:
            data = {**self.config_data, "admin": {"bind": f"127.0.0.1:{self.ports[slot]}"}}
            self.config_of(slot).write_text(dumps(data), encoding="utf-8")

    def spawn_slot(self, slot: str) -> Any:
        log = self.root / f"service-{slot}-{len(self.logs):03d}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            proc = subprocess_popen(self.config_of(slot), out)
        self.procs[slot] = proc
        return proc

    def wait_slot(self, slot: str, timeout: float = 90.0) -> None:
        proc, log = self.procs[slot], self.log_of(slot)

        def alive() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"service {slot} exited with {proc.returncode}:\n{tail(log)}")
            try:
                return fetch(self.base_of(slot) + "/healthz", timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(alive, timeout, f"service {slot}'s /healthz")

    def log_of(self, slot: str) -> Path:
        return next(p for p in reversed(self.logs) if p.name.startswith(f"service-{slot}-"))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        super().stop()

    def kill_one(self, life: int, slot: str) -> KillRecord:
        """Let ``slot`` work a random moment, SIGKILL it, note what it held, restart it."""
        self.wait_slot(slot)
        proc = self.procs[slot]
        before = self.open_intents()
        anchor = "ready"
        if self.rng.random() < 0.5:
            anchor = "vendor"
            try:
                wait_until(lambda: self.vendor_work_started(proc.pid) or self.all_done(), 30, "vendor work",
                           step=0.02)
            except AssertionError:
                anchor = "vendor-timeout"  # the other process holds the vendor work: kill anyway
        delay = self.rng.uniform(*KILL_DELAY)
        time.sleep(delay)
        if proc.poll() is not None:
            raise AssertionError(f"service {slot} died on its own ({proc.returncode}):\n{tail(self.log_of(slot))}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        leased, intents, staged = self.in_flight(before, proc.pid)
        record = KillRecord(life=life, anchor=f"{slot}:{anchor}", delay=round(delay, 3), pid=proc.pid,
                            done_before=self.counts().get("done", 0), leased=leased, intents=intents,
                            staged_unarchived=staged)
        self.spawn_slot(slot)
        return record

    def reconnect_if_lost(self, grace: float = RECONNECT_GRACE) -> bool:
        """Do what the operator does when the QuickBooks grant is lost for good
        (``pouracquit connect quickbooks``): a SIGKILL between Intuit rotating
        the refresh token and the service storing the new one leaves only the
        retired one (docs/reliability.md, operational notes). A disconnection
        two processes cause by refreshing at once heals by itself within a
        second, so only one that outlasts ``grace`` is acted on. The sandbox
        issues a new refresh token; it is stored as ``connect`` would."""
        last = self.rows("SELECT kind, at FROM event_log WHERE kind IN ('connection_disconnected', "
                         "'connection_reconnected') ORDER BY seq DESC LIMIT 1")
        if not last or last[0][0] != "connection_disconnected":
            return False
        since = last[0][1] if isinstance(last[0][1], datetime) else datetime.fromisoformat(str(last[0][1]))
        if datetime.now(UTC).replace(tzinfo=None) - since.replace(tzinfo=None) < timedelta(seconds=grace):
            return False
        token = f"RT-operator-{uuid.uuid4().hex}"
        self.ledger.issuer.add_refresh_token(token, DEMO_CLIENT_ID, "com.intuit.quickbooks.accounting")
        key = Path(self.config_data["store"]["encryption_key"]["file"]).read_text(encoding="utf-8").strip()
        assert self._engine is not None
        CredentialStore(Store(self._engine), "demo", lambda: Fernet(key.encode())).put(TOKEN_NAME, token)
        self.reconnections.append(since.isoformat(timespec="seconds"))
        return True

    def settle_both(self, timeout: float, expected_done: int) -> dict[str, float]:
        """Both run undisturbed until every paid invoice is done; then SIGTERM
        each; returns how long each took to exit."""
        for slot in SLOTS:
            self.wait_slot(slot)

        def settled() -> bool:
            self.reconnect_if_lost()
            for slot, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"service {slot} died with {proc.returncode}:\n{tail(self.log_of(slot))}")
            try:
                code, body = fetch(self.base_of("a") + "/status", timeout=15)
            except OSError:
                return False  # a loaded machine: ask again
            receipts = json.loads(body)["demo"]["receipts"] if code == 200 else {}
            if receipts.get("failed") or receipts.get("quarantined"):
                raise AssertionError(f"receipts stopped: {body[:3000]}")
            return bool(receipts) and not receipts.get("pending") and receipts.get("done", 0) >= expected_done

        try:
            wait_until(settled, timeout, f"{expected_done} receipts done", step=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nstatus: {fetch(self.base_of('a') + '/status')[1][:3000]}") from None
        took: dict[str, float] = {}
        for slot, proc in self.procs.items():
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=15)
            took[slot] = round(time.monotonic() - started, 2)
            assert code == 0, f"service {slot}: SIGTERM exit code {code}:\n{tail(self.log_of(slot))}"
        return took

    def log_events(self) -> Counter[str]:
        """How often each WATCHED_EVENTS line appears over every life's log."""
        seen: Counter[str] = Counter()
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                try:
                    event = json.loads(line).get("event")
                except ValueError:
                    continue  # a line cut by SIGKILL
                if event in WATCHED_EVENTS:
                    seen[event] += 1
        return seen


def subprocess_popen(config: Path, out: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pouracquit.app.cli", "run", "--config", str(config)],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


@dataclass
class DuoReport:
    seed: int
    invoices: int
    paid: int
    lease_seconds: float
    workers: int
    faults: bool
    kills: list[KillRecord] = field(default_factory=list)
    findings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        by_slot = Counter(k.anchor.split(":", 1)[0] for k in self.kills)
        return {
            "seed": self.seed, "invoices": self.invoices, "paid": self.paid, "lease_seconds": self.lease_seconds,
            "workers_per_process": self.workers, "faults": self.faults, "kills": len(self.kills),
            "kills_per_process": dict(sorted(by_slot.items())),
            "kills_mid_receipt": sum(1 for k in self.kills if k.leased or k.intents),
            "kills_mid_vendor_write": sum(1 for k in self.kills if k.intents),
            "kills_while_work_pending": sum(1 for k in self.kills if k.done_before < self.paid),
            "intents_at_kill": dict(Counter(i for k in self.kills for i in k.intents)),
            **self.findings, "seconds": round(self.seconds, 1),
        }


def run_duo(root: Path, store_url: str, *, invoices: int, kills: int, seed: int, lease_seconds: float = 3.0,
            workers: int = 2, time_factor: float = 0.05, faults: bool = False, settle_seconds: float = 900,
            pace: bool = False, echo: Callable[[str], None] = print) -> DuoReport:
    """Two processes, ``kills`` SIGKILLs spread over them, then the invariants.

    ``pace``: kill number i waits (up to PACE_WAIT seconds) until i/(kills+1) of
    the paid invoices are done, so the kills spread over the whole run (intake,
    rendering, the batch bookings, the attachments) instead of all landing in
    the first minute, while every process is still rendering."""
    echo(f"chaos duo: invoices={invoices} kills={kills} seed={seed} lease_seconds={lease_seconds} "
         f"workers={workers} faults={faults} store={store_url}")
    started = time.monotonic()
    rig = DuoRig(root, store_url=store_url, invoices=invoices, seed=seed, time_factor=time_factor,
                 lease_seconds=lease_seconds, workers=workers,
                 client_timeout=FAULT_CLIENT_TIMEOUT if faults else None)
    picker = random.Random(seed + 1)  # which process dies: its own stream, so the delays replay alike
    try:
        paid = rig.paid_ids()
        report = DuoReport(seed=seed, invoices=invoices, paid=len(paid), lease_seconds=lease_seconds,
                           workers=workers, faults=faults)
        if faults:
            rig.set_faults(FAULTS)
        for slot in SLOTS:
            rig.spawn_slot(slot)
        for life in range(kills):
            if pace:
                goal = len(paid) * life // (kills + 1)
                try:
                    wait_until(lambda goal=goal: rig.counts().get("done", 0) >= goal, PACE_WAIT, f"{goal} done",
                               step=0.5)
                except AssertionError:
                    pass  # slower than paced: kill anyway, the run must not stall
            rig.reconnect_if_lost()
            record = rig.kill_one(life, picker.choice(SLOTS))
            report.kills.append(record)
            echo(f"  kill {life + 1}/{kills}: {record.anchor}+{record.delay:.2f}s pid={record.pid} "
                 f"done={record.done_before}/{len(paid)} leased={record.leased} "
                 f"intents={dict(Counter(record.intents))} staged={record.staged_unarchived}")
        report.findings["sigterm_seconds"] = rig.settle_both(settle_seconds, len(paid))
        if faults:
            rig.set_faults({})
            report.findings["faults_injected"] = {vendor: dict(t.by_kind) for vendor, t in rig.tallies.items()}
        report.findings["operator_reconnections"] = rig.reconnections
        report.findings["log_events"] = dict(rig.log_events())
        report.findings["service_retries_logged"] = dict(rig.service_retries())
        books, crm = rig.ledger.dump_state(), rig.source.dump_state()
        for name, state in (("quickbooks", books), ("hubspot", crm)):  # to look into after the run
            (root / f"sandbox-{name}.json").write_text(json.dumps(state, default=str), encoding="utf-8")
        report.findings["tally"] = tally(rig, books, crm)
        try:
            report.findings.update(check(rig))
        except AssertionError as exc:  # the tally above says how much; this says what broke first
            report.findings["check_failed"] = str(exc)[:2000]
        report.seconds = time.monotonic() - started
        echo(json.dumps(report.summary(), indent=1, default=str))
        return report
    finally:
        rig.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--invoices", type=int, default=340, help="seeded in the CRM; about 60 %% end up paid")
    p.add_argument("--kills", type=int, default=24, help="SIGKILLs, spread at random over the two processes")
    p.add_argument("--seed", type=int, default=None, help="default $POURACQUIT_CHAOS_SEED or random")
    p.add_argument("--lease-seconds", type=float, default=3.0)
    p.add_argument("--workers", type=int, default=2, help="pipeline.workers of each process")
    p.add_argument("--time-factor", type=float, default=0.05, help="vendor time windows scaled by this")
    p.add_argument("--faults", action="store_true", help="also inject the fault mix of run_chaos.FAULTS")
    p.add_argument("--pace", action="store_true", help="spread the kills over the run's progress (see run_duo)")
    p.add_argument("--settle", type=float, default=900, help="deadline (s) of the undisturbed final run")
    p.add_argument("--keep", action="store_true", help="keep the data directory and the database")
    p.add_argument("--json", help="write the report to this file")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else seed_from_env()
    root = Path(tempfile.mkdtemp(prefix="chaos-duo-"))
    with throwaway_database(keep=args.keep) as url:
        try:
            report = run_duo(root, url, invoices=args.invoices, kills=args.kills, seed=seed,
                             lease_seconds=args.lease_seconds, workers=args.workers, time_factor=args.time_factor,
                             faults=args.faults, settle_seconds=args.settle, pace=args.pace)
        finally:
            print(f"data directory {root}" + (f", database {url}" if args.keep else ""), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report.summary(), indent=1, default=str), encoding="utf-8")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if "check_failed" in report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
