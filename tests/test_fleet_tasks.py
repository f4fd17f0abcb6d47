"""The fleet's tasks on the real PostgreSQL and Redis: one sync per connection
across processes (and a killed holder's lock freed with its session), a task
run twice (one after the other, or at once) harmless, a disabled tenant's
tasks dropped, the in-flight claims of a killed worker coming back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_fleet_rig import (
    REDIS_URL,
    Deployment,
    booked_once,
    fleet_db,  # noqa: F401 - a fixture
    forget_namespace,
    needs_pg,
    needs_redis,
    tenant_name,
)

from pouracquit.app.toml_out import dumps
from pouracquit.core.config import load_settings
from pouracquit.core.insight.reconcile import RECONCILED
from pouracquit.core.sync import sync_connection
from pouracquit.fleet.daily import paused_key
from pouracquit.fleet.inflight import CRASHED_SECONDS, InFlight, Running, redis_client
from pouracquit.fleet.locks import Leadership, SyncLocks
from pouracquit.fleet.rates import RedisGates
from pouracquit.fleet.tasks import Fleet, sync_gate
from pouracquit.sandbox.launch import DEMO_SELLER, Launched, launch

pytestmark = [needs_pg, needs_redis]

HOLDER = """
import sys, time
from pouracquit.fleet.locks import Leadership, SyncLocks
from pouracquit.fleet.rates import RedisGates
url, what = sys.argv[1], sys.argv[2]
if what == "sync":
    hold = SyncLocks(url).hold("acme", "crm")
    print("held" if hold.__enter__() else "busy", flush=True)
else:
    print("held" if Leadership(url, "scheduler:test").acquire() else "busy", flush=True)
