"""Several processes starting at once on a fresh PostgreSQL database: one
migrates, the others wait for it and find the schema at head."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import fresh_database

PG_ADMIN_URL = os.environ.get("POURACQUIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PROCESSES = 5

# Each child waits for the same instant so that the migrations really overlap.
CHILD = """
import sys, time
from sqlalchemy import text
from pouracquit.state.db import open_engine
url, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
engine = open_engine(url)
with engine.connect() as conn:
    print(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
"""


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """A database of its own, never migrated, dropped afterwards."""
    with fresh_database(PG_ADMIN_URL, "pouracquit_race") as url:
        yield url


def _open_all_at_once(url: str) -> list[subprocess.CompletedProcess[str]]:
    # The children import SQLAlchemy, alembic and sqlmodel first: give them time.
    start = time.time() + 4.0
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, url, str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(PROCESSES)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _assert_all_at_head(results: list[subprocess.CompletedProcess[str]]) -> None:
    failures = [[line for line in r.stderr.splitlines() if "Error" in line][-1:] for r in results if r.returncode]
    assert not failures, failures
    heads = {r.stdout.strip() for r in results}
    assert len(heads) == 1 and heads.pop(), heads


@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(2))
def test_processes_starting_together_on_postgresql_all_migrate(fresh_pg_url: str, round_: int) -> None:
    _assert_all_at_head(_open_all_at_once(fresh_pg_url))


def test_processes_starting_together_on_sqlite_all_migrate(tmp_path: Path) -> None:
    # BEGIN IMMEDIATE takes SQLite's write lock before alembic looks at the schema.
    _assert_all_at_head(_open_all_at_once(f"sqlite:///{tmp_path / 'state.sqlite'}"))
