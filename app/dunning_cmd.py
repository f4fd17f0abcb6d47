"""`pouracquit dunning [--dry-run]`: who is chased today and with which step, then the
reminders sent (or, with --dry-run, nothing written and nothing sent)."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from rich.console import Console
from rich.table import Table

from pouracquit.core.config import Settings
from pouracquit.core.dunning.plan import Chase
from pouracquit.core.dunning.run import DunningRun, run_dunning
from pouracquit.core.service import Service


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=200)  # a pipe gets unfolded rows


def _table(run: DunningRun, settings: Settings) -> Table:
    steps = settings.dunning.steps
    table = Table(title=f"Reminders due on {run.today:%d/%m/%Y} (Europe/Paris)", title_justify="left")
    for name in ("connection", "invoice", "customer", "due", "days late", "step", "amount due", "to"):
        table.add_column(name, justify="right" if name in ("days late", "amount due") else "left")
    for conn, chases in run.plans.items():
        for c in chases:
            if c.reason:
                continue
            table.add_row(conn, c.number, c.customer, f"{c.due_date:%d/%m/%Y}" if c.due_date else "",
                          str(c.due.days_late), f"{c.due.step + 1}/{len(steps)} {c.due.template}",
                          f"{c.amount_due} {c.currency}", c.recipient)
    return table


def _not_chased(run: DunningRun) -> list[Chase]:
    return [c for chases in run.plans.values() for c in chases if c.reason]


def dunning_command(settings: Settings, *, dry_run: bool, connection: str | None = None) -> int:
    """Exit 0 when every due reminder went out (or would), 1 when some were refused or
    must wait for the SMTP server; configuration errors are the caller's exit 2."""
    service = Service.open(settings)
    try:
        run = run_dunning(service, dry_run=dry_run, only=connection)
    finally:
        service.close()
    out = _console()
    if run.day_off:
        out.print(f"{run.today:%d/%m/%Y} is a day off ({run.day_off}): no reminder goes out today"
                  + ("; the list shows what the next run would consider" if dry_run else ""))
    if run.interrupted:
        out.print(f"{run.interrupted} reminder(s) interrupted by an earlier crash: not sent again (status unknown)")
    if run.plans:
        out.print(_table(run, settings))
    for c in _not_chased(run):
        out.print(f"not chased: {c.connection} {c.number or c.source_id}: {c.reason}", highlight=False)
    if dry_run:
        count = sum(1 for chases in run.plans.values() for c in chases if not c.reason)
        out.print(f"dry run: {count} reminder(s) would be sent, nothing written")
        return 0
    sent = sum(len(r.sent) for r in run.reports.values())
    problems = [(c, why) for r in run.reports.values() for c, why in (*r.retry, *r.failed)]
    for c, why in problems:
        out.print(f"not sent: {c.connection} {c.number}: {why}", highlight=False)
    out.print(f"reminders sent: {sent}")
    return 1 if problems else 0


def daily_dunning(service: Service) -> Callable[[], None]:
    """The job `pouracquit run` schedules at dunning.hour:minute, Europe/Paris."""
    log = structlog.get_logger("pouracquit.dunning")

    def job() -> None:
        if service.stop.is_set():
            return
        try:
            run = run_dunning(service)
        except Exception:  # logged with its traceback; tomorrow's run tries again
            log.exception("dunning job crashed")
            return
        log.info("dunning run", day_off=run.day_off, sent=sum(len(r.sent) for r in run.reports.values()),
                 retry=sum(len(r.retry) for r in run.reports.values()),
                 failed=sum(len(r.failed) for r in run.reports.values()))

    return job
