"""The single-process chaos rig: the HubSpot and QuickBooks sandboxes in this
process, ``pouracquit run`` as a subprocess killed and restarted, and what
the state store (SQLite, or PostgreSQL with ``store_url``) says it was doing."""

from __future__ import annotations

import json
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.common import KILL_DELAY, fetch, free_port, post_json, tail, wait_until
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from pouracquit.app.toml_out import dumps
from pouracquit.sandbox.launch import DEMO_SELLER, Launched, launch, state_key
from pouracquit.sandbox.server import Request, Sandbox

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
                [sys.executable, "-m", "pouracquit.app.cli", "run", "--config", str(self.config)],
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


