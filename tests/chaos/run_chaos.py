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

Two processes side by side on one PostgreSQL store: ``run_duo.py``.

Sizes come from ``SIZES`` and can be overridden by environment variables:
``POURACQUIT_CHAOS`` (small|large), ``POURACQUIT_CHAOS_INVOICES``,
``POURACQUIT_CHAOS_KILLS``, ``POURACQUIT_CHAOS_SEED``, ``POURACQUIT_CHAOS_TIME_FACTOR``.
The seed drives the kill delays, the demo data and the sandboxes' fault
rolls, so a failing run can be replayed (process scheduling still varies).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from pouracquit.core.toml_out import dumps
from pouracquit.sandbox.launch import DEMO_SELLER, Launched, launch, state_key
from pouracquit.sandbox.server import Request, Sandbox

# ---------------------------------------------------------------------------
# sizes


@dataclass(frozen=True)
class Size:
    invoices: int  # seeded in the CRM; about 60 % of them end up paid
    kills: int  # SIGKILLs per phase
    time_factor: float  # vendor time windows (rate limits, token lifetimes) scaled by this
    settle_seconds: float  # deadline for the undisturbed final run


SIZES = {
    # ~36 paid invoices and 8 kills per phase: both phases fit the CI budget on 2 cores
    "small": Size(invoices=60, kills=8, time_factor=0.05, settle_seconds=150),
    # >= 200 paid invoices and >= 20 kills per phase, by hand
    "large": Size(invoices=340, kills=22, time_factor=0.05, settle_seconds=600),
}

# The fault mix, for the second phase. Timed-out requests are held
# 2 s by the sandbox; the connectors' own HTTP timeout (FAULT_CLIENT_TIMEOUT)
# is shorter, so the client gives up first, as it would against a real vendor.
FAULTS = {"drop_rate": 0.05, "error_rate": 0.05, "rate_limit_rate": 0.05, "timeout_rate": 0.02,
          "timeout_seconds": 2.0}
FAULT_CLIENT_TIMEOUT = 1.0
KILL_DELAY = (0.05, 1.5)
ALLOCATED = re.compile(r"^2026-(\d{6})$")  # numbers pouracquit allocates (series prefix "2026-")


def size_from_env(name: str | None = None) -> tuple[str, Size]:
    name = name or os.environ.get("POURACQUIT_CHAOS", "small")
    if name not in SIZES:
        raise SystemExit(f"POURACQUIT_CHAOS must be one of {sorted(SIZES)}, not {name!r}")
    base = SIZES[name]
    env = os.environ.get
    return name, Size(
        invoices=int(env("POURACQUIT_CHAOS_INVOICES", base.invoices)),
        kills=int(env("POURACQUIT_CHAOS_KILLS", base.kills)),
        time_factor=float(env("POURACQUIT_CHAOS_TIME_FACTOR", base.time_factor)),
        settle_seconds=float(env("POURACQUIT_CHAOS_SETTLE", base.settle_seconds)),
    )


