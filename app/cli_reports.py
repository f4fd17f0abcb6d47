"""``pouracquit report``: payments (who pays late, what is owed) and reconcile
(CRM, receipts and ledger compared at amount level); see docs/reports.md."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from .cli_options import ConfigFile, Connection, group, settings_of

report = group("report", "Payment behaviour per customer; CRM ↔ ledger reconciliation.")

ReportFormat = StrEnum("ReportFormat", ["table", "csv", "json", "html"])  # type: ignore[misc]
ReportFrom = Annotated[str | None, typer.Option("--from", metavar="YYYY-MM-DD", help="first day of the period")]
Format = Annotated[ReportFormat, typer.Option("--format", help="how to print the report")]


@report.command("payments")
def report_payments(start: ReportFrom = None, end: Annotated[str | None, typer.Option(
        "--to", metavar="YYYY-MM-DD", help="last day (default today)")] = None,
        connection: Connection = None, fmt: Format = "table", config: ConfigFile = None) -> int:
    """Per customer and currency: days to pay, lateness, open amount by age, DSO, segment."""
    from .report_cmd import payments_command

    return payments_command(settings_of(config), start=start, end=end, connection=connection, fmt=str(fmt))


@report.command("reconcile")
def report_reconcile(start: ReportFrom = None, connection: Connection = None, fmt: Format = "table",
                     config: ConfigFile = None) -> int:
    """Compare the CRM, the receipts and the ledger at amount level; exit 1 on any drift."""
    from .report_cmd import reconcile_command

    return reconcile_command(settings_of(config), start=start, connection=connection, fmt=str(fmt))
