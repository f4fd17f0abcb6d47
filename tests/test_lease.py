"""Leases renewed while work runs; a worker that lost one writes nothing more."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from pouracquit.common.errors import LeaseLost
from pouracquit.common.model import Invoice
from pouracquit.core.intake import new_receipt
from pouracquit.core.lease import Heartbeat
from pouracquit.state.store import Store


def queued(store: Store, make_invoice: Callable[..., Invoice], n: int = 1) -> list[str]:
    ids = []
    with store.unit() as u:
        for i in range(n):
            receipt = new_receipt("c", make_invoice(f"s{i}"), 1)
            u.save(receipt)
            ids.append(receipt.id)
    return ids


def test_a_held_lease_is_renewed_past_its_period(store: Store, make_invoice: Callable[..., Invoice]) -> None:
    (rid,) = queued(store, make_invoice)
    beat = Heartbeat(store, "me", seconds=0.6)
    assert store.claim(rid, "me", beat.until()) is not None
    beat.hold(rid)
    try:
        time.sleep(1.5)  # more than twice the period: only renewals keep it
        assert store.claim(rid, "other", datetime.now(UTC) + timedelta(seconds=5)) is None
        beat.check(rid)
    finally:
        beat.close()


def test_a_lease_taken_over_is_lost_and_checked(store: Store, make_invoice: Callable[..., Invoice]) -> None:
    (rid,) = queued(store, make_invoice)
    beat = Heartbeat(store, "me", seconds=30)
    assert store.claim(rid, "me", datetime.now(UTC) - timedelta(seconds=1)) is not None  # already expired
    beat.hold(rid)
    assert store.claim(rid, "other", datetime.now(UTC) + timedelta(seconds=30)) is not None
    beat.renew_now()
    with pytest.raises(LeaseLost):
        beat.check(rid)
    beat.close()


def test_a_stopped_worker_shows_as_a_stale_lease(store: Store, make_invoice: Callable[..., Invoice]) -> None:
    (rid,) = queued(store, make_invoice)
    store.claim(rid, "dead", datetime.now(UTC) - timedelta(seconds=1))
    assert [r.id for r in store.stale_leases(datetime.now(UTC))] == [rid]


def test_due_skips_what_a_drain_already_tried(store: Store, make_invoice: Callable[..., Invoice]) -> None:
    ids = queued(store, make_invoice, 3)
    now = datetime.now(UTC)
    assert store.due("c", now, limit=2) == ids[:2]
    assert store.due("c", now, limit=2, skip=frozenset(ids[:2])) == ids[2:]
