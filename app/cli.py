"""The ``pouracquit`` command: sync, backfill, dunning, run, status, receipts,
report, render, archive, check, connect, doctor, keygen, sandbox, demo.

Each command imports what it needs when it runs, so ``keygen``, ``--help`` or
a configuration error answer without loading the PDF renderer or the SDKs.
A user's mistake (a bad value, an unknown option, a broken config, an id that
names nothing) is one line on stderr and exit 2 (exit 1 for a thing not
found), never a traceback.

Adding a command: a function under ``@app.command()`` (or under a group such
as ``@receipts.command()`` in app/cli_receipts.py) that returns its exit code,
with its options from app/cli_options.py; a group of its own is
``cli_options.group(...)`` in its module, registered here with ``app.add_typer``.
Choices are a ``StrEnum`` (this Typer vendors click: there is no click_type).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from pouracquit.common.errors import ConfigError

from . import logs
from .admin_cmd import commands as admin_commands
from .cli_options import ConfigFile, Connection, choose_tenant, group, help_when_bare, made_dir, settings_of
from .cli_receipts import receipts
from .cli_reports import report
from .cli_tenants import tenants
from .fleet_cmd import commands as fleet_commands
from .refusals import Refused

PROG = "pouracquit"


class Commands(TyperGroup):
    """The top group: every command runs through its ``invoke``, which turns
    the errors a user can cause into one line and an exit code."""

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            code = super().invoke(ctx)
            sys.stdout.flush()  # in a pipe the output is buffered: a reader gone shows here, not at exit
            return code
        except ConfigError as exc:
            _say(f"configuration error: {exc}")
            return 2
        except Refused as exc:
            _say(" ".join(str(exc).split()))
            return exc.exit_code
        except BrokenPipeError:
            # the reader went away (`receipts list | head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141


def _say(line: str) -> None:
    sys.stderr.write(f"{PROG}: {line}\n")


app = typer.Typer(cls=Commands, name=PROG, invoke_without_command=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
archive = group("archive", "The archive of documents and its audit chain.")
app.add_typer(receipts)
app.add_typer(archive)
app.add_typer(report)
app.add_typer(tenants)
app.add_typer(fleet_commands)  # worker, scheduler
app.add_typer(admin_commands)  # admin
def _version(value: bool) -> None:
    if value:
        try:
            version = metadata.version(PROG)
        except metadata.PackageNotFoundError:  # run from a source tree that was never installed
            version = "unknown (not installed)"
        print(f"{PROG} {version}")
        raise typer.Exit()


@app.callback()
def _top(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    tenant: Annotated[str | None, typer.Option(
        "--tenant", envvar="POURACQUIT_TENANT", show_envvar=False, metavar="NAME",
        help="the company to work on, in a config that serves several (see `pouracquit tenants list`)")] = None,
) -> None:
    """Paid invoices in a CRM become Factur-X receipts, archived, booked in the ledger and attached."""
    choose_tenant(tenant)
    help_when_bare(ctx)


class CheckLevel(StrEnum):
    xsd = "xsd"
    schematron = "schematron"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100_000:
        raise typer.BadParameter(f"expected a number of invoices from 1 to 100000, got {text!r}")
    return value


# -- the engine -------------------------------------------------------------------
@app.command()
def sync(
    config: ConfigFile = None,
    connection: Connection = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would be created; write nothing")] = False,
    record: Annotated[str | None, typer.Option(
        "--record", metavar="DIR", help="write every vendor request and answer, redacted, into DIR "
        "(replayable by tests; see docs/recording.md)")] = None,
) -> int:
    """Run one pass over every connection and exit (1 when something needs a person)."""
    from .commands import sync_command

    if record is not None:
        made_dir(Path(record), "--record")
    return sync_command(settings_of(config), connection=connection, dry_run=dry_run, record=record)


@app.command()
def backfill(
    connection: Annotated[str, typer.Option("--connection", help="the connection to backfill")],
    since: Annotated[date, typer.Option("--from", parser=_day, metavar="YYYY-MM-DD",
                                        help="first payment day to include")],
    no_ledger: Annotated[bool, typer.Option("--no-ledger", help="archive and attach to the CRM, book nothing")]
    = False,
    config: ConfigFile = None,
) -> int:
    """Make the documents of invoices paid before a connection's start date."""
    from .commands import backfill_command

    return backfill_command(settings_of(config), connection, since, book=not no_ledger)


@app.command()
def dunning(
    config: ConfigFile = None,
    connection: Connection = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="list who would be chased today and with which step; send and write nothing")] = False,
) -> int:
    """Send today's reminders for overdue invoices, on the dunning ladder; exit 1 when some could not go out."""
    from .dunning_cmd import dunning_command

    return dunning_command(settings_of(config), dry_run=dry_run, connection=connection)


@app.command()
def run(config: ConfigFile = None) -> int:
    """Run the background service with its admin HTTP API (health, metrics, status, webhooks)."""
    from pouracquit.core.service import Service

    from .daemon import run_service

    settings = settings_of(config)
    if settings.log.format == "auto":
        logs.configure("json", settings.log.level)
    return run_service(Service.open(settings))


@app.command()
def status(config: ConfigFile = None) -> int:
    """Print each connection's state (freshness, receipts, problems) as JSON."""
    from pouracquit.core.service import Service

    from .status import connection_status

    print(json.dumps(connection_status(Service.open(settings_of(config))), indent=2, default=str))
    return 0


# -- documents and the archive ----------------------------------------------------
@app.command()
def render(
    invoice: Annotated[Path, typer.Option("--invoice", metavar="FILE",
                                          help="invoice JSON file (pouracquit's invoice shape)")],
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE",
                                             help="PDF file to write (default: the receipt's own file name)")] = None,
    number: Annotated[str | None, typer.Option("--number", help="number to print when the invoice has none")]
    = None,
    config: ConfigFile = None,
) -> int:
    """Render one document from a JSON invoice (for template work)."""
    from .render_cmd import render_command

    return render_command(settings_of(config), invoice, out, number)


