"""A user's small mistakes get one line and the right exit code, never a traceback."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pouracquit.app.cli import main
from pouracquit.app.toml_out import dumps
from pouracquit.common.errors import ConfigError
from pouracquit.core.config import parse_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse refuses a bad argument this way, with exit code 2
        return int(exc.code or 0)


@pytest.mark.parametrize(("argv", "says"), [
    (["demo", "--count", "0"], "expected a number of invoices"),
    (["sandbox", "--ledger", "sage"], "no ledger sandbox named 'sage' (choose from quickbooks, xero)"),
    (["backfill", "--connection", "main", "--from", "yesterday"], "expected a date as YYYY-MM-DD"),
])
def test_mistakes_are_one_line(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_unknown_keys_suggest_the_known_one() -> None:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["document"]["verify_base_ur"] = "https://x.example"
    with pytest.raises(ConfigError, match=r"document\.verify_base_ur: unknown key \(did you mean verify_base_url\?\)"):
        parse_settings(data)


def test_an_unknown_receipt_is_exit_1_not_a_configuration_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("POURACQUIT_STATE_KEY", Fernet.generate_key().decode())
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["data_dir"] = str(tmp_path / "data")
    config = tmp_path / "c.toml"
    config.write_text(dumps(data), encoding="utf-8")
    assert main(["receipts", "show", "nope", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "no receipt 'nope'" in err and "configuration error" not in err