def seed_from_env() -> int:
    raw = os.environ.get("POURACQUIT_CHAOS_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(1, 2**31)


# ---------------------------------------------------------------------------
# small HTTP and process helpers (127.0.0.1 only)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post_json(url: str, body: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cli(config: Path, *args: str, timeout: float = 120, **popen: Any) -> subprocess.CompletedProcess[str]:
    """``pouracquit <args> --config <config>`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "pouracquit.core.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=timeout, **popen)


# ---------------------------------------------------------------------------
# the rig


class FaultTally:
    """Counts the faults a sandbox decides to inject, by kind and route.

    The sandboxes do not count their injected faults, so the rig wraps the
    instance's fault roll (the sandboxes live in this process): the counts
    are exact, not inferred from the service's logs, which die with it.
    """

    def __init__(self, box: Sandbox) -> None:
        self.by_kind: Counter[str] = Counter()
        self.by_route: Counter[tuple[str, str]] = Counter()
        roll = box._random_fault

        def counted(request: Request) -> str | None:
            kind = roll(request)
            if kind is not None:
                self.by_kind[kind] += 1
                self.by_route[(kind, f"{request.method} {_route_of(request.path)}")] += 1
            return kind

        box._random_fault = counted  # type: ignore[method-assign]


def _route_of(path: str) -> str:
    return re.sub(r"/\d+", "/{id}", path)


@dataclass
class KillRecord:
    life: int
    anchor: str  # what the delay counts from: "ready" (/healthz answered) or "vendor" (vendor work seen)
    delay: float
    pid: int
    done_before: int
    leased: int  # receipts the dead process held a lease on: it was working them
    intents: list[str]  # vendor steps this life started and did not record: the kill landed mid-write
    staged_unarchived: int  # rendered PDFs staged but not yet archived


@dataclass
class ChaosReport:
    phase: str
    seed: int
    size: str
    invoices: int
    paid: int
    kills: list[KillRecord] = field(default_factory=list)
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    fault_routes: dict[str, int] = field(default_factory=dict)
    service_errors: Counter[str] = field(default_factory=Counter)
    findings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def mid_step_kills(self) -> int:
        return sum(1 for k in self.kills if k.leased or k.intents)

    def summary(self) -> dict[str, Any]:
        return {
            "phase": self.phase, "seed": self.seed, "size": self.size, "invoices": self.invoices,
            "paid": self.paid, "kills": len(self.kills), "kills_mid_receipt": self.mid_step_kills,
            "kills_mid_vendor_write": sum(1 for k in self.kills if k.intents),
            "intents_at_kill": dict(Counter(i for k in self.kills for i in k.intents)),
            "faults_injected": self.faults, "service_retries_logged": dict(self.service_errors),
            **self.findings, "seconds": round(self.seconds, 1),
        }


class ChaosRig:
    """Sandboxes in this process, the service as a subprocess, one data directory."""

    def __init__(self, root: Path, *, invoices: int, seed: int, time_factor: float,
                 client_timeout: float | None = None, lease_seconds: float = 2.0,
                 store_url: str | None = None) -> None:
        self.root = root
        self.seed = seed
        self.store_url = store_url  # None: SQLite in the data directory
        self._engine: Engine | None = None
        self.rng = random.Random(seed)
        self.launched: Launched = launch(None, None, root / "secrets", count=invoices, seed=seed % 100_000,
                                         time_factor=time_factor, name="demo")
        conn = self.launched.connection
        conn["interval_seconds"] = 1  # sync (and drain) every second: a restart resumes at once
        conn["jitter_seconds"] = 0
        if client_timeout is not None:
            conn["source"]["timeout"] = client_timeout
            conn["ledger"]["timeout"] = client_timeout
        self.port = free_port()
        self.config_data = {
            "data_dir": str(root / "data"),
            "time_factor": time_factor,
            "store": {"encryption_key": state_key(root / "secrets")},
            "seller": DEMO_SELLER,
            "log": {"format": "json"},
            "admin": {"bind": f"127.0.0.1:{self.port}"},
            # lease_seconds: a receipt a killed process was working is held by its
            # lease until it lapses; 2 s (instead of 300) lets the next life resume.
            # max_attempts is high so injected faults never fail a receipt for good.
            "pipeline": {"vendor_retry_attempts": 6, "vendor_backoff_seconds": 0.01, "backoff_seconds": 0.05,
                         "backoff_max_seconds": 0.5, "max_attempts": 40, "lease_seconds": lease_seconds},
            "connections": [conn],
        }
        if store_url:
            self.config_data["store"]["url"] = store_url
        self.config = root / "pouracquit.toml"
        self.write_config()
        self.tallies = {box.vendor: FaultTally(box) for box in (self.source, self.ledger)}
        self.logs: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None

    # -- parts ------------------------------------------------------------------
    @property
    def source(self) -> Sandbox:
        return self.launched.source

    @property
    def ledger(self) -> Sandbox:
        return self.launched.ledger

    @property
    def db_path(self) -> Path:
        return self.root / "data" / "pouracquit.sqlite"

    @property
    def archive(self) -> Path:
        return self.root / "data" / "archive"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        self.config.write_text(dumps(self.config_data), encoding="utf-8")

    def set_faults(self, knobs: dict[str, Any]) -> None:
        for i, box in enumerate((self.source, self.ledger)):
            post_json(f"{box.url}/_sandbox/faults", {**knobs, "seed": self.seed + i} if knobs else {})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.launched.stop()
        if self._engine is not None:
            self._engine.dispose()

    # -- the service ------------------------------------------------------------
    def spawn(self) -> subprocess.Popen[bytes]:
        log = self.root / f"service-{len(self.logs):03d}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pouracquit.core.cli", "run", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self.proc

    def wait_alive(self, timeout: float = 60.0) -> None:
        proc = self.proc
        assert proc is not None

        def alive() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"service exited with {proc.returncode} at start:\n{tail(self.logs[-1])}")
            try:
                return fetch(self.base + "/healthz", timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(alive, timeout, "the service's /healthz")

    def _owner(self, pid: int | None = None) -> str:
        """LIKE pattern of the lease owner id (``host:pid:random``) of process
        ``pid``, by default the live one: leases and intents a dead life left
        behind must not count as work."""
        if pid is None:
            assert self.proc is not None
            pid = self.proc.pid
        return f"%:{pid}:%"

    def vendor_work_started(self, pid: int | None = None) -> bool:
        """The live process (or process ``pid``) holds a receipt at a vendor step."""
        rows = self.rows("SELECT count(*) FROM receipt WHERE status = 'pending' AND lease_owner LIKE ? AND "
                         "step IN ('ledger_record', 'ledger_attach', 'crm_attach')", self._owner(pid))
        return bool(rows and rows[0][0])

    def all_done(self) -> bool:
        counts = self.counts()
        return bool(counts) and not counts.get("pending")

    def kill(self, life: int) -> KillRecord:
        """Start the service, let it work a random moment, SIGKILL it.

        Every other life (at random) the delay counts from the moment vendor
        work is seen in the state store rather than from /healthz: rendering
        comes first and takes seconds, so delays counted from start-up alone
        would almost never land in a vendor write.
        """
        before = self.open_intents()
        self.spawn()
        self.wait_alive()
        anchor = "ready"
        if self.rng.random() < 0.5:
            anchor = "vendor"
            try:
                wait_until(lambda: self.vendor_work_started() or self.all_done(), 30, "vendor work", step=0.02)
            except AssertionError:
                anchor = "vendor-timeout"  # nothing left to book: kill anyway
        delay = self.rng.uniform(*KILL_DELAY)
        time.sleep(delay)
        proc = self.proc
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        leased, intents, staged = self.in_flight(before)
        return KillRecord(life=life, anchor=anchor, delay=round(delay, 3), pid=proc.pid,
                          done_before=self.counts().get("done", 0), leased=leased, intents=intents,
                          staged_unarchived=staged)

    def status(self) -> dict[str, Any]:
        code, body = fetch(self.base + "/status")
        assert code == 200, body
        return dict(json.loads(body)["demo"])

    def settle(self, timeout: float, expected_done: int) -> float:
        """Run undisturbed until every paid invoice is done, then SIGTERM; returns the stop time."""
        self.spawn()
        self.wait_alive()
        proc = self.proc
        assert proc is not None

        def settled() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"service died with {proc.returncode}:\n{tail(self.logs[-1])}")
            receipts = self.status()["receipts"]
            if receipts.get("failed") or receipts.get("quarantined"):
                raise AssertionError(f"receipts stopped: {json.dumps(self.status()['problems'])[:3000]}")
            return not receipts.get("pending") and receipts.get("done", 0) >= expected_done

        try:
            wait_until(settled, timeout, f"{expected_done} receipts done", step=0.25)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nstatus: {json.dumps(self.status())[:3000]}\n"
                                 f"log tail:\n{tail(self.logs[-1])}") from None
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        took = time.monotonic() - started
        assert code == 0, f"SIGTERM exit code {code}:\n{tail(self.logs[-1])}"
        return took

    # -- reading the state store (read-only: the service may be writing) ---------
    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """``sql`` with ``?`` placeholders, on SQLite or on the PostgreSQL store."""
        if self.store_url:
            return self._pg_rows(sql, args)
        if not self.db_path.exists():
            return []
        with self._db() as db:
            return list(db.execute(sql, args))

    def _pg_rows(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._engine is None:
            assert self.store_url
            self._engine = create_engine(make_url(self.store_url).set(drivername="postgresql+psycopg"))
        try:
            with self._engine.connect() as conn:
                # psycopg's placeholder is %s; the rig's queries hold no other "?" or "%"
                return [tuple(r) for r in conn.exec_driver_sql(sql.replace("?", "%s"), args)]
        except ProgrammingError:
            return []  # the first service process has not created the tables yet

    def counts(self) -> dict[str, int]:
        return {s: n for s, n in self.rows("SELECT status, count(*) FROM receipt GROUP BY status")}

    def open_intents(self) -> set[str]:
        return {rid for (rid,) in self.rows("SELECT id FROM receipt WHERE status = 'pending' AND intent IS NOT NULL")}

    def in_flight(self, before: set[str], pid: int | None = None) -> tuple[int, list[str], int]:
        """What the dead process left mid-way: leases it held, vendor intents it
        opened (not in ``before``) and did not close, unarchived staged PDFs."""
        rows = self.rows("SELECT lease_owner LIKE ?, intent, step, id FROM receipt WHERE status = 'pending'",
                         self._owner(pid))
        leased = sum(1 for mine, _, _, _ in rows if mine)
        intents = sorted(intent for _, intent, _, rid in rows if intent and rid not in before)
        staged = sum(1 for _, _, step, _ in rows if step in ("render", "archive"))
        staged_files = len(list((self.archive / "staging").glob("*.pdf")))
        return leased, intents, min(staged, staged_files)

    def paid_ids(self) -> set[str]:
        return {inv["id"] for inv in self.source.dump_state()["invoices"]
                if inv["properties"]["hs_invoice_status"] == "paid"}

    def service_retries(self) -> Counter[str]:
        """The service's own view of the faults: 'vendor call retried' lines of every life."""
        seen: Counter[str] = Counter()
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("{") and '"vendor call retried"' in line:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue  # a line cut by SIGKILL
                    seen[f"{record.get('vendor')}:{record.get('error')}"] += 1
        return seen


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
