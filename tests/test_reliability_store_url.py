"""A wrong [store] url is one line naming store.url and exit code 2, never a
traceback; a Heroku-style postgres:// URL is PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from pouracquit.state.db import normalise_url, open_engine

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def _sync_with_store_url(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    config = EXAMPLE.read_text(encoding="utf-8").replace(
        '# url = "postgresql://pouracquit@127.0.0.1:5432/pouracquit"', f'url = "{url}"')
    assert f'url = "{url}"' in config
    path = tmp_path / "pouracquit.toml"
    path.write_text(config, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "pouracquit.app.cli", "sync", "--config", str(path)],
                          capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://app:secret@db.example/pouracquit", "mysql is not supported"),
        ("postgresql+psycopg2://app:secret@db.example/pouracquit", "driver 'postgresql+psycopg2' is not available"),
        ("postgresql+asyncpg://app:secret@db.example/pouracquit", "is not available"),
        ("not a url at all", "not a database URL"),
        ("", "not a database URL"),
    ],
)
def test_bad_store_url_is_one_line_and_exit_2(tmp_path: Path, url: str, says: str) -> None:
    proc = _sync_with_store_url(tmp_path, url)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "store.url" in lines[0] and says in lines[0]
    assert "sqlite:///PATH or postgresql://" in lines[0]  # what is supported
    assert "secret" not in lines[0]  # the URL's password is never echoed


def test_postgres_scheme_is_postgresql() -> None:
    assert normalise_url("postgres://app:p%40ss@db:5432/books?sslmode=require") == (
        "postgresql+psycopg://app:p%40ss@db:5432/books?sslmode=require")
    assert normalise_url("postgresql://app@db/books") == "postgresql+psycopg://app@db/books"
    assert normalise_url("sqlite:////var/lib/pouracquit/state.sqlite") == "sqlite:////var/lib/pouracquit/state.sqlite"


@pytest.mark.postgres
def test_postgres_scheme_opens_the_store(pg_url: str) -> None:
    engine = open_engine(pg_url.replace("postgresql://", "postgres://", 1))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