time.sleep(60)
"""


def _holder(url: str, what: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, what], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _eventually(check: object, within: float = 10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not within {within} s")


def test_one_sync_per_connection_and_a_killed_holders_lock_goes_with_it(fleet_db: str) -> None:  # noqa: F811
    locks, other = SyncLocks(fleet_db), SyncLocks(fleet_db)
    with locks.hold("acme", "crm") as held, other.hold("acme", "crm") as second:
        assert held and not second
        with other.hold("acme", "erp") as elsewhere, other.hold("globex", "crm") as other_tenant:
            assert elsewhere and other_tenant
    proc = _holder(fleet_db, "sync")
    try:
        with locks.hold("acme", "crm") as held:
            assert not held
        proc.send_signal(signal.SIGKILL)

        def free() -> bool:
            with locks.hold("acme", "crm") as got:
                return got
        assert _eventually(free, within=5.0) < 5.0
    finally:
        proc.kill()
        proc.wait()
        locks.close()
        other.close()


def test_a_standby_scheduler_takes_over_when_the_leader_is_killed(fleet_db: str) -> None:  # noqa: F811
    proc = _holder(fleet_db, "leader")
    standby = Leadership(fleet_db, "scheduler:test")
    try:
        assert not standby.acquire()
        assert Leadership(fleet_db, "scheduler:other").acquire()  # another deployment's queue, its own leader
        os.kill(proc.pid, signal.SIGKILL)
        _eventually(standby.acquire, within=5.0)
        assert standby.acquire()  # and it keeps it
    finally:
        proc.kill()
        proc.wait()
        standby.release()


def test_on_sqlite_the_locks_are_the_machines(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    locks = SyncLocks(url)
    with locks.hold("acme", "crm") as held, locks.hold("acme", "crm") as second:
        assert held and not second
    with locks.hold("acme", "crm") as again:
        assert again
    first, second_leader = Leadership(url, "scheduler:q"), Leadership(url, "scheduler:q")
    assert first.acquire() and not second_leader.acquire()
    first.release()
    assert second_leader.acquire()
    second_leader.release()


def test_claims_of_a_killed_worker_run_out_and_a_crashed_batch_waits() -> None:
    now = [1000.0]
    namespace = f"fleet-test-{tenant_name('q')}"
    inflight = InFlight(redis_client(REDIS_URL), namespace, clock=lambda: now[0])
    tenant = tenant_name("acme")
    inflight.add(tenant, ["r1", "r2"], seconds=600)
    assert inflight.live(tenant) == {"r1", "r2"}
    inflight.renew(tenant, ["r1", "r3"], seconds=60)  # started: a short claim, renewed while it works
    assert inflight.live(tenant) == {"r1", "r2"}  # r3 (finished elsewhere) is not added back
    now[0] += 61  # the worker was killed: nobody renewed r1
    assert inflight.live(tenant) == {"r2"}
    running = Running(inflight, seconds=60)
    with pytest.raises(RuntimeError), running.hold(tenant, ["r2"]):
        raise RuntimeError("the tenant's configuration broke")
    assert inflight.live(tenant) == {"r2"}  # not sent again at once
    now[0] += CRASHED_SECONDS + 1
    assert inflight.live(tenant) == set()
    inflight.add(tenant, ["r4"])
    with running.hold(tenant, ["r4"]):
        assert inflight.live(tenant) == {"r4"}
    assert inflight.live(tenant) == set()
    running.close()
    forget_namespace(namespace)


@pytest.fixture
def tenant_on_sandboxes(tmp_path: Path, fleet_db: str) -> Iterator[tuple[Deployment, str, Launched]]:  # noqa: F811
    launched = launch(None, None, tmp_path / "secrets", count=12, time_factor=0.05)
    launched.connection.update(interval_seconds=1, jitter_seconds=0)
    deployment = Deployment(tmp_path, fleet_db)
    name = tenant_name("acme")
    deployment.add_tenant(name, launched.connection)
    yield deployment, name, launched
    launched.stop()
    deployment.forget()


def test_tasks_run_twice_at_once_or_again_change_nothing(tenant_on_sandboxes: tuple[Deployment, str, Launched]) -> None:
    deployment, name, launched = tenant_on_sandboxes
    fleet = Fleet(deployment.settings())
    try:
        assert fleet.warm() == 1  # its connectors built before any task, without a call to the vendors
        assert launched.source.call_counts()["total"] == launched.ledger.call_counts()["total"] == 0
        service = fleet.tenants.service(name)
        expected = len(sync_connection(service, "demo", dry_run=True).planned)
        assert expected >= 5
        with fleet.locks.hold(name, "demo"):  # another worker runs this connection's sync
            fleet.redis.set(sync_gate(fleet.namespace, name, "demo"), "1")
            assert fleet.sync(name, "demo") == "busy"
            assert fleet.redis.exists(sync_gate(fleet.namespace, name, "demo"))  # the running sync's to clear
            assert service.store.due("demo", datetime.now(UTC)) == []
        assert fleet.sync(name, "demo") == "ok"
        assert not fleet.redis.exists(sync_gate(fleet.namespace, name, "demo"))  # the next one may be sent
        # the connectors' calls are paced by the budgets every worker shares (fleet/rates.py)
        shared = service.gates("demo", "hubspot")
        assert isinstance(shared, RedisGates) and shared.scope == f"{fleet.namespace}/{name}/demo/hubspot"
        assert fleet.sync(name, "demo") == "ok"  # a redelivered sync: the cursor says nothing is new
        due = service.store.due("demo", datetime.now(UTC))
        assert len(due) == expected
        fleet.inflight.add(name, due)
        # the same batch twice at once in one worker process (a redelivery while the first still runs)
        runs = [threading.Thread(target=fleet.work, args=(name, "demo", due)) for _ in range(2)]
        for run in runs:
            run.start()
        for run in runs:
            run.join(timeout=60)
        assert fleet.work(name, "demo", due) == "ok"  # and once more after: nothing left to do
        assert fleet.inflight.live(name) == set()
        receipts = service.store.receipts("demo", limit=100)
        assert len(receipts) == expected
        booked_once(launched, receipts)
        assert fleet.reconcile(name, "demo") == "ok"
        assert fleet.reconcile(name, "demo") == "ok"  # twice: only read and recorded again
        assert [e.kind for e in service.store.events(kind=RECONCILED)] == [RECONCILED] * 2
        assert not fleet.redis.hexists(paused_key(fleet.namespace), f"{name}/demo")
        booked_once(launched, receipts)
    finally:
        fleet.close()


def test_a_batch_of_a_connection_being_reconciled_is_handed_back(
        tenant_on_sandboxes: tuple[Deployment, str, Launched]) -> None:
    deployment, name, _ = tenant_on_sandboxes
    fleet = Fleet(deployment.settings())
    try:
        assert fleet.sync(name, "demo") == "ok"
        due = fleet.tenants.service(name).store.due("demo", datetime.now(UTC))
        fleet.inflight.add(name, due)
        fleet.redis.hset(paused_key(fleet.namespace), f"{name}/demo", time.time() + 60)
        assert fleet.work(name, "demo", due) == "paused"
        assert fleet.inflight.live(name) == set()  # the scheduler sends them again once the pause ends
        assert fleet.tenants.service(name).store.due("demo", datetime.now(UTC)) == due
        assert fleet.dunning(name) == "dropped"  # its [dunning] is off
    finally:
        fleet.redis.hdel(paused_key(fleet.namespace), f"{name}/demo")
        fleet.close()


def test_tasks_of_a_disabled_tenant_are_dropped(tenant_on_sandboxes: tuple[Deployment, str, Launched]) -> None:
    deployment, name, launched = tenant_on_sandboxes
    fleet = Fleet(deployment.settings())
    try:
        fleet.tenants.set_enabled(name, False)
        assert fleet.sync(name, "demo") == "dropped"
        fleet.inflight.add(name, ["r1", "r2"])
        assert fleet.work(name, "demo", ["r1", "r2"]) == "dropped"
        assert fleet.inflight.live(name) == set()
        assert fleet.work("nobody", "demo", ["r3"]) == "dropped"
        assert fleet.tenants.service(name).store.receipts("demo", limit=10) == []
        assert launched.source.call_counts()["total"] == 0
        fleet.tenants.set_enabled(name, True)
        assert fleet.work(name, "nowhere", ["r1"]) == "dropped"  # a connection its company no longer has
    finally:
        fleet.close()


def test_a_one_company_config_on_sqlite_is_the_tenant_default(tmp_path: Path) -> None:
    launched = launch(None, None, tmp_path / "secrets", count=8, time_factor=0.05)
    deployment = Deployment(tmp_path, f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        config = tomllib.loads(deployment.write().read_text(encoding="utf-8"))
        del config["tenants"]
        config.update(seller=DEMO_SELLER, document={"render_processes": 0}, connections=[launched.connection])
        deployment.path.write_text(dumps(config), encoding="utf-8")
        fleet = Fleet(load_settings(deployment.path))
        try:
            assert fleet.tenants.names() == ["default"]
            with fleet.locks.hold("default", "demo") as held:
                assert held and fleet.sync("default", "demo") == "busy"  # the lock of this process
            assert fleet.sync("default", "demo") == "ok"
            store = fleet.tenants.service("default").store
            due = store.due("demo", datetime.now(UTC))
            assert due and fleet.work("default", "demo", due) == "ok"
            booked_once(launched, store.receipts("demo", limit=100))
        finally:
            fleet.close()
    finally:
        launched.stop()
        deployment.forget()
