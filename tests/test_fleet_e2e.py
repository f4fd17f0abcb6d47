"""The fleet end to end: tenants on the sandboxes, worker and scheduler
processes on RabbitMQ (or Redis as the broker), Redis and PostgreSQL. Every
paid invoice becomes one receipt, booked once and attached once on each side,
also when a worker and the leading scheduler are SIGKILLed in the middle of
the run; SIGTERM is a warm shutdown; a broker or Redis out of reach is one
line and exit 2."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from test_fleet_rig import (
    AMQP_URL,
    REDIS_URL,
    Deployment,
    booked_once,
    fleet_db,  # noqa: F401 - a fixture
    needs_pg,
    needs_rabbit,
    needs_redis,
    tenant_name,
)

from pouracquit.app.fleet_cmd import scheduler_command, worker_command
from pouracquit.common.errors import ConfigError
from pouracquit.core.sync import sync_connection
from pouracquit.core.tenants import Tenants
from pouracquit.fleet.celery_app import make_app
from pouracquit.sandbox.launch import Launched, launch
from pouracquit.state.tables import Receipt

pytestmark = [needs_pg, needs_redis, needs_rabbit]

POURACQUIT = [sys.executable, "-m", "pouracquit.app.cli"]  # the `pouracquit` command, from this checkout


class Processes:
    """The fleet's processes of one test, their logs in files; all ended at teardown."""

    def __init__(self, root: Path, config: Path) -> None:
        self.root, self.config = root, config
        self.running: list[tuple[subprocess.Popen[bytes], Path, IO[bytes]]] = []

    def start(self, *command: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{command[0]}-{len(self.running)}.log"
        out = log.open("wb")
        proc = subprocess.Popen([*POURACQUIT, *command, "--config", str(self.config)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=self.root)
        self.running.append((proc, log, out))
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        return next(log.read_text(errors="replace") for p, log, _ in self.running if p is proc)

    def leader(self, within: float = 90.0) -> subprocess.Popen[bytes]:
        """The scheduler that leads (its log says so). The waits of these tests are long for a machine
        at rest (the whole file takes about 45 s of CPU): they hold on one shared with other suites."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for proc, log, _ in self.running:
                if proc.poll() is None and "scheduler leads" in log.read_text(errors="replace"):
                    return proc
            time.sleep(0.2)
        raise AssertionError("no scheduler leads")

    def stop(self) -> None:
        for proc, _, _ in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _, out in self.running:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.close()


@dataclass
class Rig:
    deployment: Deployment
    tenants: list[tuple[str, Launched]]
    processes: Processes
    served: Tenants  # the test's own view of the store

    def planned(self) -> dict[str, int]:
        """How many receipts each tenant's CRM calls for (a dry run: nothing written)."""
        return {name: len(sync_connection(self.served.service(name), "demo", dry_run=True).planned)
                for name, _ in self.tenants}

    def receipts(self) -> dict[str, list[Receipt]]:
        return {name: self.served.service(name).store.receipts("demo", limit=1000) for name, _ in self.tenants}

    def held_by(self, pid: int) -> set[str]:
        """The receipts a process holds a lease on (lease owners are host:pid:random...)."""
        return {r.id for rs in self.receipts().values() for r in rs
                if r.status == "pending" and r.lease_owner and f":{pid}:" in r.lease_owner}

    def done(self) -> int:
        return sum(r.status == "done" for rs in self.receipts().values() for r in rs)

    def settled(self, planned: dict[str, int], within: float) -> dict[str, list[Receipt]]:
        deadline = time.monotonic() + within
        while True:
            receipts = self.receipts()
            if all(len(receipts[n]) == planned[n] and all(r.status == "done" for r in receipts[n])
                   for n in planned):
                return receipts
            if time.monotonic() > deadline:
                raise AssertionError({n: sorted((r.status, r.step) for r in rs) for n, rs in receipts.items()})
            time.sleep(0.3)

    def booked_once(self) -> None:
        receipts = self.receipts()
        for name, launched in self.tenants:
            booked_once(launched, receipts[name])


@pytest.fixture
def make_rig(tmp_path: Path, fleet_db: str) -> Iterator[Callable[..., Rig]]:  # noqa: F811
    made: list[Rig] = []

    def make(count: int, tenants: int = 2, broker: str = AMQP_URL) -> Rig:
        deployment = Deployment(tmp_path, fleet_db, broker=broker, fleet={"tenant_inflight": 6, "batch_size": 3})
        launched = []
        for label in ("acme", "globex", "initech")[:tenants]:
            box = launch(None, None, tmp_path / f"secrets-{label}", count=count, time_factor=0.05)
            box.connection.update(interval_seconds=1, jitter_seconds=0)
            name = tenant_name(label)
            deployment.add_tenant(name, box.connection)
            launched.append((name, box))
        rig = Rig(deployment, launched, Processes(tmp_path, deployment.write()),
                  Tenants.open(deployment.settings()))
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.processes.stop()
        rig.served.close()
        for _, box in rig.tenants:
            box.stop()
        app = make_app(rig.deployment.settings())
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(rig.deployment.queue)
        rig.deployment.forget()


def test_two_workers_and_a_scheduler_work_every_receipt_once(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(count=12)
    planned = rig.planned()
    assert all(count >= 5 for count in planned.values()), planned
    workers = [rig.processes.start("worker", "--concurrency", "2") for _ in range(2)]
    scheduler = rig.processes.start("scheduler")
    rig.settled(planned, within=180)
    rig.booked_once()
    time.sleep(1.5)  # more syncs and ticks: nothing new
    assert {name: len(rs) for name, rs in rig.receipts().items()} == planned
    rig.booked_once()
    for proc in (*workers, scheduler):  # SIGTERM: a warm shutdown, exit 0
        proc.send_signal(signal.SIGTERM)
    assert [proc.wait(timeout=30) for proc in (*workers, scheduler)] == [0, 0, 0]


def test_killed_worker_and_leader_lose_nothing_and_do_nothing_twice(make_rig: Callable[..., Rig]) -> None:
    # on Redis as the broker: a killed worker's tasks are not delivered again before its visibility
    # timeout (an hour), so what brings its receipts back is the fleet's own in-flight claims running out
    rig = make_rig(count=12, broker=REDIS_URL)
    planned = rig.planned()
    doomed = rig.processes.start("worker", "--concurrency", "2")
    rig.processes.start("worker", "--concurrency", "2")
    rig.processes.start("scheduler")
    rig.processes.start("scheduler")
    leader = rig.processes.leader()
    deadline = time.monotonic() + 150
    while not (held := rig.held_by(doomed.pid)):  # killed in the middle of receipts of its own
        assert time.monotonic() < deadline, "the doomed worker never took a receipt"
        time.sleep(0.05)
    doomed.send_signal(signal.SIGKILL)
    leader.send_signal(signal.SIGKILL)
    assert (doomed.wait(timeout=10), leader.wait(timeout=10)) == (-signal.SIGKILL, -signal.SIGKILL)
    assert rig.done() < sum(planned.values())
    assert rig.processes.leader() is not leader  # a standby took over
    settled = rig.settled(planned, within=180)
    assert {r.id for rs in settled.values() for r in rs} >= held  # what it held was finished by another
    rig.booked_once()


@pytest.mark.parametrize("fleet", [
    {"broker": "amqp://guest:guest@127.0.0.1:1//"},
    {"broker": "redis://127.0.0.1:1/0"},
    {"redis": "redis://127.0.0.1:1/0"},
])
def test_an_unreachable_broker_or_redis_is_one_line(tmp_path: Path, fleet_db: str, fleet: dict[str, str]) -> None:  # noqa: F811
    deployment = Deployment(tmp_path, fleet_db, fleet=fleet)
    deployment.add_tenant(tenant_name("acme"), {"name": "crm", "source": {"vendor": "hubspot"},
                                                 "ledger": {"vendor": "quickbooks"}})
    key = "fleet.redis" if "redis" in fleet else "fleet.broker"
    for command in (lambda: worker_command(deployment.settings(), 1, "threads"),
                    lambda: scheduler_command(deployment.settings())):
        with pytest.raises(ConfigError) as raised:
            command()
        assert str(raised.value).startswith(f"{key} ") and "unreachable" in str(raised.value)
        assert "\n" not in str(raised.value)
    # and through the command line: one line, exit 2
    done = subprocess.run([*POURACQUIT, "worker", "--config", str(deployment.path)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
