"""``pouracquit tenants``: the companies a deployment serves (its ``[tenants]`` directory
and the store's registry), listed, added, disabled and enabled while the fleet runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .cli_options import ConfigFile, deployment_of, group

tenants = group("tenants", "The companies a deployment serves: list, add, disable, enable.")
Name = Annotated[str, typer.Argument(metavar="NAME", help="the tenant's name (its file's name without .toml)")]


def _open(config: Path | None):  # type: ignore[no-untyped-def]
    from pouracquit.core.tenants import Tenants

    return Tenants.open(deployment_of(config))


@tenants.command("list")
def list_(config: ConfigFile = None,
          as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> int:
    """Every tenant: enabled or not, its connections, and why a file cannot be used."""
    fleet = _open(config)
    records, problems, enabled = fleet.records(), fleet.problems(), set(fleet.names())
    rows = []
    for name in fleet.names(enabled_only=False):
        record = records.get(name)
        connections = [] if name in problems else [c.name for c in fleet.settings_of(name).connections]
        rows.append({"tenant": name, "enabled": name in enabled,
                     "state": "unusable" if name in problems else ("enabled" if name in enabled else "disabled"),
                     "connections": connections, "problem": problems.get(name),
                     "changed_at": record.changed_at.isoformat() if record else None})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        detail = row["problem"] or ", ".join(row["connections"])
        print(f"{row['tenant']:<24} {row['state']:<9} {detail}")
    return 0


@tenants.command()
def add(name: Name, file: Annotated[Path, typer.Argument(metavar="FILE", help="the company's TOML file")],
        config: ConfigFile = None) -> int:
    """Check FILE as company NAME and place it in the tenants directory: the fleet takes it up at its next tick."""
    settings = _open(config).add(name, file)
    print(f"tenant {name} added: {', '.join(c.name for c in settings.connections)}")
    return 0


@tenants.command()
def disable(name: Name, config: ConfigFile = None) -> int:
    """Stop working company NAME (its history stays; `tenants enable` takes it up again)."""
    _open(config).set_enabled(name, False)
    print(f"tenant {name} disabled")
    return 0


@tenants.command()
def enable(name: Name, config: ConfigFile = None) -> int:
    """Work company NAME again."""
    _open(config).set_enabled(name, True)
    print(f"tenant {name} enabled")
    return 0
