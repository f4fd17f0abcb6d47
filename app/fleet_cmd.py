"""``pouracquit worker`` and ``pouracquit scheduler``: the fleet's two processes.

A worker runs the fleet's Celery tasks (fleet/tasks.py) on a pool of threads:
a receipt waits on vendors far more than it computes, and the renderer has its
own processes when ``render_processes`` asks for them. SIGTERM is Celery's warm
shutdown: no new task is taken, the receipts being worked stop at their next
step (their leases released, the scheduler sends them again to another
worker) and the process exits. The scheduler (fleet/dispatch.py) leads or
stands by until SIGTERM or SIGINT.

``commands`` holds both; app/cli.py adds them at the top level with
``app.add_typer(commands)``. Celery loads only when one of them runs.
"""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from types import FrameType
from typing import Annotated

import structlog
import typer

from pouracquit.core.config import Settings

from . import logs
from .admin_http import route_stdlib_logs
from .cli_options import ConfigFile, deployment_of

log = structlog.get_logger("pouracquit.fleet")


class Pool(StrEnum):
    threads = "threads"
    solo = "solo"


def _service_logs(settings: Settings) -> None:
    if settings.log.format == "auto":  # a service's log is read by machines, as `pouracquit run`'s is
        logs.configure("json", settings.log.level)
    for name in ("celery", "kombu", "amqp"):
        route_stdlib_logs(name)


def worker_command(settings: Settings, concurrency: int = 4, pool: str = "threads") -> int:
    """Run a Celery worker in this process until a warm shutdown; returns the exit code."""
    from celery import signals

    from pouracquit.fleet.celery_app import check_broker, make_app
    from pouracquit.fleet.tasks import Fleet

    _service_logs(settings)
    concurrency = 1 if pool == "solo" else concurrency  # solo runs its one task in the main thread
    fleet = Fleet(settings)  # Redis checked now
    queue = settings.fleet.queue
    try:
        app = make_app(settings, fleet=fleet)
        check_broker(app)
        wired = fleet.warm()  # the store opened, the tenants read and their connectors built before any task

        def shutting_down(**_: object) -> None:
            log.info("worker stopping: receipts in progress stop at their next step")
            fleet.stop()

        # Celery sends it on SIGTERM before it waits for the tasks running (the warm shutdown)
        signals.worker_shutting_down.connect(shutting_down, weak=False)
        # Celery leaves logging alone when this signal has a receiver
        signals.setup_logging.connect(lambda **_: None, weak=False)
        worker = app.Worker(concurrency=concurrency, pool=pool, queues=[queue], quiet=True,
                            without_mingle=True, without_gossip=True, loglevel="WARNING")
        log.info("worker started", queue=queue, pool=pool, concurrency=concurrency, connections=wired)
        worker.start()
        code = int(worker.exitcode or 0)
    finally:
        fleet.close()
    log.info("worker stopped", exit_code=code)
    return code


def scheduler_command(settings: Settings) -> int:
    """Lead or stand by until SIGTERM or SIGINT; returns the exit code."""
    from pouracquit.fleet.dispatch import run_scheduler

    _service_logs(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run_scheduler(settings, stop)
    log.info("scheduler stopped")
    return 0


commands = typer.Typer()


@commands.command()
def worker(
    config: ConfigFile = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64,
                                             help="tasks this worker runs at once")] = 4,
    pool: Annotated[Pool, typer.Option("--pool", help="threads, or solo: one task at a time")] = Pool.threads,
) -> int:
    """Run a fleet worker: syncs and receipts from the broker, on the shared PostgreSQL store."""
    return worker_command(deployment_of(config), concurrency, pool.value)


@commands.command()
def scheduler(config: ConfigFile = None) -> int:
    """Run the fleet's scheduler (one leads, others stand by): syncs on their interval, receipts to workers."""
    return scheduler_command(deployment_of(config))
