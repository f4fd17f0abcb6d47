"""``pouracquit receipts``: list, show, retry, send, pdf. A receipt is named
by its id or a prefix only it starts with (app/commands.py ``find_receipt``)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .cli_options import ConfigFile, Connection, ReceiptId, group, settings_of

receipts = group("receipts", "Inspect, retry and send receipts; export one's PDF.")


class ReceiptStatus(StrEnum):
    pending = "pending"
    done = "done"
    failed = "failed"
    quarantined = "quarantined"


@receipts.command("list")
def receipts_list(
    config: ConfigFile = None,
    connection: Connection = None,
    status: Annotated[ReceiptStatus | None, typer.Option("--status", help="only receipts in this status")] = None,
) -> int:
    """List receipts (a table on a terminal, tab-separated lines in a pipe) and quarantined records."""
    from .commands import receipts_list as list_them

    return list_them(settings_of(config), connection, status.value if status else None)


@receipts.command("show")
def receipts_show(receipt_id: ReceiptId, config: ConfigFile = None) -> int:
    """Print one receipt, its invoice and its events as JSON."""
    from .commands import receipts_show as show

    return show(settings_of(config), receipt_id)


@receipts.command("retry")
def receipts_retry(receipt_id: ReceiptId, config: ConfigFile = None) -> int:
    """Run a failed or waiting receipt's pipeline again now."""
    from .commands import receipts_retry as retry

    return retry(settings_of(config), receipt_id)


@receipts.command("send")
def receipts_send(
    receipt_id: ReceiptId,
    to: Annotated[str | None, typer.Option("--to", metavar="ADDRESS",
                                           help="send to this address instead of the buyer's")] = None,
    config: ConfigFile = None,
) -> int:
    """Send (or send again) a receipt's e-mail now; recorded in the audit trail."""
    from .commands import receipts_send as send

    return send(settings_of(config), receipt_id, to)


@receipts.command("pdf")
def receipts_pdf(
    receipt_id: ReceiptId,
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE",
                                             help="the file to write (default: the document's own name)")] = None,
    config: ConfigFile = None,
) -> int:
    """Copy a receipt's PDF out of the archive, checked against its hash."""
    from .commands import receipts_pdf as export

    return export(settings_of(config), receipt_id, out)
