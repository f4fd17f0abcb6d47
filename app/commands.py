"""Terminal front-ends of ``sync``, ``backfill`` and ``receipts``: progress, tables, exit codes.

A receipt is named by its id or a prefix only it starts with (``find_receipt``)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlmodel import col as column
from sqlmodel import select

from pouracquit.common.errors import ConfigError, PermanentError, one_line
from pouracquit.core.config import Settings
from pouracquit.core.pipeline import Pipeline
from pouracquit.core.service import Service
from pouracquit.core.sync import Progress as SyncProgress
from pouracquit.core.sync import SyncResult, sync_connection
from pouracquit.state.db import open_engine
from pouracquit.state.store import Store
from pouracquit.state.tables import Receipt

from .refusals import Ambiguous, NotFound


def _stdout() -> Console:
    """The summary console: a terminal's own width, and wide enough in a pipe or a log
    (rich would assume 80 columns there and fold every table)."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _open(settings: Settings, dry_run: bool) -> Service:
    url = settings.store_url
    if dry_run and url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        # nothing stored yet: compare against an empty in-memory store, create no file
        return Service(settings=settings, store=Store(open_engine("sqlite://")))
    return Service.open(settings)


def _run_with_bar(service: Service, name: str, dry_run: bool, console: Console) -> SyncResult:
    if not console.is_terminal:
        return sync_connection(service, name, dry_run=dry_run)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True)
    with bar:
        reading = bar.add_task(f"{name}: reading CRM", total=None)
        working = bar.add_task(f"{name}: receipts", total=0, visible=False)
        hooks = SyncProgress(
            on_page=lambda seen: bar.update(reading, completed=seen),
            on_receipts=lambda total: bar.update(working, total=total, visible=True),
            on_receipt=lambda outcome: bar.advance(working),
        )
        return sync_connection(service, name, dry_run=dry_run, progress=hooks)


def sync_command(settings: Settings, connection: str | None, dry_run: bool, record: str | None = None) -> int:
    """One pass; exit 1 when any receipt failed or a connection could not sync.
    ``record``: a directory where every vendor exchange is written, redacted (core.recording)."""
    from pouracquit.core.recording import recording

    service = _open(settings, dry_run)
    err = Console(stderr=True)
    out = Console()
    try:
        with recording(record, service):
            results = [_run_with_bar(service, conn.name, dry_run, err) for conn in service.connections(connection)]
    finally:
        service.close()
    if dry_run:
        for result in results:
            plan = Table(title=f"{result.connection}: dry run, would create {len(result.planned)} receipts")
            for col in ("CRM id", "number", "customer", "amount"):
                plan.add_column(col)
            for p in result.planned:
                plan.add_row(*(Text(cell) for cell in (p.source_id, p.number, p.customer, p.amount)))
            out.print(plan)
    return _report(service, results, "pouracquit sync" + (" (dry run: nothing written)" if dry_run else ""),
                   out, err)


def backfill_command(settings: Settings, connection: str, since: date, book: bool) -> int:
    """Documents for invoices paid from ``since`` up to the connection's start date."""
    from .backfill import backfill

    service = Service.open(settings)
    err, out = Console(stderr=True), _stdout()
    try:
        result = backfill(service, settings.connection(connection).name, since, book=book)
    finally:
        service.close()
    out.print(f"{connection}: {len(result.planned)} invoices paid from {since} to {result.start_date} queued"
              + ("" if book else " (not booked in the ledger)"), markup=False)
    return _report(service, [result], "pouracquit backfill", out, err)


