"""What the commands of ``pouracquit`` share: the options every command
spells the same way, loading the settings, and a group's bare-call help.

A command group in its own module builds its ``typer.Typer`` with ``group``
and takes its options from here; app/cli.py registers it with ``app.add_typer``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pouracquit.common.errors import ConfigError
from pouracquit.core.config import Settings, load_settings

from . import logs

DEFAULT_CONFIG = "pouracquit.toml"

ConfigFile = Annotated[Path | None, typer.Option(
    "--config", envvar="POURACQUIT_CONFIG", show_envvar=False, metavar="FILE",
    help=f"TOML config file (default $POURACQUIT_CONFIG or ./{DEFAULT_CONFIG})")]
Connection = Annotated[str | None, typer.Option("--connection", help="only this connection")]
ReceiptId = Annotated[str, typer.Argument(metavar="ID", help="receipt id, or a prefix only it starts with")]


# the company a command works on, from the top-level ``--tenant`` (or $POURACQUIT_TENANT)
_chosen: dict[str, str | None] = {"tenant": None}


def choose_tenant(name: str | None) -> None:
    _chosen["tenant"] = name


def deployment_of(config: Path | None) -> Settings:
    """The file ``--config`` names as it is: one company, or a deployment of many (the fleet's commands)."""
    settings = load_settings(config or Path(DEFAULT_CONFIG))
    logs.configure(settings.log.format, settings.log.level)
    return settings


def settings_of(config: Path | None) -> Settings:
    """The settings of the company a command works on: the config's own, or in a deployment of
    many, those of the tenant ``--tenant`` names; logging set up from them."""
    from pouracquit.core.tenants import load_tenant

    settings = deployment_of(config)
    tenant = _chosen["tenant"]
    if settings.tenants is not None and tenant is None:
        raise ConfigError(f"this config serves several companies (tenants in {settings.tenants.dir}); "
                          f"name one: pouracquit --tenant NAME ...")
    return load_tenant(settings, tenant) if tenant is not None else settings


def help_when_bare(ctx: typer.Context) -> None:
    """A group named alone (``pouracquit``, ``pouracquit receipts``): its help, exit 2."""
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(2)


def group(name: str, help_text: str) -> typer.Typer:
    """A command group (``pouracquit NAME ...``) that prints its help when named alone."""
    return typer.Typer(name=name, help=help_text, callback=help_when_bare, invoke_without_command=True)


def made_dir(path: Path, option: str) -> Path:
    """``path`` as a directory, made now: one that cannot be is one line (exit 2)
    before any work, not a traceback after it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot create the directory: {exc.strerror or exc}") from None
    return path
