"""The fleet under SIGKILL, small enough for the suite: 4 companies on their own
emulator pairs, 60 paid invoices, 2 workers and a scheduler, one worker killed
mid-run and replaced; then per company 0 duplicates, 0 lost, 0 numbering gaps and
``archive verify`` OK. The acceptance size (50 x 2,000, 3 workers, a kill every
20 s) runs by hand: ``tests/chaos/run_fleet_chaos.py``.

Run with ``POURACQUIT_CHAOS=fleet`` (or ``large``): about a minute of wall time that the
10-minute suite cannot spare. The suite keeps a killed worker and a killed leader in
``tests/test_fleet_e2e.py`` (nothing lost, nothing done twice)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chaos.run_chaos import seed_from_env
from chaos.run_fleet_chaos import run_fleet_chaos, services_down, table

pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.skipif(os.environ.get("POURACQUIT_CHAOS") not in ("fleet", "large"),
                                 reason="the fleet's chaos run: POURACQUIT_CHAOS=fleet or large only")]


def test_four_companies_with_a_worker_killed_lose_and_repeat_nothing(tmp_path: Path) -> None:
    if reason := services_down():
        pytest.skip(reason)
    run = run_fleet_chaos(tmp_path, tenants=4, paid=60, workers=2, kill_every=8.0, max_kills=1, deadline=150.0,
                          seed=seed_from_env(), concurrency=2, echo=lambda _: None)
    assert len(run.kills) == 1
    assert run.failed == [], f"{run.failed}\n{table(run)}"
    assert sum(row["done"] for row in run.rows) == run.paid == 60
