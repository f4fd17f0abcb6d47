"""The fleet's chaos run: many companies, Celery workers SIGKILLed on a clock.

Every tenant is a company with its own emulator pair (sandbox/fleet.py), all in this process;
the deployment has a fresh PostgreSQL database, a RabbitMQ queue and Redis keys of its own. One
``pouracquit scheduler`` and N ``pouracquit worker`` run it; every ``--kill-every`` seconds a
worker chosen at random is SIGKILLed and replaced, until every paid invoice of every tenant has
a receipt done. Then per tenant, from the emulators' state and the store: 0 duplicates (bookings
per number and files per document in the ledger, files per invoice in the CRM, receipts per
invoice), 0 lost (every paid invoice has a done receipt), 0 numbering gaps, and ``pouracquit
--tenant T archive verify`` OK. A table per tenant and a summary; exit code 1 on any failure.

    .venv/bin/python tests/chaos/run_fleet_chaos.py                      # the acceptance: 50 x 2,000, 3 workers
    .venv/bin/python tests/chaos/run_fleet_chaos.py --tenants 4 --paid 60 --workers 2 --kill-every 10

``test_fleet_chaos.py`` runs a small one in the suite. Services: $POURACQUIT_TEST_PG (an admin URL;
the run's database is made beside it, then dropped), $POURACQUIT_TEST_AMQP, $POURACQUIT_TEST_REDIS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``chaos.*`` importable as under pytest
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.common import ALLOCATED, tail
from kombu import Connection as BrokerConnection
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from pouracquit.app.toml_out import dumps
from pouracquit.sandbox.fleet import crm_attachments, launch_tenants, ledger_bookings, paid_invoices


@dataclass
class Kill:
    at: float  # time.time()
    pid: int
    done_before: int
    leased: int  # receipts the killed worker held a lease on (it was working them); of them,
    intents: int  # receipts in the middle of a vendor write


@dataclass
class Run:
    tenants: int
    paid: int
    workers: int
    kills: list[Kill] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    problem: str = ""  # why the run did not finish (then ``rows`` may be empty)

    @property
    def failed(self) -> list[str]:
        """Every broken figure: ``tenant: what``."""
        out = [f"run: {self.problem}"] if self.problem else []
        return out + [f"{row['tenant']}: {p}" for row in self.rows for p in row["problems"]]

    def summary(self) -> dict[str, Any]:
        total: Counter[str] = Counter()  # update, not +: a figure that stayed 0 is shown
        for row in self.rows:
            total.update({k: v for k, v in row.items() if isinstance(v, int) and k != "archive_verify"})
        return {"tenants": self.tenants, "paid": self.paid, "workers": self.workers, "kills": len(self.kills),
                "kills_mid_receipt": sum(1 for k in self.kills if k.leased),
                "kills_mid_vendor_write": sum(1 for k in self.kills if k.intents),
                "seconds": round(self.seconds, 1), **dict(total),
                "archive_verify_ok": sum(1 for row in self.rows if row["archive_verify"] == 0),
                "tenants_failed": sum(1 for row in self.rows if row["problems"]), "problem": self.problem}


PG_ADMIN_URL = os.environ.get("POURACQUIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("POURACQUIT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("POURACQUIT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def services_down() -> str | None:
    """Why the fleet cannot run here (PostgreSQL, Redis or RabbitMQ unreachable), or None."""
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except SQLAlchemyError as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}"
    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except RedisError as exc:
        return f"Redis not reachable at {REDIS_URL}: {exc}"
    try:
        with BrokerConnection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"RabbitMQ not reachable at {AMQP_URL}: {exc}"
    return None


class FleetRig:
    """A deployment of tenants on their emulators (in this process), a database, queue and Redis
    keys of its own, its scheduler and workers as subprocesses; ``close`` removes all of it."""

    def __init__(self, root: Path, *, tenants: int, paid: int, seed: int, concurrency: int = 4,
                 **launch: Any) -> None:
        """``launch``: more of launch_tenants' keywords (time_factor, interval_seconds, pipeline, ...)."""
        tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.root, self.concurrency = root, concurrency
        self.database, self.queue, self.prefix = f"fleet_chaos_{tag}", f"fleet-chaos-{tag}", f"fc{tag[-6:]}"
        self.workers: list[subprocess.Popen[bytes]] = []
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.logs: dict[int, Path] = {}  # pid -> its output
        self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        self.store_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.database}"
        self.engine = create_engine(make_url(self.store_url).set(drivername="postgresql+psycopg"))
        try:
            self.fleet = launch_tenants(tenants, root, paid_total=paid, seed=seed, store_url=self.store_url,
                                        broker=AMQP_URL, redis=REDIS_URL, queue=self.queue, prefix=self.prefix,
                                        **launch)
        except BaseException:
            self._drop()
            raise
        self.config = self.fleet.write(dumps)
        self.archive = root / "data" / "archive"

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.root / "logs" / f"{len(self.logs):03d}-{args[0]}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "pouracquit.app.cli", *args, "--config", str(self.config)],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.logs[proc.pid] = log
        return proc

    def start(self, workers: int) -> None:
        self.scheduler = self.spawn("scheduler")
        self.workers = [self.spawn("worker", "--concurrency", str(self.concurrency)) for _ in range(workers)]

    def died(self) -> str | None:
        """Which process of the fleet ended on its own (none is killed but by ``_kill``), with its log."""
        for proc in self._procs():
            if proc.poll() is not None:
                return f"pid {proc.pid} exited with {proc.returncode}:\n{tail(self.logs[proc.pid])}"
        return None

    def _procs(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in [self.scheduler, *self.workers] if p is not None]

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        try:
            with self.engine.connect() as conn:
                return [tuple(r) for r in conn.exec_driver_sql(sql, args)]
        except ProgrammingError:
            return []  # no table yet: the first process has not migrated the store

    def counts(self) -> dict[str, int]:
        return {s: n for s, n in self.rows("SELECT status, count(*) FROM receipt GROUP BY status")}

    def held_by(self, pid: int) -> tuple[int, int]:
        """Receipts ``pid`` held a lease on (owners are host:pid:...), and of them those mid vendor write."""
        found = self.rows("SELECT count(*), count(intent) FROM receipt WHERE status = 'pending' AND "
                          "lease_owner LIKE %s", f"%:{pid}:%")
        return (int(found[0][0]), int(found[0][1])) if found else (0, 0)

    def evidence(self, kills: list[Kill]) -> str:
        """The receipts not done; the refresh tokens their companies' ledgers saw, beside the kills; logs."""
        stuck = self.rows("SELECT tenant, id, status, step, attempts, intent, lease_owner, lease_until, last_error "
                          "FROM receipt WHERE status <> 'done' ORDER BY tenant, id LIMIT 30")
        lines = ["receipts not done (first 30):", *(f"  {r}" for r in stuck)]
        lines.append("kills at " + ", ".join(f"{_clock(k.at)} (pid {k.pid})" for k in kills))
        for tenant in (t for t in self.fleet.tenants if t.name in {r[0] for r in stuck}):
            lines.append(f"{tenant.name} {tenant.ledger} refresh tokens presented: " + ", ".join(
                f"{_clock(u.at)} {u.token} {'ok' if u.granted else 'REFUSED'}" for u in tenant.refreshes))
        for proc in self._procs():
            lines += [f"--- {self.logs[proc.pid].name} (pid {proc.pid}):", tail(self.logs[proc.pid], 15)]
        return "\n".join(lines)

    def archive_verify(self, tenant: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pouracquit.app.cli", "--tenant", tenant, "archive", "verify",
                               "--config", str(self.config)], capture_output=True, text=True, timeout=300)

    def stop_fleet(self) -> None:
        """SIGTERM (a warm shutdown) to the scheduler and the workers; SIGKILL what is left after 30 s."""
        procs = self._procs()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def close(self) -> None:
        self.stop_fleet()
        self.fleet.stop()
        self.engine.dispose()
        self._drop()
        with BrokerConnection(AMQP_URL, connect_timeout=3) as conn:
            conn.default_channel.queue_delete(self.queue)
            conn.default_channel.exchange_delete(self.queue)
        with Redis.from_url(REDIS_URL) as redis:
            for pattern in (f"{self.queue}:*", f"pouracquit:rate:{self.queue}/*"):
                for key in redis.scan_iter(match=pattern, count=1000):
                    redis.delete(key)

    def _drop(self) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        self._admin.dispose()


