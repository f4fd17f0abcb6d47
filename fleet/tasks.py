"""The fleet's two tasks and what a worker process's tasks share.

``sync(tenant, connection)`` reads one connection's changes into the outbox
(intake only: the receipts it queues are sent to workers by the scheduler);
``work(tenant, connection, receipt_ids)`` works those receipts. Both are safe
to run twice, at once or one after the other: a second sync of a connection
finds its lock taken and returns, and a receipt is worked by whoever holds its
lease in the store, each write fenced by that lease and repeated only after a
lookup (core/pipeline.py). Neither raises into Celery: what went wrong is
logged (and a crashed sync recorded in the store, as the daemon does), since a
task that raised would only be acknowledged and forgotten.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog
from redis import Redis
from redis.exceptions import RedisError

from pouracquit.common.errors import ConfigError, one_line
from pouracquit.core.config import Settings
from pouracquit.core.dunning.run import run_dunning
from pouracquit.core.insight.reconcile import reconcile_and_record
from pouracquit.core.pipeline import Pipeline
from pouracquit.core.service import Service
from pouracquit.core.sync import record_run, sync_connection

from .daily import DUNNING_TASK, RECONCILE_TASK, paused, paused_key
from .inflight import InFlight, Running, redis_client
from .locks import SyncLocks
from .rates import RedisGates

if TYPE_CHECKING:
    from celery import Celery

    from pouracquit.core.tenants import Tenants

log = structlog.get_logger("pouracquit.fleet.tasks")

SYNC_TASK = "pouracquit.sync"
WORK_TASK = "pouracquit.work"
# how stale a worker's view of the tenants may get: a tenant disabled now stops getting work within it
REFRESH_SECONDS = 5.0
# a reconciliation pauses its connection for at most this long (its worker may die), and waits at most
# QUIET_SECONDS for the receipts being worked to be done, and for a running sync
PAUSE_SECONDS = 900.0
QUIET_SECONDS = 120.0


def sync_gate(namespace: str, tenant: str, connection: str) -> str:
    """The Redis key that says a sync of this connection is queued or running (set by the scheduler)."""
    return f"{namespace}:sync:queued:{tenant}/{connection}"


class Fleet:
    """What the tasks of one worker process share: the tenants and their services (their
    connectors' rate budgets shared through Redis, fleet/rates.py), Redis, the sync locks.
    Built on first use."""

    def __init__(self, settings: Settings, *, tenants: Tenants | None = None, redis: Redis | None = None) -> None:
        self.settings, self.namespace = settings, settings.fleet.queue
        self._tenants = tenants
        self.redis = redis or redis_client(settings.fleet.redis)
        self.inflight = InFlight(self.redis, self.namespace)
        # a killed worker's ids come back once the leases it held in the store have run out too
        self.running = Running(self.inflight, 2 * settings.pipeline.lease_seconds)
        self.locks = SyncLocks(settings.store_url)
        self._lock = threading.Lock()
        self._refreshed = 0.0
        self._served: dict[str, Service] = {}

    @property
    def tenants(self) -> Tenants:
        from pouracquit.core.tenants import Tenants

        with self._lock:
            if self._tenants is None:
                # each connection's vendor budget is the company's at the vendor: shared by every worker
                # documents render on the worker's own threads: a render pool per company would start
                # processes for every company served (hundreds of MB each); the fleet scales by workers
                self._tenants = Tenants.open(self.settings, gates=self._shared_gates,
                                             overrides={"document": {"render_processes": 0}})
                self._refreshed = time.monotonic()
            return self._tenants

    def _shared_gates(self, tenant: str, connection: str, vendor: str) -> RedisGates:
        # the deployment's queue name first: two deployments sharing a Redis keep their budgets apart
        return RedisGates(self.redis, f"{self.namespace}/{tenant}/{connection}/{vendor}")

    def service(self, tenant: str) -> Service | None:
        """The tenant's service, or None (logged) when it is not served: disabled or removed."""
        tenants = self.tenants
        with self._lock:
            if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
                tenants.refresh()
                self._refreshed = time.monotonic()
            served = tenant in tenants.names()
        if not served:
            log.warning("task of a tenant not served (disabled or removed), dropped", tenant=tenant)
            return None
        service = tenants.service(tenant)
        with self._lock:
            self._served[tenant] = service
        return service

    def warm(self) -> int:
        """Build every served connection's wiring now (the vendors' SDKs and the renderer load once,
        before the first task rather than in it); a company whose configuration is wrong is logged
        and skipped, the others go on. Returns the connections wired."""
        wired = 0
        for tenant in self.tenants.names():
            try:
                service = self.tenants.service(tenant)
                for conn in service.connections():
                    service.wiring(conn)
                    wired += 1
            except ConfigError as exc:
                log.error("tenant not wired: its tasks will fail until its configuration is fixed", tenant=tenant,
                          error=str(exc))
            except Exception:  # one company's surprise (its archive directory...) must not stop the worker
                log.exception("tenant not wired", tenant=tenant)
        return wired

    def sync(self, tenant: str, connection: str) -> str:
        """One intake pass over ``connection``; returns what happened ("busy": another worker runs it)."""
        busy = False
        try:
            service = self.service(tenant)
            if service is None:
                return "dropped"
            with self.locks.hold(tenant, connection) as held:
                if not held:
                    log.info("sync already running elsewhere", tenant=tenant, connection=connection)
                    busy = True  # the gate is the running sync's: it clears it as it ends
                    return "busy"
                # running now: should this worker die, the gate lets the next sync be sent soon, not in
                # SYNC_GATE_SECONDS (a longer sync outlives it: the one sent then finds the lock and returns)
                self.redis.expire(sync_gate(self.namespace, tenant, connection), int(self.running.seconds) + 1)
                return self._sync(service, tenant, connection)
        except Exception:  # the tenant's config or the store: the next interval tries again
            log.exception("sync task crashed", tenant=tenant, connection=connection)
            return "crashed"
        finally:
            try:
                if not busy:
                    self.redis.delete(sync_gate(self.namespace, tenant, connection))
            except RedisError as exc:  # the gate runs out by itself
                log.warning("sync gate not cleared", tenant=tenant, connection=connection, error=str(exc))

    def _sync(self, service: Service, tenant: str, connection: str) -> str:
        if not self._enabled(service, tenant, connection):
            return "dropped"
        started, clock = datetime.now(UTC), time.monotonic()
        try:
            result = sync_connection(service, connection, drain=False)
        except Exception as exc:  # logged with its traceback, recorded for /status
            log.exception("sync task crashed", tenant=tenant, connection=connection)
            try:
                record_run(service, connection, started, time.monotonic() - clock,
                           f"sync crashed: {type(exc).__name__}: {one_line(str(exc))}")
            except Exception:  # the store itself may be what failed: the line above stands
                log.exception("could not record the crashed sync", tenant=tenant, connection=connection)
            return "crashed"
        return "ok" if result.error is None else "error"

    def work(self, tenant: str, connection: str, receipt_ids: list[str]) -> str:
        """Work ``receipt_ids``; they leave the tenant's in-flight set when this ends, however it ends."""
        try:
            with self.running.hold(tenant, receipt_ids):
                service = self.service(tenant)
                if service is None or not self._enabled(service, tenant, connection):
                    return "dropped"
                if f"{tenant}/{connection}" in paused(self.redis.hgetall(paused_key(self.namespace)), time.time()):
                    log.info("batch handed back: its connection is being reconciled", tenant=tenant,
                             connection=connection)
                    return "paused"
                wiring = service.wiring(service.settings.connection(connection))
                # an owner of its own: two runs of one batch in this process (a redelivery while the first
                # still runs) must not share a lease, or both would work the same receipt at once
                owner = f"{service.owner}/{uuid.uuid4().hex[:6]}"
                report = Pipeline(wiring, owner, service.stop).work(receipt_ids)
        except Exception:  # the ids come back after a pause; the receipts wait in the store
            log.exception("work task crashed", tenant=tenant, connection=connection, receipts=len(receipt_ids))
            return "crashed"
        log.info("batch worked", tenant=tenant, connection=connection, receipts=len(receipt_ids),
                 outcomes=dict(report.outcomes), ledger_down=report.ledger_down)
        return "ok"

    def dunning(self, tenant: str) -> str:
        """Today's reminders of every connection of ``tenant`` (its [dunning] ladder)."""
        try:
            service = self.service(tenant)
            if service is None:
                return "dropped"
            if not service.settings.dunning.enabled:
                log.warning("dunning task of a tenant whose dunning is off, dropped", tenant=tenant)
                return "dropped"
            run = run_dunning(service)
        except Exception:  # logged with its traceback; tomorrow's run tries again
            log.exception("dunning task crashed", tenant=tenant)
            return "crashed"
        log.info("dunning run", tenant=tenant, day_off=run.day_off,
                 sent=sum(len(r.sent) for r in run.reports.values()),
                 failed=sum(len(r.failed) for r in run.reports.values()))
        return "ok"

    def reconcile(self, tenant: str, connection: str) -> str:
        """The daily reconciliation of one connection, with its receipts and its sync held back meanwhile."""
        slot, key = f"{tenant}/{connection}", paused_key(self.namespace)
        try:
            service = self.service(tenant)
            if service is None or not self._enabled(service, tenant, connection):
                return "dropped"
            self.redis.hset(key, slot, time.time() + PAUSE_SECONDS)
            try:
                self._quiet(service, connection)
                with self.locks.hold(tenant, connection, wait=QUIET_SECONDS) as held:
                    if not held:
                        log.warning("reconciliation skipped: the connection's sync did not end", tenant=tenant,
                                    connection=connection)
                        return "busy"
                    result = reconcile_and_record(service, connection)
            finally:
                self.redis.hdel(key, slot)
        except Exception:  # logged with its traceback; tomorrow's run tries again
            log.exception("reconcile task crashed", tenant=tenant, connection=connection)
            return "crashed"
        log.info("reconciled", tenant=tenant, connection=connection, drifts=len(result.drifts),
                 error=result.error or None)
        return "ok"

    @staticmethod
    def _quiet(service: Service, connection: str) -> None:
        """Wait until no receipt of ``connection`` is held by a worker, twice in a row (a batch
        lets its receipts go between its phases), for at most QUIET_SECONDS."""
        deadline, calm = time.monotonic() + QUIET_SECONDS, 0
        while calm < 2 and time.monotonic() < deadline:
            now = datetime.now(UTC)
            held = [r for r in service.store.receipts(connection, "pending", limit=100_000)
                    if r.lease_until is not None and r.lease_until > now]
            calm = 0 if held else calm + 1
            time.sleep(0.5)

    @staticmethod
    def _enabled(service: Service, tenant: str, connection: str) -> bool:
        try:
            enabled = service.settings.connection(connection).enabled
        except ConfigError:
            enabled = False
        if not enabled:
            log.warning("task of a connection not configured or disabled, dropped", tenant=tenant,
                        connection=connection)
        return enabled

    def stop(self) -> None:
        """Ask the receipts being worked to stop at their next step (a warm shutdown)."""
        with self._lock:
            services = list(self._served.values())
        for service in services:
            service.stop.set()

    def close(self) -> None:
        self.running.close()
        self.locks.close()
        if self._tenants is not None:
            self._tenants.close()  # the services' render workers
        self.redis.close()


def register(app: Celery, fleet: Callable[[], Fleet]) -> None:
    """Bind the fleet's tasks, by name, to ``app``; ``fleet`` gives the process's Fleet."""

    def sync(tenant: str, connection: str) -> str:
        return fleet().sync(tenant, connection)

    def work(tenant: str, connection: str, receipt_ids: list[str]) -> str:
        return fleet().work(tenant, connection, receipt_ids)

    def dunning(tenant: str) -> str:
        return fleet().dunning(tenant)

    def reconcile(tenant: str, connection: str) -> str:
        return fleet().reconcile(tenant, connection)

    app.task(name=SYNC_TASK)(sync)
    app.task(name=WORK_TASK)(work)
    app.task(name=DUNNING_TASK)(dunning)
    app.task(name=RECONCILE_TASK)(reconcile)