def _report(service: Service, results: list[SyncResult], title: str, out: Console, err: Console) -> int:
    """The summary table, then one line per thing a person must look at; the exit code."""
    summary = Table(title=title)
    for col in ("connection", "invoices seen", "paid", "receipts done", "retrying", "failed", "quarantined",
                "rejected records", "seconds"):
        summary.add_column(col, justify="right")
    for r in results:
        summary.add_row(r.connection, str(r.seen), str(r.events["paid"]), str(r.outcomes["done"]),
                        str(r.outcomes["retrying"]), str(r.outcomes["failed"]), str(r.outcomes["quarantined"]),
                        str(len(r.rejected)), f"{r.duration:.1f}")
    out.print(summary)
    calls = service.meter.snapshot()
    if calls:
        out.print("API calls: " + ", ".join(f"{v} {n}" for v, n in sorted(calls.items())))
    for r in results:
        if r.before_start:  # plain lines: a pipe must not get them wrapped at 80 columns
            print(f"{r.connection}: {r.before_start} invoices paid before the start date {r.start_date} get no "
                  f"receipt; `pouracquit backfill --connection {r.connection} --from DATE` makes them")
    # one line per thing a person must look at, whatever the terminal width
    for r in results:
        if r.error:
            print(f"{r.connection}: sync failed: {one_line(r.error)}", file=sys.stderr)
        for rid, reason in r.errors.items():
            print(f"{r.connection}: receipt {rid}: {one_line(reason)}", file=sys.stderr)
        for sid, reason in r.rejected.items():
            print(f"{r.connection}: record {sid} quarantined: {one_line(reason)}", file=sys.stderr)
        for sid, notice in r.notices:
            print(f"{r.connection}: record {sid}: {notice}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


def _print_rows(out: Console, title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table on a terminal; tab-separated lines (header first) in a pipe."""
    if not rows:
        return
    if not out.is_terminal:
        print("\t".join(columns))
        for row in rows:
            print("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row))
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell[:120]) for cell in row))  # CRM text is never rich markup
    out.print(table)


def find_receipt(service: Service, prefix: str) -> Receipt:
    """The receipt whose id is ``prefix``, else the only one whose id starts with it."""
    with service.store.session() as session:
        exact = session.get(Receipt, prefix)
        if exact is not None:
            return exact
        ids = list(session.exec(select(Receipt.id).where(column(Receipt.id).startswith(prefix, autoescape=True))
                                .order_by(column(Receipt.id)).limit(6)))
        if len(ids) == 1:
            found = session.get(Receipt, ids[0])
            assert found is not None
            return found
    if not ids:
        raise NotFound(f"no receipt {prefix!r} (give its id or a prefix that only it starts with)")
    more = ", ..." if len(ids) > 5 else ""
    raise Ambiguous(f"receipt id prefix {prefix!r} is ambiguous: {', '.join(ids[:5])}{more}")


def receipts_send(settings: Settings, receipt_id: str, to: str | None) -> int:
    """Send one receipt's e-mail now (core/delivery/on_demand.py); exit 1 when the server refused or was away."""
    from pouracquit.common.errors import RetryableError
    from pouracquit.core.delivery.on_demand import send_on_demand

    service = Service.open(settings)
    found = find_receipt(service, receipt_id)
    try:
        sent = send_on_demand(service, found, to)
    except (PermanentError, RetryableError) as exc:
        Console(stderr=True).print(f"receipt {found.id}: not sent: {exc}", markup=False)
        return 1
    Console().print(f"receipt {found.id}: e-mail sent to {sent.to} ({sent.message_id}, server: {sent.answer})",
                    markup=False)
    return 0


def _receipt_json(service: Service, receipt_id: str) -> dict[str, object]:
    r = find_receipt(service, receipt_id)
    data = r.model_dump(exclude={"invoice_json"})
    data["invoice"] = json.loads(r.invoice_json)
    data["events"] = [
        {"seq": e.seq, "at": e.at, "kind": e.kind, "data": json.loads(e.data)} for e in service.store.events(r.id)
    ]
    return data


def _export_pdf(service: Service, receipt: Receipt, out_file: Path | None) -> int:
    """Copy a receipt's archived PDF out of the archive (checked against its hash)."""
    if receipt.document_sha256 is None or receipt.document_name is None:
        print(f"pouracquit: receipt {receipt.id} has no archived document yet (step {receipt.step})", file=sys.stderr)
        return 1
    archive = service.wiring(service.settings.connection(receipt.connection)).archive
    try:
        content = archive.read(receipt.document_sha256)
    except (OSError, PermanentError) as exc:
        print(f"pouracquit: receipt {receipt.id}: {exc} (see `pouracquit archive verify`)", file=sys.stderr)
        return 1
    target = out_file or Path(receipt.document_name)
    try:
        target.write_bytes(content)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}") from None
    print(f"{target} ({len(content)} bytes, sha256 {receipt.document_sha256})")
    return 0


def receipts_list(settings: Settings, connection: str | None, status: str | None) -> int:
    service = Service.open(settings)
    out = Console()
    _print_rows(out, "receipts", ("id", "connection", "CRM id", "number", "customer", "amount", "status", "step",
                                  "reason"),
                [(r.id, r.connection, r.source_id, r.number or "", r.customer, f"{r.amount} {r.currency}",
                  r.status, r.step, r.last_error or "") for r in service.store.receipts(connection, status)])
    if status in (None, "quarantined"):
        _print_rows(out, "records quarantined at intake", ("connection", "CRM id", "reason"),
                    [(q.connection, q.source_id, q.reason) for q in service.store.quarantined(connection)])
    return 0


def receipts_show(settings: Settings, receipt_id: str) -> int:
    print(json.dumps(_receipt_json(Service.open(settings), receipt_id), indent=2, default=str, ensure_ascii=False))
    return 0


def receipts_pdf(settings: Settings, receipt_id: str, out_file: Path | None) -> int:
    service = Service.open(settings)
    return _export_pdf(service, find_receipt(service, receipt_id), out_file)


def receipts_retry(settings: Settings, receipt_id: str) -> int:
    """Make a receipt due now with fresh attempts and run its pipeline; exit 0 once it is done."""
    service = Service.open(settings)
    out = Console()
    found = find_receipt(service, receipt_id)
    if found.status == "done":
        out.print(f"receipt {found.id} is already done", markup=False)
        return 0
    with service.store.unit() as u:
        u.requeue(found.id)
    conn = settings.connection(found.connection)
    outcome, error = Pipeline(service.wiring(conn), service.owner).process(found.id)
    out.print(f"receipt {found.id}: {outcome}" + (f" ({error})" if error else ""), markup=False)
    return 0 if outcome == "done" else 1