def run_fleet_chaos(root: Path, *, tenants: int, paid: int, workers: int, kill_every: float,
                    deadline: float, seed: int, concurrency: int = 4, max_kills: int | None = None,
                    stall: float = 240.0, echo: Any = print) -> Run:
    """Run the fleet under kills (every ``kill_every`` s, at most ``max_kills``) until every receipt
    is done (or ``deadline`` s, or ``stall`` s without one more done), then count."""
    rng = random.Random(seed)
    run = Run(tenants=tenants, paid=paid, workers=workers)
    rig = FleetRig(root, tenants=tenants, paid=paid, seed=seed, concurrency=concurrency, interval_seconds=10.0)
    try:
        echo(f"fleet chaos: {tenants} tenants, {rig.fleet.paid} paid invoices, {workers} workers, a SIGKILL every "
             f"{kill_every:.0f} s, seed {seed}; database {rig.database}, queue {rig.queue}")
        started = time.monotonic()
        rig.start(workers)
        next_kill, progress = started + kill_every, (0, started)
        while True:
            counts = rig.counts()
            done, now = counts.get("done", 0), time.monotonic()
            if done >= rig.fleet.paid and not counts.get("pending"):
                break
            progress = (done, now) if done != progress[0] else progress
            stopped = {s: n for s, n in counts.items() if s not in ("done", "pending")}
            run.problem = (f"receipts stopped for good: {stopped}" if stopped
                           else f"not done after {deadline:.0f} s: {counts}" if now - started > deadline
                           else f"no receipt done for {stall:.0f} s: {counts}" if now - progress[1] > stall
                           else rig.died() or "")
            if run.problem:
                break
            if now >= next_kill and (max_kills is None or len(run.kills) < max_kills):
                run.kills.append(_kill(rig, rng, done))
                next_kill = now + kill_every
            time.sleep(0.5)
        run.seconds = time.monotonic() - started
        echo(f"  stopped: {run.problem}" if run.problem else f"  done in {run.seconds:.0f} s, {len(run.kills)} kills")
        echo(rig.evidence(run.kills) if run.problem else "")
        rig.stop_fleet()
        run.rows = tally(rig)
        return run
    finally:
        rig.close()


