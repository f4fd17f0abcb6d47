"""The fleet's one scheduler: it decides what runs, the workers run it.

Any number of ``pouracquit scheduler`` processes may run; the one holding the
scheduler lock in the state store's database leads (fleet/locks.py), the
others retry every few seconds and one takes over when the leader dies. What
a new leader must know is kept in Redis, not in the leader: when each
connection's next sync is due, and which receipts are in flight.

Every tick the leader re-reads the tenants, sends a ``sync`` for each enabled
connection whose interval has passed, the daily jobs whose minute has come
(fleet/daily.py), then sends each tenant's due receipts in
``work`` batches, tenants in turn (the first tenant changes every tick), each
tenant with at most ``tenant_inflight`` receipts in flight. The queue thus
never holds more than that share of any tenant: a tenant with thousands of
receipts due has its share in the queue, and another tenant's single receipt
goes in behind at most one share of each tenant, not behind the thousands.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog
from celery import Celery
from kombu.exceptions import KombuError
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from pouracquit.common.errors import ConfigError, one_line
from pouracquit.core.config import Settings
from pouracquit.core.service import Service

from .celery_app import check_broker, make_app
from .daily import daily_jobs, paris, paused, paused_key
from .inflight import InFlight, redis_client
from .locks import Leadership
from .tasks import SYNC_TASK, WORK_TASK, sync_gate

if TYPE_CHECKING:
    from pouracquit.core.tenants import Tenants

log = structlog.get_logger("pouracquit.fleet.scheduler")

# a standby scheduler asks for the lock this often: the longest a fleet goes without a leader
STANDBY_SECONDS = 3.0
# a sync sent but not finished holds its connection's gate this long at most (its worker may have died)
SYNC_GATE_SECONDS = 600


@dataclass
class Tick:
    """What one tick sent."""

    syncs: list[tuple[str, str]] = field(default_factory=list)
    batches: list[tuple[str, str, list[str]]] = field(default_factory=list)
    daily: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def receipts(self, tenant: str) -> int:
        return sum(len(ids) for t, _, ids in self.batches if t == tenant)


class Dispatcher:
    """One tick of the scheduler's work (the leader calls ``tick`` on its interval)."""

    def __init__(self, app: Celery, tenants: Tenants, redis: Redis, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.app, self.tenants, self.redis, self.clock = app, tenants, redis, clock
        self.queue: str = app.conf.task_default_queue
        self.inflight = InFlight(redis, self.queue, clock)
        self.share, self.batch_size = settings.fleet.tenant_inflight, settings.fleet.batch_size
        self._turn = 0

    def tick(self) -> Tick:
        self.tenants.refresh()
        names = sorted(self.tenants.names())
        if names:
            first = self._turn % len(names)
            names = names[first:] + names[:first]
            self._turn += 1
        services: list[tuple[str, Service]] = []
        for name in names:
            try:
                services.append((name, self.tenants.service(name)))
            except ConfigError as exc:  # one company's broken config stops only that company
                log.error("tenant not scheduled", tenant=name, error=str(exc))
        tick = Tick()
        self._syncs(services, tick)
        self._daily(services, tick)
        held = paused(self.redis.hgetall(paused_key(self.queue)), self.clock())
        for name, service in services:
            self._dispatch(name, service, tick, held)
        return tick

    def _syncs(self, services: list[tuple[str, Service]], tick: Tick) -> None:
        key = f"{self.queue}:sync:next"
        due = {k.decode(): float(v) for k, v in self.redis.hgetall(key).items()}
        now, later = self.clock(), {}
        for name, service in services:
            for conn in service.connections():
                slot = f"{name}/{conn.name}"
                if now < due.get(slot, 0.0):
                    continue
                # at most one sync of a connection queued or running: a slow one is not piled up behind
                gate = sync_gate(self.queue, name, conn.name)
                if self.redis.set(gate, "1", nx=True, ex=SYNC_GATE_SECONDS):
                    try:
                        self.app.send_task(SYNC_TASK, args=[name, conn.name], queue=self.queue)
                    except BaseException:
                        self.redis.delete(gate)  # not sent: due again at the next tick
                        raise
                    tick.syncs.append((name, conn.name))
                later[slot] = now + conn.interval_seconds + random.uniform(0, conn.jitter_seconds)  # noqa: S311 - jitter, no secret
        if later:
            self.redis.hset(key, mapping=later)
        served = {f"{name}/{conn.name}" for name, service in services for conn in service.connections()}
        if gone := [slot for slot in due if slot not in served]:
            self.redis.hdel(key, *gone)

    def _daily(self, services: list[tuple[str, Service]], tick: Tick) -> None:
        key = f"{self.queue}:daily"
        last = {k.decode(): v.decode() for k, v in self.redis.hgetall(key).items()}
        now = paris(self.clock())
        jobs = [job for name, service in services for job in daily_jobs(name, service)]
        for job in jobs:
            if job.due(now, last.get(job.slot)):
                # the day first: a leader that dies right after sending does not have it sent twice
                self.redis.hset(key, job.slot, now.date().isoformat())
                try:
                    self.app.send_task(job.task, args=list(job.args), queue=self.queue)
                except BaseException:
                    self._unmark(key, job.slot, last.get(job.slot))  # not sent: due again at the next tick
                    raise
                tick.daily.append((job.task, job.args))
        if gone := set(last) - {job.slot for job in jobs}:
            self.redis.hdel(key, *gone)

    def _unmark(self, key: str, slot: str, before: str | None) -> None:
        if before is None:
            self.redis.hdel(key, slot)
        else:
            self.redis.hset(key, slot, before)

    def _dispatch(self, name: str, service: Service, tick: Tick, held: set[str]) -> None:
        inflight = self.inflight.live(name)
        room = self.share - len(inflight)
        for conn in service.connections():
            if room <= 0:
                return
            if f"{name}/{conn.name}" in held:  # its reconciliation runs
                continue
            due = service.store.due(conn.name, datetime.now(UTC), limit=room, skip=frozenset(inflight))
            for start in range(0, len(due), self.batch_size):
                ids = due[start:start + self.batch_size]
                self.inflight.add(name, ids)
                try:
                    self.app.send_task(WORK_TASK, args=[name, conn.name, ids], queue=self.queue)
                except BaseException:
                    self.inflight.remove(name, ids)  # not sent: due again at the next tick
                    raise
                tick.batches.append((name, conn.name, ids))
            room -= len(due)


def run_scheduler(settings: Settings, stop: threading.Event, *, tenants: Tenants | None = None) -> None:
    """Lead or stand by until ``stop``; a broker, Redis or store unusable at start is a ConfigError."""
    from pouracquit.core.tenants import Tenants

    app = make_app(settings)
    check_broker(app)
    redis = redis_client(settings.fleet.redis)
    tenants = tenants or Tenants.open(settings)
    leadership = Leadership(settings.store_url, f"scheduler:{settings.fleet.queue}")
    dispatcher = Dispatcher(app, tenants, redis, settings)
    leading = False
    try:
        while not stop.is_set():
            if not leadership.acquire():
                if leading:
                    log.warning("scheduler lost its lock, standing by")
                leading = False
                stop.wait(STANDBY_SECONDS)
                continue
            if not leading:
                log.info("scheduler leads", queue=settings.fleet.queue)
                leading = True
            started, pause = time.monotonic(), settings.fleet.tick_seconds
            try:
                tick = dispatcher.tick()
                if tick.syncs or tick.batches or tick.daily:
                    log.debug("tick", syncs=len(tick.syncs), batches=len(tick.batches), daily=len(tick.daily))
            except (RedisError, SQLAlchemyError, KombuError) as exc:  # down for a while: said once a few seconds
                log.error("scheduler tick failed", error=f"{type(exc).__name__}: {one_line(str(exc))}")
                pause = max(pause, STANDBY_SECONDS)
            except Exception:  # a bug of ours: its traceback, and the next tick tries again
                log.exception("scheduler tick failed")
            stop.wait(max(0.0, pause - (time.monotonic() - started)))
    finally:
        leadership.release()
        redis.close()
