"""The ``pouracquit`` command: sync, run, receipts, status, connect, render,
archive, doctor, check, keygen, sandbox, demo.

Each subcommand imports what it needs when it runs, so `keygen` or a
configuration error answers without loading the PDF renderer or the SDKs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from pouracquit.common.errors import ConfigError
from pouracquit.core.config import Settings, load_settings

from . import logs

DEFAULT_CONFIG = "pouracquit.toml"


def _settings(args: argparse.Namespace) -> Settings:
    path = Path(args.config or os.environ.get("POURACQUIT_CONFIG") or DEFAULT_CONFIG)
    settings = load_settings(path)
    logs.configure(settings.log.format, settings.log.level)
    return settings


def _cmd_sync(args: argparse.Namespace) -> int:
    from .commands import sync_command

    return sync_command(_settings(args), connection=args.connection, dry_run=args.dry_run, record=args.record)


def _cmd_backfill(args: argparse.Namespace) -> int:
    from .commands import backfill_command

    return backfill_command(_settings(args), args.connection, args.since, book=not args.no_ledger)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a number of invoices from 1 to 100000, got {text!r}")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    from pouracquit.core.service import Service

    from .daemon import run_service

    settings = _settings(args)
    if settings.log.format == "auto":
        logs.configure("json", settings.log.level)
    return run_service(Service.open(settings))


def _cmd_receipts(args: argparse.Namespace) -> int:
    from .commands import receipts_command

    out = Path(args.out) if args.out else None
    return receipts_command(_settings(args), args.action, args.id, args.connection, args.status, out)


def _cmd_status(args: argparse.Namespace) -> int:
    from pouracquit.core.service import Service

    from .status import connection_status

    print(json.dumps(connection_status(Service.open(_settings(args))), indent=2, default=str))
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from .render_cmd import render_command

    return render_command(_settings(args), Path(args.invoice), Path(args.out) if args.out else None, args.number)


def _cmd_archive(args: argparse.Namespace) -> int:
    from pouracquit.core.audit import audit
    from pouracquit.core.service import Service

    settings = _settings(args)
    report = audit(Service.open(settings).store, settings.archive)
    for finding in report.findings:
        print(f"{finding.where}: {finding.problem}")
    verdict = "OK" if report.ok else f"{len(report.findings)} problem(s)"
    print(f"archive verify: {report.documents} documents, {report.events} audit entries: {verdict}")
    return 0 if report.ok else 1


def _cmd_connect(args: argparse.Namespace) -> int:
    from .connect import connect_command

    return connect_command(_settings(args), args.vendor, connection=args.connection, port=args.port,
                           open_browser=not args.no_browser)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor_command

    return doctor_command(_settings(args), connection=args.connection)


def _cmd_check(args: argparse.Namespace) -> int:
    from .check_cmd import check_command

    return check_command([Path(f) for f in args.files], paid=args.paid, level=args.level)


def _cmd_keygen(args: argparse.Namespace) -> int:
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())
    return 0


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from .demo import sandbox_command

    logs.configure("console", "warning")
    return sandbox_command(args.source, args.ledger, args.write_config, args.count)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_command

    logs.configure("console", "warning")
    return demo_command(args.source, args.ledger, Path(args.out), args.count, as_json=args.json)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pouracquit", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], help_text: str,
                config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if config:
            p.add_argument("--config", help=f"TOML config file (default $POURACQUIT_CONFIG or ./{DEFAULT_CONFIG})")
        p.set_defaults(run=run)
        return p

    p = command("sync", _cmd_sync, "Run one pass over every connection and exit.")
    p.add_argument("--connection", help="only this connection")
    p.add_argument("--dry-run", action="store_true", help="print what would be created; write nothing anywhere")
    p.add_argument("--record", metavar="DIR", help="write every vendor request and answer, redacted, into DIR "
                   "(replayable by tests; see docs/recording.md)")
    p = command("backfill", _cmd_backfill, "Make the documents of invoices paid before a connection's start date.")
    p.add_argument("--connection", required=True, help="the connection to backfill")
    p.add_argument("--from", dest="since", required=True, type=_day, help="first payment day to include (YYYY-MM-DD)")
    p.add_argument("--no-ledger", action="store_true", help="archive and attach to the CRM, book nothing")
    command("run", _cmd_run, "Run the background service with its admin HTTP API.")
    p = command("receipts", _cmd_receipts, "Inspect and retry receipts; export one's PDF.")
    p.add_argument("action", choices=["list", "show", "retry", "pdf"])
    p.add_argument("id", nargs="?", help="receipt id (or unique prefix) for show, retry and pdf")
    p.add_argument("--out", help="pdf: the file to write (default: the document's own name)")
    p.add_argument("--connection")
    p.add_argument("--status", choices=["pending", "done", "failed", "quarantined"])
    command("status", _cmd_status, "Print each connection's state as JSON.")
    p = command("render", _cmd_render, "Render one document from a JSON invoice (for template work).")
    p.add_argument("--invoice", required=True, help="invoice JSON file (pouracquit's invoice shape)")
    p.add_argument("--out", help="PDF file to write (default: the receipt's own file name)")
    p.add_argument("--number", help="number to print when the invoice has none")
    p = command("archive", _cmd_archive, "Re-hash every archived document and walk the audit chain.")
    p.add_argument("action", choices=["verify"])
    p = command("connect", _cmd_connect, "Authorise pouracquit at a vendor (OAuth) and keep its tokens.")
    p.add_argument("vendor", help="the vendor of a source or ledger in the config (hubspot, quickbooks, ...)")
    p.add_argument("--connection", help="the connection to authorise (default: the only one using the vendor)")
    p.add_argument("--port", type=int, default=8788, help="local port of the redirect listener (default 8788)")
    p.add_argument("--no-browser", action="store_true", help="print the authorisation URL, do not open it")
    p = command("doctor", _cmd_doctor, "Check every connection's setup against the live vendors; exit 1 on a problem.")
    p.add_argument("--connection", help="only this connection")
    p = command("check", _cmd_check, "Validate Factur-X PDFs with the official XSD and EN16931/FR-CTC schematrons.",
                config=False)
    p.add_argument("files", nargs="+", metavar="FILE", help="Factur-X PDF (or its XML)")
    p.add_argument("--paid", action="store_true", help="also require a fully paid document (BT-115 = 0)")
    p.add_argument("--level", choices=["xsd", "schematron"], default="schematron",
                   help="xsd: the schema alone; schematron (default): schema and business rules")
    command("keygen", _cmd_keygen, "Print a new store.encryption_key (a Fernet key).", config=False)
    for name, run, help_text in (
        ("sandbox", _cmd_sandbox, "Run the vendor emulators alone, seeded with demo data."),
        ("demo", _cmd_demo, "Run one sync on the built-in sandboxes and print a summary."),
    ):
        p = command(name, run, help_text, config=False)
        p.add_argument("--source", help="CRM sandbox (default: the first CRM, HubSpot)")
        p.add_argument("--ledger", help="accounting sandbox (default: the first ledger, QuickBooks Online)")
        p.add_argument("--count", type=_count, default=60, help="demo invoices to seed (default 60)")
        if name == "sandbox":
            p.add_argument("--write-config", help="write a ready config file pointing at the sandboxes")
        else:
            p.add_argument("--out", default="out", help="where the PDFs land (default ./out)")
            p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        sys.stderr.write(f"pouracquit: configuration error: {exc}\n")
        return 2
    except BrokenPipeError:
        # the reader went away (`receipts list | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
