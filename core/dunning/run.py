"""One dunning run over the configured connections: what `pouracquit dunning` and the
daily job of `pouracquit run` call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pouracquit.common.errors import ConfigError
from pouracquit.connectors.base import EmailLog
from pouracquit.core.credit import PARIS
from pouracquit.core.service import Service

from .ladder import day_off
from .plan import Chase, plan
from .send import DunningReport, Outbox, log_unlogged, mark_interrupted, send_reminders


@dataclass
class DunningRun:
    """One run: ``day_off`` says why nothing went out today; ``plans`` per connection."""

    today: date
    day_off: str | None = None
    plans: dict[str, list[Chase]] = field(default_factory=dict)
    reports: dict[str, DunningReport] = field(default_factory=dict)
    interrupted: int = 0


def run_dunning(service: Service, *, dry_run: bool = False, now: datetime | None = None,
                only: str | None = None) -> DunningRun:
    """Chase today's overdue invoices of every enabled connection (``now`` injectable for tests)."""
    settings = service.settings
    cfg = settings.dunning
    now = now or datetime.now(UTC)
    today = now.astimezone(PARIS).date()
    run = DunningRun(today=today, day_off=day_off(today, cfg))
    outbox = None
    if not dry_run:
        if not cfg.enabled:
            raise ConfigError("dunning.enabled is false: set it to true to send reminders (--dry-run lists them)")
        outbox = Outbox.of(settings)
    for conn in service.connections(only):
        if not dry_run:
            run.interrupted += mark_interrupted(service.store, conn.name)
        if run.day_off and not dry_run:
            continue
        source = service.wiring(conn).source
        crm = source if isinstance(source, EmailLog) and settings.email.log_on_crm else None
        if outbox is not None and crm is not None:
            log_unlogged(service.store, conn.name, crm, outbox.sender)
        run.plans[conn.name] = chases = plan(service.store, source, conn.name, cfg, today, dry_run=dry_run)
        if outbox is not None:
            run.reports[conn.name] = send_reminders(service.store, chases, outbox, now, crm)
    return run
