"""The fleet's deployment example holds together: deploy/pouracquit.toml and its example
tenant load with the real config loader and list with `pouracquit tenants list`; every
command docker-compose.yml runs exists in the CLI with those options; every path it mounts
is where the config and the Dockerfile expect it; deploy/init-secrets.sh writes the secrets
both files name, consistent with each other. (No Docker engine here: nothing is started.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer
import yaml
from cryptography.fernet import Fernet

from pouracquit.app.cli import app, main
from pouracquit.app.toml_out import dumps
from pouracquit.common.secrets import SecretRef
from pouracquit.core.config import load_settings
from pouracquit.core.tenants import load_tenant

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
OURS = ("scheduler", "worker", "admin", "cli")  # the services that run the image
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
CONTAINER_CONFIG = PurePosixPath("/etc/pouracquit/pouracquit.toml")


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (or volume name) of a service's volumes."""
    out = {}
    for spec in service["volumes"]:
        source, target, *_ = spec.split(":")
        out[target] = source
    return out


def _secret_refs(data: Any) -> list[dict[str, str]]:
    if isinstance(data, dict):
        if set(data) in ({"env"}, {"file"}):
            return [data]
        return [ref for value in data.values() for ref in _secret_refs(value)]
    if isinstance(data, list):
        return [ref for value in data for ref in _secret_refs(value)]
    return []


