"""The state store on SQLite and PostgreSQL: migrations, the audit chain,
gapless numbering under concurrency, leases, unique receipts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from pouracquit.core.intake import new_receipt
from pouracquit.state.chain import verify_chain
from pouracquit.state.store import Store
from pouracquit.state.tables import Event


def test_chain_verifies_and_detects_edits_and_removals(store: Store) -> None:
    with store.unit() as u:
        for i in range(5):
            u.log("c", "paid", source_id=f"s{i}", amount="10.00")
    events = store.events()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert verify_chain(events) == []
    with store.unit() as u:
        row = u.get(Event, 3)
        assert row is not None
        row.data = row.data.replace("10.00", "1.00")
    breaks = verify_chain(store.events())
    assert [(b.seq, "edited" in b.reason) for b in breaks] == [(3, True)]
    events = [e for e in store.events() if e.seq != 4]
    assert any(b.seq == 5 and "missing" in b.reason for b in verify_chain(events))


def test_numbers_are_gapless_across_threads(store: Store) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def take(n: int) -> None:
        for _ in range(n):
            for _attempt in range(20):
                try:
                    with store.unit() as u:
                        value = u.next_number("default:2026-")
                    break
                except IntegrityError:  # two first-ever allocations raced to create the series row
                    continue
            with lock:
                got.append(value)

    threads = [threading.Thread(target=take, args=(10,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 41))


def test_a_failed_unit_hands_out_no_number(store: Store) -> None:
    with pytest.raises(RuntimeError), store.unit() as u:
        u.next_number("s")
        raise RuntimeError("crash before commit")
    with store.unit() as u:
        assert u.next_number("s") == 1


def test_one_receipt_per_payment_version(store: Store, make_invoice) -> None:  # type: ignore[no-untyped-def]
    inv = make_invoice()
    with store.unit() as u:
        u.save(new_receipt("c", inv, 1))
    with pytest.raises(IntegrityError), store.unit() as u:
        u.save(new_receipt("c", inv, 1))
    with store.unit() as u:
        assert u.receipt_exists("c", inv.source_id, 1)
        assert not u.receipt_exists("c", inv.source_id, 2)


def test_leases_keep_workers_apart(store: Store, make_invoice) -> None:  # type: ignore[no-untyped-def]
    receipt = new_receipt("c", make_invoice(), 1)
    with store.unit() as u:
        u.save(receipt)
    soon = datetime.now(UTC) + timedelta(seconds=60)
    assert store.claim(receipt.id, "a", soon) is not None
    assert store.claim(receipt.id, "b", soon) is None
    store.release(receipt.id, "a")
    assert store.claim(receipt.id, "b", soon) is not None
    # an expired lease is free again (its worker died)
    with store.unit() as u:
        row = u.session.get(type(receipt), receipt.id)
        row.lease_until = datetime.now(UTC) - timedelta(seconds=1)
    assert store.claim(receipt.id, "c", soon) is not None


def test_times_come_back_aware_and_money_exact(store: Store, make_invoice) -> None:  # type: ignore[no-untyped-def]
    inv = make_invoice(lines=[("3", "0.33", "5.5")])
    receipt = new_receipt("c", inv, 1)
    with store.unit() as u:
        u.save(receipt)
    again = store.receipt(receipt.id[:8])
    assert again is not None
    assert again.created_at.tzinfo is not None
    assert str(again.amount) == "1.04"


def test_archive_sweeps_only_old_half_written_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    from pouracquit.core.archive import Archive

    archive = Archive(tmp_path)
    sha, path = archive.store(b"%PDF-1.7 kept")
    old = path.parent / ".x.pdf.123.tmp"
    fresh = path.parent / ".y.pdf.456.tmp"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert archive.sweep_temporary() == 1
    assert not old.exists() and fresh.exists() and archive.read(sha) == b"%PDF-1.7 kept"


def test_a_rolled_back_entry_leaves_no_gap_in_the_chain(store: Store) -> None:
    with store.unit() as u:
        u.log("c", "paid", source_id="s1")
    with pytest.raises(RuntimeError), store.unit() as u:  # a crash before the commit
        u.log("c", "paid", source_id="s2")
        raise RuntimeError("killed")
    with store.unit() as u:
        u.log("c", "paid", source_id="s3")
    events = store.events()
    assert [e.seq for e in events] == [1, 2] and verify_chain(events) == []
