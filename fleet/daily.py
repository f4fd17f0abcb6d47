"""The fleet's daily jobs, as ``pouracquit run`` has them: each tenant's dunning
run at its ``[dunning]`` hour and each connection's reconciliation at 05:30,
Europe/Paris.

The leader sends a job once its minute has come, at most once a day: the day
of the last sending is kept in Redis, so a new leader does not send it again.
A job whose minute passed while no scheduler led is sent late only within
``GRACE_SECONDS``; after that it waits for the next day, as the daemon's
scheduler skips a missed run (reminders do not go out in the evening because
the scheduler was down in the morning). Both jobs are safe to run twice: a
reminder is written once per ladder step (core/dunning/send.py), a
reconciliation only reads and records what it found.

A reconciliation must not catch receipts half-way between the ledger and the
CRM (they would show as drifts): while it runs its connection is paused, the
scheduler sends none of its receipts and a batch of it that arrives is handed
back, and the reconciliation starts once the receipts being worked are done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pouracquit.core.credit import PARIS
from pouracquit.core.service import Service

DUNNING_TASK = "pouracquit.dunning"
RECONCILE_TASK = "pouracquit.reconcile"
# the daemon's time (app/report_cmd.py RECONCILE_HOUR, RECONCILE_MINUTE): before the working day
RECONCILE_AT = (5, 30)
GRACE_SECONDS = 3600.0


@dataclass(frozen=True)
class DailyJob:
    task: str
    args: tuple[str, ...]
    hour: int
    minute: int

    @property
    def slot(self) -> str:
        return f"{self.task}:{'/'.join(self.args)}"

    def due(self, now: datetime, last: str | None) -> bool:
        """Whether to send it at ``now`` (Europe/Paris), ``last`` the day it was last sent."""
        at = now.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        return last != now.date().isoformat() and at <= now < at + timedelta(seconds=GRACE_SECONDS)


def daily_jobs(tenant: str, service: Service) -> list[DailyJob]:
    jobs = [DailyJob(RECONCILE_TASK, (tenant, conn.name), *RECONCILE_AT) for conn in service.connections()]
    dunning = service.settings.dunning
    if dunning.enabled:
        jobs.append(DailyJob(DUNNING_TASK, (tenant,), dunning.hour, dunning.minute))
    return jobs


def paris(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, PARIS)


def paused_key(namespace: str) -> str:
    """The Redis hash of the connections paused for their reconciliation: "tenant/connection" -> until."""
    return f"{namespace}:paused"


def paused(values: dict[bytes, bytes], now: float) -> set[str]:
    """The connections of a ``paused_key`` hash still paused at ``now``."""
    return {k.decode() for k, v in values.items() if float(v) > now}