@archive.command("verify")
def archive_verify(config: ConfigFile = None) -> int:
    """Re-hash every archived document and walk the audit chain; exit 1 on a problem."""
    from pouracquit.core.audit import audit
    from pouracquit.core.service import Service

    settings = settings_of(config)
    report = audit(Service.open(settings).store, settings.archive)
    for finding in report.findings:
        print(f"{finding.where}: {finding.problem}")
    verdict = "OK" if report.ok else f"{len(report.findings)} problem(s)"
    print(f"archive verify: {report.documents} documents, {report.events} audit entries: {verdict}")
    return 0 if report.ok else 1


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Factur-X PDF (or its XML)")],
    paid: Annotated[bool, typer.Option("--paid", help="also require a fully paid document (BT-115 = 0)")] = False,
    level: Annotated[CheckLevel, typer.Option(
        "--level", help="xsd: the schema alone; schematron: schema and business rules")] = CheckLevel.schematron,
) -> int:
    """Validate Factur-X PDFs with the official XSD and EN16931/FR-CTC schematrons."""
    from .check_cmd import check_command

    return check_command(files, paid=paid, level=level.value)


# -- setting up -------------------------------------------------------------------
@app.command()
def connect(
    vendor: Annotated[str, typer.Argument(help="the vendor of a source or ledger in the config (hubspot, ...)")],
    connection: Annotated[str | None, typer.Option(
        "--connection", help="the connection to authorise (default: the only one using the vendor)")] = None,
    port: Annotated[int, typer.Option("--port", help="local port of the redirect listener")] = 8788,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="print the authorisation URL, do not open it")]
    = False,
    config: ConfigFile = None,
) -> int:
    """Authorise pouracquit at a vendor (OAuth) and keep its tokens."""
    from .connect import connect_command

    return connect_command(settings_of(config), vendor, connection=connection, port=port,
                           open_browser=not no_browser)


@app.command()
def doctor(config: ConfigFile = None, connection: Connection = None) -> int:
    """Check every connection's setup against the live vendors; exit 1 on a problem."""
    from .doctor import doctor_command

    return doctor_command(settings_of(config), connection=connection)


@app.command()
def keygen() -> int:
    """Print a new store.encryption_key (a Fernet key)."""
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())
    return 0


# -- the built-in sandboxes -------------------------------------------------------
Source = Annotated[str | None, typer.Option("--source", help="CRM sandbox (default: the first CRM, HubSpot)")]
Ledger = Annotated[str | None, typer.Option(
    "--ledger", help="accounting sandbox (default: the first ledger, QuickBooks Online)")]
Count = Annotated[int, typer.Option("--count", parser=_count, metavar="N", help="demo invoices to seed")]


@app.command()
def sandbox(
    source: Source = None,
    ledger: Ledger = None,
    count: Count = 60,
    write_config: Annotated[str | None, typer.Option(
        "--write-config", metavar="FILE", help="write a ready config file pointing at the sandboxes")] = None,
    tenants: Annotated[int | None, typer.Option(
        "--tenants", min=1, max=500, metavar="N",
        help="N companies, each on its own emulator pair: a fleet deployment (needs --write-config)")] = None,
    paid: Annotated[int | None, typer.Option(
        "--paid", min=1, metavar="N", help="with --tenants: paid invoices in all, spread over the companies")] = None,
    store_url: Annotated[str | None, typer.Option(
        "--store-url", metavar="URL", help="with --tenants: the fleet's PostgreSQL store")] = None,
) -> int:
    """Run the vendor emulators alone, seeded with demo data, until interrupted."""
    from .demo import sandbox_command

    if write_config is not None:
        made_dir(Path(write_config).resolve().parent, "--write-config")
    logs.configure("console", "warning")
    if tenants is not None:
        from .sandbox_fleet import sandbox_tenants_command

        if write_config is None:
            raise typer.BadParameter("--tenants writes a deployment: give --write-config FILE")
        return sandbox_tenants_command(tenants, write_config, count, paid, source, ledger, store_url)
    return sandbox_command(source, ledger, write_config, count)


@app.command()
def demo(
    source: Source = None,
    ledger: Ledger = None,
    count: Count = 60,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="where the PDFs land")] = Path("out"),
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
) -> int:
    """Run one sync on the built-in sandboxes and print a summary."""
    from .demo import demo_command

    made_dir(out, "--out")
    logs.configure("console", "warning")
    return demo_command(source, ledger, out, count, as_json=as_json)


def _command_path(top: object, argv: list[str] | None) -> str:
    """``pouracquit receipts list`` from the words of ``argv`` that name commands
    (for the errors the option parser raises without saying where)."""
    words, command = [PROG], top
    for word in sys.argv[1:] if argv is None else argv:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            break
        words.append(word)
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: the process's); returns the exit code."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name=PROG, standalone_mode=False)
    except typer.TyperException as exc:  # click's errors, as Typer vendors them
        # pydantic's wording for a refused choice starts "Value error, ": the rest says it
        message = " ".join(exc.format_message().replace("Value error, ", "").split())
        ctx = getattr(exc, "ctx", None)
        if exc.exit_code == 2:  # a usage error: unknown option or command, bad or missing value
            where = ctx.command_path if ctx is not None else _command_path(command, argv)
            sys.stderr.write(f"{where}: {message} (see `{where} --help`)\n")
        else:
            _say(message)
        return exc.exit_code
    except typer.Abort:
        _say("aborted")
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
