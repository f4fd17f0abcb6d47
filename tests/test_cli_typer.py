"""The command line's conventions: --version, help for every command, shell
completion, one line and exit 2 for any usage mistake, receipt id prefixes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from decimal import Decimal
from importlib import metadata
from pathlib import Path

import pytest

from pouracquit.app.cli import app, main
from pouracquit.app.toml_out import dumps
from pouracquit.core.config import load_settings
from pouracquit.core.service import Service
from pouracquit.state.tables import Receipt

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def test_version_comes_from_the_installed_package(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pouracquit {metadata.version('pouracquit')}"


def _command_paths() -> list[list[str]]:
    paths = [[c.name or c.callback.__name__] for c in app.registered_commands]  # type: ignore[union-attr]
    for group in app.registered_groups:
        assert group.typer_instance is not None
        name = group.typer_instance.info.name
        # a group added without a name (the fleet's worker and scheduler, admin) puts its commands at the top
        paths += [[name, c.name or c.callback.__name__] if name else [c.name or c.callback.__name__]  # type: ignore[list-item,union-attr]
                  for c in group.typer_instance.registered_commands]
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_every_command_has_its_help(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"pouracquit {' '.join(path)}" in out and "Usage" in out


@pytest.mark.parametrize(("argv", "says"), [
    (["sync", "--bogus"], "pouracquit sync: No such option: --bogus"),
    (["sync", "--conection", "x"], "--connection"),  # the near miss is named
    (["nosuch"], "No such command 'nosuch'"),
    (["receipts", "show"], "Missing argument 'ID'"),
    (["receipts", "list", "--status", "nope"], "'nope' is not one of 'pending', 'done', 'failed', 'quarantined'"),
    (["connect", "hubspot", "--port", "eighty"], "Invalid value for '--port'"),
    (["check", "--level", "xs", "a.pdf"], "Invalid value for '--level'"),
    (["demo", "--count", "many"], "expected a number of invoices"),
    (["receipts", "list", "--connection"], "pouracquit receipts list: Option '--connection' requires an argument"),
])
def test_usage_mistakes_are_one_line_and_exit_2(argv: list[str], says: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_group_alone_prints_its_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receipts"]) == 2
    out = capsys.readouterr().out
    assert all(action in out for action in ("list", "show", "retry", "pdf"))


def test_the_installed_command_completes_in_bash() -> None:
    script = subprocess.run([sys.executable, "-m", "pouracquit.app.cli", "--show-completion", "bash"],
                            capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "_POURACQUIT_COMPLETE=complete_bash" in script.stdout
    # what bash asks when the user types `pouracquit rec<TAB>`
    env = {"_POURACQUIT_COMPLETE": "complete_bash", "COMP_WORDS": "pouracquit rec", "COMP_CWORD": "1"}
    words = subprocess.run([sys.executable, "-c", "import sys; from pouracquit.app.cli import main; "
                            "sys.argv[0] = 'pouracquit'; sys.exit(main())"],
                           capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert words.stdout.split() == ["receipts"], words


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("POURACQUIT_STATE_KEY", Fernet.generate_key().decode())
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["data_dir"] = str(tmp_path / "data")
    path = tmp_path / "c.toml"
    path.write_text(dumps(data), encoding="utf-8")
    service = Service.open(load_settings(path))
    with service.store.unit() as u:
        for n, rid in enumerate(("ab12aa", "ab12bb", "cd34cc", "cd34")):
            u.save(Receipt(id=rid, connection="main", source_id=f"inv-{n}", payment_version=1, invoice_json="{}",
                           amount=Decimal("10.00"), currency="EUR", customer="Client", status="done"))
    service.close()
    return path


def test_a_unique_prefix_names_the_receipt(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receipts", "show", "ab12a", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "ab12aa"


def test_a_whole_id_wins_over_longer_ids_it_starts(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receipts", "show", "cd34", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "cd34"


def test_an_ambiguous_prefix_names_the_candidates(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receipts", "retry", "ab", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == "pouracquit: receipt id prefix 'ab' is ambiguous: ab12aa, ab12bb\n"


def test_a_prefix_with_sql_wildcards_matches_literally(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receipts", "pdf", "%", "--config", str(config)]) == 1
    assert "no receipt '%'" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "option"), [
    (["sync", "--record", "/proc/no/such/dir"], "--record /proc/no/such/dir"),
    (["demo", "--out", "/proc/no/such/dir"], "--out /proc/no/such/dir"),
    (["sandbox", "--write-config", "/proc/no/such/dir/try.toml"], "--write-config /proc/no/such/dir"),
])
def test_an_unusable_directory_is_one_line_before_any_work(argv: list[str], option: str, config: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"pouracquit: configuration error: {option}: cannot create the directory: "
                                       "No such file or directory\n")


def test_a_reader_gone_is_a_quiet_exit_141(config: Path) -> None:
    """`receipts list | head -0`: the pipe is closed before the list is written."""
    proc = subprocess.Popen([sys.executable, "-m", "pouracquit.app.cli", "receipts", "list", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""
