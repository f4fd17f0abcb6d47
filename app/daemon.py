"""The background service: APScheduler runs each connection on its interval
(one run per connection at a time, with jitter) and drains the outbox between
runs; webhooks trigger targeted syncs under the same per-connection lock;
SIGTERM lets the step in progress finish, then exits.

A job that dies on an unexpected exception is logged, counted in the
metrics and, for a sync, recorded in the store at once (``last_error``), so
/status shows it before anyone reads the log."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from pouracquit.common.errors import one_line
from pouracquit.core.credit import PARIS
from pouracquit.core.pipeline import Pipeline
from pouracquit.core.service import Service
from pouracquit.core.sync import record_run, sync_connection
from pouracquit.core.webhooks import ConnectionWorker, WebhookIntake

from .admin import AdminServer
from .admin_http import route_stdlib_logs
from .dunning_cmd import daily_dunning
from .metrics import Metrics
from .report_cmd import RECONCILE_HOUR, RECONCILE_MINUTE, daily_reconcile

log = structlog.get_logger("pouracquit.daemon")
DRAIN_EVERY = 30.0


class ConnectionJobs:
    """The two scheduled jobs of one connection, sharing one lock so a sync
    and a drain of the same connection never overlap."""

    def __init__(self, service: Service, name: str, metrics: Metrics) -> None:
        self.service, self.name, self.metrics = service, name, metrics
        self.lock = threading.Lock()

    def sync(self) -> None:
        if self.service.stop.is_set():
            return
        with self.lock:
            started, clock = datetime.now(UTC), time.monotonic()
            try:
                result = sync_connection(self.service, self.name)
            except Exception as exc:  # noqa: BLE001 - logged with its traceback in _crashed
                self._crashed(started, time.monotonic() - clock, exc)
                return
            self.metrics.observe_sync(self.name, result.duration, "ok" if result.error is None else "error")
            self.metrics.count_outcomes(self.name, result.outcomes.items())

    def _crashed(self, started: datetime, seconds: float, exc: Exception) -> None:
        log.exception("sync job crashed", connection=self.name)
        self.metrics.observe_sync(self.name, seconds, "crashed")
        self.metrics.count_crash(self.name, "sync")
        try:
            record_run(self.service, self.name, started, seconds,
                       f"sync crashed: {type(exc).__name__}: {one_line(str(exc))}")
        except Exception:  # the store itself may be what failed: the log line above stands
            log.exception("could not record the crashed sync", connection=self.name)

    def drain(self) -> None:
        if self.service.stop.is_set() or not self.lock.acquire(blocking=False):
            return
        try:
            conn = self.service.settings.connection(self.name)
            drained = Pipeline(self.service.wiring(conn), self.service.owner, self.service.stop).drain()
            self.metrics.count_outcomes(self.name, drained.outcomes.items())
        except Exception:
            log.exception("drain job crashed", connection=self.name)
            self.metrics.count_crash(self.name, "drain")
        finally:
            self.lock.release()


def build_scheduler(service: Service, jobs_by_name: dict[str, ConnectionJobs]) -> BackgroundScheduler:
    route_stdlib_logs("apscheduler")  # "run skipped: still running" and job errors, as JSON lines too
    scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
    for conn in service.connections():
        jobs = jobs_by_name[conn.name]
        scheduler.add_job(jobs.sync, "interval", seconds=conn.interval_seconds, jitter=conn.jitter_seconds,
                          id=f"sync:{conn.name}", next_run_time=datetime.now(UTC))
        scheduler.add_job(jobs.drain, "interval", seconds=min(DRAIN_EVERY, conn.interval_seconds),
                          id=f"drain:{conn.name}")
        scheduler.add_job(daily_reconcile(service, conn.name, jobs.lock), "cron", hour=RECONCILE_HOUR,
                          minute=RECONCILE_MINUTE, timezone=PARIS, id=f"reconcile:{conn.name}")
    dunning = service.settings.dunning
    if dunning.enabled:  # once a day, at the configured time in France
        scheduler.add_job(daily_dunning(service), "cron", hour=dunning.hour, minute=dunning.minute,
                          timezone=PARIS, id="dunning")
    return scheduler


def scheduler_liveness(scheduler: BackgroundScheduler) -> Callable[[], str | None]:
    """Why the scheduler is not alive (None while it is), for /healthz."""

    def dead() -> str | None:
        thread = getattr(scheduler, "_thread", None)  # APScheduler 3's BackgroundScheduler runs its loop there
        if not scheduler.running or thread is None or not thread.is_alive():
            return "the scheduler thread is not running"
        return None

    return dead


def run_service(service: Service) -> int:
    """Run until SIGTERM or SIGINT; returns the process exit code."""
    for conn in service.connections():
        service.wiring(conn)  # configuration errors surface now, not at the first tick
    metrics = Metrics(service)
    jobs = {conn.name: ConnectionJobs(service, conn.name, metrics) for conn in service.connections()}
    workers = {name: ConnectionWorker(service, name, j.lock).start() for name, j in jobs.items()}
    scheduler = build_scheduler(service, jobs)
    # bound now: a busy port is a one-line error before any job runs
    admin = AdminServer(service, WebhookIntake(service, workers), metrics=metrics,
                        liveness=scheduler_liveness(scheduler))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        service.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler.start()
    admin.start()
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