def _plain_secrets(data: Any, where: str = "") -> list[str]:
    """Keys that look like secrets but hold a plain value."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            if re.search(r"token|secret|password|encryption_key", key) and isinstance(value, str):
                found.append(f"{where}{key}")
            found += _plain_secrets(value, f"{where}{key}.")
    elif isinstance(data, list):
        for value in data:
            found += _plain_secrets(value, where)
    return found


def test_the_deployment_and_its_example_tenant_load() -> None:
    deployment = load_settings(DEPLOY / "pouracquit.toml")
    assert deployment.tenants is not None and deployment.tenants.dir == DEPLOY / "tenants"
    assert deployment.store_url.startswith("postgresql")
    example = load_tenant(deployment, "example")
    assert example.tenant == "example"
    assert example.company.name == "Exemple Conseil SARL"
    assert [c.name for c in example.connections] == ["main"]
    # the deployment's company defaults reach the tenant; its own keys win
    assert example.document.render_processes == 0 and example.document.language == "fr"
    assert example.numbering.prefix == "EC-{year}-"
    assert example.archive == PurePosixPath("/var/lib/pouracquit/archive/example")


def test_no_secret_is_written_in_the_files() -> None:
    for path in (DEPLOY / "pouracquit.toml", DEPLOY / "tenants" / "example.toml"):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert _plain_secrets(data) == [], path
        assert _secret_refs(data), path


def test_tenants_list_reads_the_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the same file with a store and data directory this machine has (no "postgres" host here)
    data = tomllib.loads((DEPLOY / "pouracquit.toml").read_text(encoding="utf-8"))
    data["data_dir"] = str(tmp_path / "data")
    data["store"]["url"] = f"sqlite:///{tmp_path / 'state.sqlite'}"
    data["tenants"]["dir"] = str(DEPLOY / "tenants")
    config = tmp_path / "pouracquit.toml"
    config.write_text(dumps(data), encoding="utf-8")
    assert main(["tenants", "list", "--json", "--config", str(config)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["tenant"], r["state"], r["connections"]) for r in rows] == [("example", "enabled", ["main"])]


def _command(argv: list[str]) -> Any:
    """The context ``pouracquit ARGV`` parses to (options checked, nothing run); Typer
    vendors its own click, so its groups are TyperGroups."""
    command: Any = typer.main.get_command(app)
    words = list(argv)
    while isinstance(command, typer.core.TyperGroup):
        name = words.pop(0)
        assert name in command.commands, f"pouracquit has no command {name!r} ({argv})"
        command = command.commands[name]
    return command.make_context(command.name or "", words)


def _argv(service: dict[str, Any]) -> list[str]:
    argv = [*service.get("entrypoint", []), *service["command"]]
    assert argv[0] == "pouracquit", service
    return argv[1:]


@pytest.mark.parametrize("name", OURS)
def test_each_service_runs_a_command_of_the_cli(name: str) -> None:
    ctx = _command(_argv(SERVICES[name]))
    assert ctx.command.name == {"cli": "list"}.get(name, name)


def test_the_compose_file_has_the_fleet() -> None:
    assert set(SERVICES) == {"postgres", "rabbitmq", "redis", *OURS}
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2
    assert "deploy" not in SERVICES["scheduler"]  # one; more only stand by
    assert SERVICES["cli"]["profiles"] == ["tools"]  # not started by `up`
    for name in ("postgres", "rabbitmq", "redis", "admin"):
        assert SERVICES[name]["healthcheck"]["test"][0] == "CMD", name
    # the image's HEALTHCHECK asks port 8787, which only the admin API serves
    assert "8787/healthz" in DOCKERFILE
    for name in ("scheduler", "worker", "cli"):
        assert SERVICES[name]["healthcheck"] == {"disable": True}, name
    for name in OURS:
        assert {d: c["condition"] for d, c in SERVICES[name]["depends_on"].items()} == {
            "postgres": "service_healthy", "rabbitmq": "service_healthy", "redis": "service_healthy"}


def test_the_mounts_are_where_the_config_and_the_image_look() -> None:
    settings = load_settings(DEPLOY / "pouracquit.toml")
    env_config = re.search(r"ENV POURACQUIT_CONFIG=(\S+)", DOCKERFILE)
    assert env_config is not None and env_config.group(1) == str(CONTAINER_CONFIG)
    volume = re.search(r'VOLUME \["([^"]+)"\]', DOCKERFILE)
    assert volume is not None and volume.group(1) == str(settings.data_dir)
    assert re.search(r"useradd .*--uid 10001", DOCKERFILE) and "USER pouracquit" in DOCKERFILE
    secrets = {s["file"] for s in COMPOSE["secrets"].values()}
    for name in OURS:
        service = SERVICES[name]
        mounts = _mounts(service)
        assert service["environment"]["POURACQUIT_CONFIG"] == str(CONTAINER_CONFIG)
        assert mounts[str(CONTAINER_CONFIG)] == "./deploy/pouracquit.toml"
        # the tenants directory, relative to the config file in the container
        assert mounts[str(CONTAINER_CONFIG.parent / "tenants")] == "./deploy/tenants"
        assert mounts[str(settings.data_dir)] == "pouracquit-data"
        assert mounts["/run/secrets/tenants"] == "./deploy.secrets/tenants"
        assert service["env_file"] == ["deploy.secrets/pouracquit.env"]
        assert set(service["secrets"]) == set(COMPOSE["secrets"])
        for source in mounts.values():
            assert not source.startswith("./") or source.startswith("./deploy.secrets/") or (ROOT / source).exists()
    # every volume but the cli's tenants directory is read-only
    for name in ("scheduler", "worker", "admin"):
        assert all(spec.endswith(":ro") for spec in SERVICES[name]["volumes"] if spec.startswith("./")), name
    assert "pouracquit-data" in COMPOSE["volumes"]
    assert secrets == {"deploy.secrets/state_key", "deploy.secrets/admin_token"}


def test_the_admin_api_is_published_where_it_binds() -> None:
    settings = load_settings(DEPLOY / "pouracquit.toml")
    host, port = settings.admin.address
    assert host == "0.0.0.0" and settings.admin.token is not None  # inside its container
    assert SERVICES["admin"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"http://127.0.0.1:{port}/healthz" in SERVICES["admin"]["healthcheck"]["test"]
    assert f"EXPOSE {port}" in DOCKERFILE


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_init_secrets_writes_what_the_files_name(tmp_path: Path) -> None:
    where = tmp_path / "deploy.secrets"
    subprocess.run(["sh", str(DEPLOY / "init-secrets.sh"), str(where)], check=True, capture_output=True)

    def env(name: str) -> dict[str, str]:
        lines = (where / name).read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)

    postgres, rabbitmq, ours = env("postgres.env"), env("rabbitmq.env"), env("pouracquit.env")
    assert ours["PGPASSWORD"] == postgres["POSTGRES_PASSWORD"]
    user = SERVICES["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"]
    assert ours["CELERY_BROKER_URL"] == f"amqp://{user}:{rabbitmq['RABBITMQ_DEFAULT_PASS']}@rabbitmq:5672//"
    assert load_settings(DEPLOY / "pouracquit.toml").fleet.broker == f"amqp://{user}@rabbitmq:5672//"
    # the files the deployment names, read as the containers see them
    settings = load_settings(DEPLOY / "pouracquit.toml")
    for ref in (settings.store.encryption_key, settings.admin.token):
        assert ref is not None and ref.file is not None and ref.file.parent == PurePosixPath("/run/secrets")
        value = SecretRef(file=where / ref.file.name).value().get_secret_value()
        assert value
    Fernet(SecretRef(file=where / "state_key").value().get_secret_value())  # a valid key
    # each company's secret files sit under the mounted tenants directory
    example = tomllib.loads((DEPLOY / "tenants" / "example.toml").read_text(encoding="utf-8"))
    for ref in _secret_refs(example):
        path = PurePosixPath(ref["file"])
        assert path.is_relative_to("/run/secrets/tenants/example")
        assert (where / "tenants" / "example").is_dir()
    assert (where / ".gitignore").read_text().strip() == "*"
    # a second run leaves the existing keys alone
    again = subprocess.run(["sh", str(DEPLOY / "init-secrets.sh"), str(where)], capture_output=True, text=True)
    assert again.returncode == 1 and "left as it is" in again.stderr
