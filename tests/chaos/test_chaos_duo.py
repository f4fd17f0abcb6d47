"""Two ``pouracquit run`` processes on one PostgreSQL store, with short leases,
killed in turn with SIGKILL: still exactly one receipt per paid invoice.

CI size here (a few invoices, 4 kills); the acceptance size runs by hand with
``tests/chaos/run_duo.py`` (see docs/reliability.md). Seed: ``POURACQUIT_CHAOS_SEED``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos.run_chaos import seed_from_env
from chaos.run_duo import PG_ADMIN_URL, run_duo, throwaway_database
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _postgres_or_skip() -> None:
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()


def test_two_processes_killed_in_turn_book_every_paid_invoice_once(tmp_path: Path) -> None:
    _postgres_or_skip()
    with throwaway_database() as url:
        report = run_duo(tmp_path, url, invoices=16, kills=4, seed=seed_from_env(), lease_seconds=3.0, workers=2,
                         settle_seconds=300)
    found = report.findings
    assert "check_failed" not in found, (found["check_failed"], found["tally"])
    assert len(report.kills) == 4
    assert found["receipts_done"] == report.paid > 0
    assert found["duplicates_in_ledger"] == 0 and found["receipts_lost"] == 0
    assert found["salesreceipts"] == found["attachables"] == found["crm_notes"] == found["crm_files"] == report.paid
    assert all(seconds < 10 for seconds in found["sigterm_seconds"].values()), found["sigterm_seconds"]
