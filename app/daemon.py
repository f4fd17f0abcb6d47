"""The background service: APScheduler runs each connection on its interval
(one run per connection at a time, with jitter) and drains the outbox between
runs; webhooks trigger targeted syncs under the same per-connection lock;
SIGTERM lets the step in progress finish, then exits."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from pouracquit.core.credit import PARIS
from pouracquit.core.pipeline import Pipeline
from pouracquit.core.service import Service
from pouracquit.core.sync import sync_connection
from pouracquit.core.webhooks import ConnectionWorker, WebhookIntake

from .admin import AdminServer
from .dunning_cmd import daily_dunning

log = structlog.get_logger("pouracquit.daemon")
DRAIN_EVERY = 30.0


class ConnectionJobs:
    """The two scheduled jobs of one connection, sharing one lock so a sync
    and a drain of the same connection never overlap."""

    def __init__(self, service: Service, name: str) -> None:
        self.service, self.name = service, name
        self.lock = threading.Lock()

    def sync(self) -> None:
        if self.service.stop.is_set():
            return
        with self.lock:
            try:
                sync_connection(self.service, self.name)
            except Exception:
                log.exception("sync job crashed", connection=self.name)

    def drain(self) -> None:
        if self.service.stop.is_set() or not self.lock.acquire(blocking=False):
            return
        try:
            conn = self.service.settings.connection(self.name)
            Pipeline(self.service.wiring(conn), self.service.owner, self.service.stop).drain()
        except Exception:
            log.exception("drain job crashed", connection=self.name)
        finally:
            self.lock.release()


def build_scheduler(service: Service, jobs_by_name: dict[str, ConnectionJobs]) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
    for conn in service.connections():
        jobs = jobs_by_name[conn.name]
        scheduler.add_job(jobs.sync, "interval", seconds=conn.interval_seconds, jitter=conn.jitter_seconds,
                          id=f"sync:{conn.name}", next_run_time=datetime.now(UTC))
        scheduler.add_job(jobs.drain, "interval", seconds=min(DRAIN_EVERY, conn.interval_seconds),
                          id=f"drain:{conn.name}")
    dunning = service.settings.dunning
    if dunning.enabled:  # once a day, at the configured time in France
        scheduler.add_job(daily_dunning(service), "cron", hour=dunning.hour, minute=dunning.minute,
                          timezone=PARIS, id="dunning")
    return scheduler


def run_service(service: Service) -> int:
    """Run until SIGTERM or SIGINT; returns the process exit code."""
    for conn in service.connections():
        service.wiring(conn)  # configuration errors surface now, not at the first tick
    jobs = {conn.name: ConnectionJobs(service, conn.name) for conn in service.connections()}
    workers = {name: ConnectionWorker(service, name, j.lock).start() for name, j in jobs.items()}
    admin = AdminServer(service, WebhookIntake(service, workers)).start()
    scheduler = build_scheduler(service, jobs)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        service.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler.start()
    log.info("service started", connections=[c.name for c in service.connections()])
    while not service.stop.wait(1.0):
        pass
    scheduler.shutdown(wait=True)
    for worker in workers.values():
        worker.join(timeout=5)
    admin.stop()
    service.close()
    log.info("service stopped")
    return 0