def _kill(rig: FleetRig, rng: random.Random, done: int) -> Kill:
    slot = rng.randrange(len(rig.workers))
    pid = rig.workers[slot].pid
    rig.workers[slot].send_signal(signal.SIGKILL)
    rig.workers[slot].wait(timeout=10)
    leased, intents = rig.held_by(pid)
    rig.workers[slot] = rig.spawn("worker", "--concurrency", str(rig.concurrency))
    return Kill(at=time.time(), pid=pid, done_before=done, leased=leased, intents=intents)


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3]


def _extra(counter: Counter[str]) -> int:
    return sum(n - 1 for n in counter.values() if n > 1)


def tally(rig: FleetRig) -> list[dict[str, Any]]:
    """Duplicates, losses and gaps of every tenant; ``problems`` lists what is not zero or OK."""
    with ThreadPoolExecutor(max_workers=2) as pool:  # each verify is a CLI process; 2 cores
        verified = dict(zip([t.name for t in rig.fleet.tenants],
                            pool.map(rig.archive_verify, [t.name for t in rig.fleet.tenants]), strict=True))
    return [_tenant_row(rig, tenant, verified[tenant.name]) for tenant in rig.fleet.tenants]


def _tenant_row(rig: FleetRig, tenant: Any, verify: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    crm, books = tenant.states()
    paid = paid_invoices(tenant.source, crm)
    receipts = rig.rows("SELECT source_id, status, number, intent, document_sha256 FROM receipt WHERE tenant = %s",
                        tenant.name)
    done = {r[0] for r in receipts if r[1] == "done"}
    numbers = {r[2] for r in receipts if r[1] == "done"}
    booked = ledger_bookings(tenant.ledger, books)
    by_number = Counter(number for number, _ in booked)
    attached_crm, orphans = crm_attachments(tenant.source, crm)
    allocated = sorted(int(m.group(1)) for r in receipts if r[2] and (m := ALLOCATED.match(r[2])))
    series = [last for (last,) in rig.rows("SELECT last FROM number_series WHERE tenant = %s AND series LIKE %s",
                                           tenant.name, "default:%")]
    documents = rig.rows("SELECT receipt_id FROM document WHERE tenant = %s", tenant.name)
    pdfs = len(list((rig.archive / tenant.name).glob("??/??/*.pdf")))
    row: dict[str, Any] = {
        "tenant": tenant.name, "pair": f"{tenant.source}>{tenant.ledger}", "paid": len(paid),
        "done": len(done & paid), "lost": len(paid - done),
        "duplicate_receipts": _extra(Counter(r[0] for r in receipts)),
        "ledger_bookings": len(booked),
        "duplicate_bookings": _extra(by_number),
        "bookings_without_receipt": len(set(by_number) - numbers),
        "receipts_not_booked": len(numbers - set(by_number)),
        "duplicate_ledger_files": sum(n - 1 for _, n in booked if n > 1),
        "bookings_without_file": sum(1 for _, n in booked if n == 0),
        "crm_files": sum(attached_crm.values()),
        "duplicate_crm_files": sum(n - 1 for ref, n in attached_crm.items() if n > 1) + orphans,
        "paid_without_crm_file": sum(1 for ref in paid if not attached_crm.get(ref)),
        "allocated_numbers": len(allocated),
        "number_gaps": len(set(range(1, max(allocated, default=0) + 1)) - set(allocated)),
        "number_repeats": _extra(Counter(str(n) for n in allocated)),
        "series_behind": int(bool(allocated) and series != [max(allocated)]),
        "documents": len(documents), "archived_pdfs": pdfs,
        "intents_left": sum(1 for r in receipts if r[3]),
        "archive_verify": verify.returncode,
        "archive_verify_says": (verify.stdout.strip().splitlines() or verify.stderr.strip().splitlines() or [""])[-1],
    }
    zero = ("lost", "duplicate_receipts", "duplicate_bookings", "bookings_without_receipt", "receipts_not_booked",
            "duplicate_ledger_files", "bookings_without_file", "duplicate_crm_files", "paid_without_crm_file",
            "number_gaps", "number_repeats", "series_behind", "intents_left")
    row["problems"] = [f"{key} = {row[key]}" for key in zero if row[key]]
    if row["paid"] != tenant.paid:
        row["problems"].append(f"{row['paid']} paid in the CRM, {tenant.paid} seeded")
    if not row["documents"] == row["archived_pdfs"] == row["done"]:
        row["problems"].append(f"{row['documents']} documents, {row['archived_pdfs']} PDFs for {row['done']} done")
    if row["archive_verify"]:
        row["problems"].append(f"archive verify: {row['archive_verify_says']}")
    return row


COLUMNS = (("tenant", "tenant"), ("pair", "pair"), ("paid", "paid"), ("done", "done"), ("lost", "lost"),
           ("duplicate_receipts", "dup rcpt"), ("duplicate_bookings", "dup book"),
           ("duplicate_ledger_files", "dup lfile"), ("duplicate_crm_files", "dup cfile"),
           ("number_gaps", "gaps"), ("allocated_numbers", "numbered"), ("archive_verify", "verify"))


def table(run: Run) -> str:
    head = [label for _, label in COLUMNS]
    lines = [[str(row[key]) if key != "archive_verify" else ("OK" if row[key] == 0 else "FAIL")
              for key, _ in COLUMNS] for row in run.rows]
    widths = [max(len(x) for x in column) for column in zip(head, *lines, strict=True)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in [head, *lines])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tenants", type=int, default=50)
    p.add_argument("--paid", type=int, default=2000, help="paid invoices over all tenants")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=4, help="threads per worker")
    p.add_argument("--kill-every", type=float, default=20.0, help="seconds between SIGKILLs")
    p.add_argument("--deadline", type=float, default=3600.0, help="give up after this many seconds")
    p.add_argument("--stall", type=float, default=240.0, help="give up after this long without a receipt done")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", type=Path, help="write the run's figures here")
    args = p.parse_args(argv)
    if reason := services_down():
        print(f"cannot run: {reason}")
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleans up as Ctrl-C does (a background job has no SIGINT)
    with tempfile.TemporaryDirectory(prefix="fleet-chaos-") as tmp:
        run = run_fleet_chaos(Path(tmp), tenants=args.tenants, paid=args.paid, workers=args.workers,
                              kill_every=args.kill_every, deadline=args.deadline, seed=seed,
                              concurrency=args.concurrency, stall=args.stall)
    print(table(run))
    for kill in run.kills:
        print(f"  kill at {_clock(kill.at)}: pid {kill.pid}, {kill.done_before} done, held {kill.leased} receipts, "
              f"{kill.intents} mid vendor write")
    print(json.dumps(run.summary(), indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": run.summary(), "kills": [k.__dict__ for k in run.kills],
                                         "tenants": run.rows}, indent=1, default=str), encoding="utf-8")
    for problem in run.failed:
        print(f"FAILED {problem}")
    print("FLEET CHAOS: " + ("FAILED" if run.failed else "OK") + f" (replay: --seed {seed})")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())

