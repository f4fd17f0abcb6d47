"""The fleet's Celery application, built from the deployment config's ``[fleet]``.

Celery carries work to the workers; it guarantees nothing about doing it once.
A task may run twice (redelivered after its worker died, or sent again after
its claim ran out): the engine's receipt leases, intents, idempotency keys and
unique constraints are what keep every receipt single, so every task is safe
to repeat, and the settings below choose redelivery over loss.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from celery import Celery

from pouracquit.common.errors import ConfigError, one_line
from pouracquit.core.config import Settings

if TYPE_CHECKING:
    from .tasks import Fleet


def make_app(settings: Settings, *, fleet: Fleet | None = None) -> Celery:
    """The Celery app of this deployment with the fleet's tasks (run by ``fleet``,
    or by a Fleet made on the first task: the scheduler only sends them).

    ``[fleet] queue`` is the one queue the scheduler sends to and the workers
    read; it also prefixes the fleet's Redis keys, so two deployments sharing a
    broker and a Redis keep apart by it."""
    from .tasks import Fleet, register

    queue = settings.fleet.queue
    app = Celery("pouracquit", broker=settings.fleet.broker, set_as_current=False)
    # each setting: https://docs.celeryq.dev/en/stable/userguide/configuration.html#<name, dashes for underscores>
    app.conf.update(
        # acknowledged once the task returns, so a worker that dies mid-task leaves its message to be
        # delivered again (RabbitMQ when the connection drops, Redis after its visibility timeout;
        # https://docs.celeryq.dev/en/stable/glossary.html#term-late-acknowledgment)
        task_acks_late=True,
        # and also when only the process executing it died (a prefork child killed by the OOM killer)
        task_reject_on_worker_lost=True,
        # one message reserved per pool slot: a batch waits in the queue, where any worker can take it,
        # not behind a busy worker's current task
        worker_prefetch_multiplier=1,
        # nothing reads a task's return value: the store holds every outcome
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue,
        # the start-up check (check_broker) has said a wrong broker in one line; a blip after it is retried
        broker_connection_retry_on_startup=True,
        # pouracquit's structlog set-up stays the process's logging
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    if fleet is None:
        register(app, cache(lambda: Fleet(settings)))
    else:
        held = fleet
        register(app, lambda: held)
    return app


def check_broker(app: Celery) -> None:
    """Connect to the broker once; a bad URL or an unreachable broker is a ConfigError."""
    try:
        conn = app.connection_for_write()
    except (KeyError, ValueError) as exc:  # kombu's "No such transport" and malformed URLs
        raise ConfigError(f"fleet.broker: not a broker URL ({one_line(str(exc))}); expected amqp://USER:PASSWORD"
                          f"@HOST:5672// (RabbitMQ) or redis://HOST:6379/0") from None
    where = conn.as_uri()  # with the password masked
    try:
        conn.ensure_connection(max_retries=1, interval_start=0.5, timeout=5)  # one retry: a blip is no error
    except Exception as exc:  # noqa: BLE001 - kombu raises what each transport's client raises
        raise ConfigError(f"fleet.broker {where} unreachable: {one_line(str(exc))}") from None
    finally:
        conn.release()
