"""Configuration errors are one line naming the key, exit code 2."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pouracquit.app.cli import main
from pouracquit.common.errors import ConfigError
from pouracquit.common.secrets import SecretRef
from pouracquit.core.config import load_settings, parse_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def example() -> dict:  # type: ignore[type-arg]
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_example_config_is_valid() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.connections[0].source.vendor == "hubspot"
    assert settings.data_dir.is_absolute()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["connections"][0].pop("name"), r"connections\[0\]\.name: missing required key"),
        (lambda d: d["connections"][0]["source"].pop("vendor"), r"connections\[0\]\.source\.vendor: missing"),
        (lambda d: d["admin"].update(bind="nowhere"), r"admin\.bind: expected HOST:PORT"),
        (lambda d: d["seller"].update(siren="123456789"), r"seller\.siren: siren must be 9 digits"),
        (lambda d: d.update(colour="red"), r"colour: unknown key"),
        (lambda d: d["connections"].append(d["connections"][0]), r"connection names must be unique"),
        (lambda d: d["pipeline"].update(max_attempts=0), r"pipeline\.max_attempts"),
    ],
)
def test_errors_name_the_key(change, message) -> None:  # type: ignore[no-untyped-def]
    data = example()
    change(data)
    with pytest.raises(ConfigError, match=message):
        parse_settings(data)


def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    with pytest.raises(ConfigError, match="set the environment variable NOPE_SECRET"):
        SecretRef(env="NOPE_SECRET").value()


def test_secret_from_file(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("s3cret\n")
    assert SecretRef(file=tmp_path / "s").value().get_secret_value() == "s3cret"
    assert "s3cret" not in repr(SecretRef(file=tmp_path / "s").value())


def test_cli_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace('vendor = "hubspot"', 'vendr = "hubspot"'))
    assert main(["sync", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "connections[0].source.vendor: missing required key" in err


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pouracquit.app.cli", "status", "--config",
                           str(tmp_path / "nope.toml")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "not found" in proc.stderr
